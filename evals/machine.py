"""The machine a figure was measured on, for every report that prints one."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def machine() -> str:
    """OS, architecture, CPU model, core count and Python version, in one line."""
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [
            line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    return (
        f"{platform.system()} {platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
