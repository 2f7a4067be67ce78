"""What the benchmarks share: a throw-away database, percentiles, resident memory, verdicts."""

from __future__ import annotations

import math
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"


@asynccontextmanager
async def database(url: str | None, prefix: str = "thidua_bench") -> AsyncIterator[str]:
    """A fresh, empty database for one run, removed afterwards.

    No URL or a SQLite URL: a file in a temporary folder (a given SQLite URL is used as is).
    A PostgreSQL URL names a server and a database to connect to as an administrator: a new
    database is created beside it and dropped at the end, so the benchmark never touches
    the data of the database it was pointed at.
    """
    if url is None or url.startswith("sqlite"):
        with tempfile.TemporaryDirectory(prefix="thidua-bench-") as tmp:
            yield url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        return
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield f"{url.rpartition('/')[0]}/{name}"
    finally:
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def dialect_of(url: str) -> str:
    return "postgresql" if url.startswith("postgresql") else "sqlite"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by the nearest-rank method; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def rss_kb(pid: int) -> int:
    """Resident memory of a process (VmRSS in /proc/<pid>/status), in kB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rpartition(")")[2].split()
    # Fields after the command name: state is [0], utime [11], stime [12] (in clock ticks).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"
