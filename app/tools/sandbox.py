"""Confinement for model-written programs (the demo ``run_code`` tool).

Layers, each covering what another may miss: a fresh temporary working directory and an empty environment;
resource limits (memory, CPU seconds, open files, file size); its own process group, killed whole at the
tool's deadline; an empty network namespace (``unshare -rn``) where the kernel allows one; and, always, an
audit hook installed before the program runs that refuses sockets, new processes, signals, native code and
any write outside the working directory. An audit hook alone is not a sandbox (CPython says so); with the
others it keeps a careless or injected program from reaching the network, the database or the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache

MEMORY_BYTES = 512 * 1024 * 1024
CPU_SECONDS = 10
OPEN_FILES = 64
FILE_BYTES = 16 * 1024 * 1024
PROGRAM = "program.py"

# Runs first in the child interpreter (python -I), then runs the program as __main__.
GUARD = r"""
import os, sys
_root = os.path.realpath(os.getcwd())
_refused = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
            "os.forkpty", "os.kill", "os.killpg", "os.setuid", "ctypes.", "sys.addaudithook", "pty.")
_changing = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
             "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
_writing = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

def _inside(path):
    if isinstance(path, int):
        return True
    return os.path.realpath(os.fsdecode(path)).startswith(_root + os.sep)

def _guard(event, args):
    if event.startswith(_refused):
        raise PermissionError(f"run_code may not use {event}: no network, no processes, no native code")
    if event == "open" and args[2] & _writing and not _inside(args[0]):
        raise PermissionError(f"run_code may only write inside its working directory, not {args[0]}")
    if event in _changing:
        for path in args[:2]:
            if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path):
                raise PermissionError(f"run_code may only change files inside its working directory ({event})")

sys.addaudithook(_guard)
del _guard
import runpy
runpy.run_path(%r, run_name="__main__")
"""


@dataclass(frozen=True)
class Outcome:
    exit_code: int | None
    stdout: str
    stderr: str


def _limit_resources() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_BYTES, FILE_BYTES))


@cache
def network_isolation() -> tuple[str, ...]:
    """The command prefix that runs a program without network (``unshare -rn``), or () where not allowed."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return ()
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, timeout=10, check=False)
    return (unshare, "-rn") if probe.returncode == 0 else ()


async def run_confined(code: str) -> Outcome:
    """Run ``code`` confined; cancelling the caller (its deadline) kills it and everything it started."""
    with tempfile.TemporaryDirectory(prefix="firebreak-code-") as workdir:
        program = os.path.join(workdir, PROGRAM)
        with open(program, "w", encoding="utf-8") as handle:
            handle.write(code)
        process = await asyncio.create_subprocess_exec(
            *network_isolation(),
            sys.executable,
            "-I",
            "-c",
            GUARD % program,
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin"},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            preexec_fn=_limit_resources,
            start_new_session=True,  # its own process group, so whatever it started dies with it
        )
        try:
            stdout, stderr = await process.communicate()
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()
    return Outcome(process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace"))
