"""Confinement for model-written programs (the demo ``run_code`` tool).

Layers, each covering what another may miss: a fresh temporary working directory, an empty environment and
only the standard library (``-I -S``); resource limits (memory, CPU seconds, open files, file size); its own
process group, killed whole at the tool's deadline; an empty network namespace (``unshare -rn``) where the
kernel allows one; Landlock where the kernel has it (writes only beneath the working directory, no TCP
connect or bind, whatever library asks); and, always, an audit hook installed before the program runs that
refuses sockets, new processes, signals, native code and any write outside the working directory. An audit
hook alone is not a sandbox (CPython says so); with the others it keeps a careless or injected program from
reaching the network, the database or the host.
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

# Landlock (Linux 5.13+, unprivileged): the kernel refuses writes outside the working directory, whatever
# library makes them (sqlite3, dbm, readline and os.mkfifo write without a CPython audit event), and from
# ABI 4 on every TCP connect and bind; from ABI 6 on, signals and abstract sockets outside the sandbox.
LANDLOCK = r"""
def _landlock(root):
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    abi = libc.syscall(444, None, 0, 1)  # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    if abi < 1:
        return 0
    writes = 0x1FF2 | (0x2000 if abi >= 2 else 0) | (0x4000 if abi >= 3 else 0)  # write, remove, make, refer, truncate
    attr = (ctypes.c_uint64 * 3)(writes, 0x3 if abi >= 4 else 0, 0x3 if abi >= 6 else 0)
    ruleset = libc.syscall(444, ctypes.byref(attr), 8 * (1 if abi < 4 else 2 if abi < 6 else 3), 0)
    if ruleset < 0:
        return 0

    class Beneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    folder = os.open(root, os.O_PATH | os.O_CLOEXEC)
    try:
        if libc.syscall(445, ruleset, 1, ctypes.byref(Beneath(writes, folder)), 0) != 0:
            return 0
    finally:
        os.close(folder)
    if libc.prctl(38, 1, 0, 0, 0) != 0 or libc.syscall(446, ruleset, 0) != 0:  # PR_SET_NO_NEW_PRIVS, restrict_self
        return 0
    os.close(ruleset)
    return abi
"""

# Runs first in the child interpreter (python -I), then runs the program as __main__.
GUARD = r"""
import os, sys
_root = os.path.realpath(os.getcwd())
LANDLOCK_SOURCE
try:
    _kernel = _landlock(_root)
except Exception:
    _kernel = 0
del _landlock
_refused = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
            "os.forkpty", "os.kill", "os.killpg", "os.setuid", "ctypes.", "sys.addaudithook", "pty.",
            "sqlite3.enable_load_extension", "sqlite3.load_extension")
if not _kernel:
    # Without Landlock, refuse what writes files without an audit event the checks below could see.
    _refused += ("sqlite3.",)
_unaudited = {"readline", "_dbm", "_gdbm"}
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
    if event == "import" and not _kernel and args[0] in _unaudited:
        raise PermissionError(f"run_code may not import {args[0]}: it writes files unchecked")
    if event == "open" and args[2] & _writing and not _inside(args[0]):
        raise PermissionError(f"run_code may only write inside its working directory, not {args[0]}")
    if event in _changing:
        for path in args[:2]:
            if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path):
                raise PermissionError(f"run_code may only change files inside its working directory ({event})")

sys.addaudithook(_guard)
del _guard
import runpy
runpy.run_path(PROGRAM_PATH, run_name="__main__")
""".replace("LANDLOCK_SOURCE", LANDLOCK)


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
def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 where there is none): what ``run_confined`` programs run under."""
    if not sys.platform.startswith("linux"):
        return 0
    import ctypes

    try:
        abi = ctypes.CDLL(None, use_errno=True).syscall(444, None, 0, 1)
    except (OSError, AttributeError):
        return 0
    return max(int(abi), 0)


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
            "-I",  # no environment variables, no user site, no script directory on the path
            "-S",  # no site-packages: only the standard library, whose native modules raise audit events
            "-c",
            GUARD.replace("PROGRAM_PATH", repr(program)),
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
