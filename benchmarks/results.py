"""Record benchmark tables in benchmarks/RESULTS.md, one section per benchmark, with machine and date."""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
from pathlib import Path

RESULTS = Path(__file__).with_name("RESULTS.md")


def machine() -> str:
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem = ""
    try:
        kb = int(next(line for line in open("/proc/meminfo") if line.startswith("MemTotal")).split()[1])
        mem = f", {kb / 2**20:.0f} GiB RAM"
    except (OSError, StopIteration):
        pass
    cpu = platform.processor() or platform.machine()
    return f"{cpus} CPU cores ({cpu}){mem}, Python {platform.python_version()}, {platform.system()}"


def record(section: str, body: str) -> None:
    """Replace (or append) ``## section`` in RESULTS.md with ``body``, stamped with machine and date."""
    stamp = f"_Measured {dt.date.today().isoformat()} on {machine()}._\n\n"
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    block = f"## {section}\n\n{stamp}{body.strip()}\n\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.rstrip() + "\n\n" + block
    RESULTS.write_text(text)
