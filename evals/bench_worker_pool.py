"""The bench's worker processes and where their time goes: start, pause and stop ``firebreak worker``
processes, read their CPU from ``/proc``, and sample their PostgreSQL backends from ``pg_stat_activity``."""

from __future__ import annotations

import collections
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg

ACTIVITY_EVERY_S = 0.02  # pg_stat_activity sampling interval during a batch
STARTUP_TIMEOUT_S = 240.0  # two workers importing their stack at once (2 → 4) on busy cores


# -- worker processes ----------------------------------------------------------------------------------------


class WorkerPool:
    """Real ``firebreak worker`` processes; each one's stderr goes to a file, read for its start-up line."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env, self.folder = env, folder
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []

    def grow(self, size: int) -> None:
        """Start workers until there are ``size``; return once each has said it started."""
        command = [str(Path(sys.executable).parent / "firebreak"), "worker"]
        while len(self.processes) < size:
            log = self.folder / f"worker-{uuid.uuid4().hex[:6]}.log"
            with log.open("wb") as stderr:
                self.processes.append(subprocess.Popen(command, env=self.env, stdout=subprocess.DEVNULL, stderr=stderr))
            self.logs.append(log)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        for process, log in zip(self.processes, self.logs, strict=True):
            while "started" not in log.read_text(errors="replace"):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker did not start: {log.read_text(errors='replace')[-2000:]}")
                time.sleep(0.2)

    def use(self, size: int) -> list[int]:
        """Let only the first ``size`` workers claim runs (the others paused); their process ids.

        Call it with the queue empty: an idle worker only polls. On PostgreSQL a worker paused inside a poll's
        claim holds no row (there is none to claim); on SQLite it could hold the write lock, so a worker is only
        left paused once the database's write lock is free."""
        for process in self.processes[:size]:
            process.send_signal(signal.SIGCONT)
        for process in self.processes[size:]:
            self._pause(process)
        return [process.pid for process in self.processes[:size]]

    def _pause(self, process: subprocess.Popen[bytes]) -> None:
        database = urlsplit(self.env["FIREBREAK_DATABASE_URL"])
        for _ in range(200):
            process.send_signal(signal.SIGSTOP)
            while _state(process.pid) not in ("T", "t", None):
                time.sleep(0.001)
            if database.scheme != "sqlite" or _writable(database.path.removeprefix("/")):
                return
            process.send_signal(signal.SIGCONT)  # paused inside a claim: let it finish and try again
            time.sleep(0.005)
        raise RuntimeError(f"worker {process.pid} never paused outside a write transaction")

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)  # the worker finishes its run and closes the agent
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _state(pid: int) -> str | None:
    """A process's scheduler state (``R``, ``S``, ``T`` stopped, …) from ``/proc``; None when unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def _writable(path: str) -> bool:
    """Whether nobody holds the SQLite file's write lock right now."""
    connection = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


# -- where the time went -------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone or unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def machine_busy_s() -> float:
    """CPU seconds every process on the machine has used so far (all cores, idle and iowait excluded)."""
    try:
        ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(ticks) - ticks[3] - ticks[4]) / _TICK


class Activity:
    """On PostgreSQL, samples what the workers' backends (``application_name`` = the tag) are doing.

    Each sample counts the backends that wait for a lock (``wait_event_type = 'Lock'``: a row another
    transaction holds), that work (active, incl. waiting for WAL flushes), and that are idle inside a
    transaction (waiting for the worker's next statement, holding any rows it already updated)."""

    def __init__(self, admin_url: str | None, tag: str) -> None:
        self.admin_url, self.tag = admin_url, tag
        self.backends: set[int] = set()
        self.counts: collections.Counter[str] = collections.Counter()
        self.lock_queries: collections.Counter[str] = collections.Counter()
        self.samples = 0
        self._recording = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Activity:
        if self.admin_url is not None:
            self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def start(self) -> None:
        self.counts.clear()
        self.lock_queries.clear()
        self.samples = 0
        self._recording.set()

    def stop(self) -> dict[str, Any]:
        """Average number of backends in each state over the samples since :meth:`start`."""
        self._recording.clear()
        if self.admin_url is None or not self.samples:
            return {}
        figures: dict[str, Any] = {
            state: round(self.counts[state] / self.samples, 3)
            for state in ("lock_wait", "active", "idle_in_transaction")
        }
        figures["lock_wait_on"] = [query for query, _ in self.lock_queries.most_common(3)]
        return figures

    def _sample(self) -> None:
        query = (
            "SELECT pid, state, wait_event_type, left(query, 60) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()"
        )
        assert self.admin_url is not None
        with psycopg.connect(self.admin_url, autocommit=True) as connection:
            while not self._stop.wait(ACTIVITY_EVERY_S):
                rows = connection.execute(query, (self.tag,)).fetchall()
                self.backends.update(int(row[0]) for row in rows)
                if not self._recording.is_set():
                    continue
                self.samples += 1
                for _, state, wait_type, text in rows:
                    if wait_type == "Lock":
                        self.counts["lock_wait"] += 1
                        self.lock_queries[" ".join(str(text).split())] += 1
                    elif state == "active":
                        self.counts["active"] += 1
                    elif state and state.startswith("idle in transaction"):
                        self.counts["idle_in_transaction"] += 1
