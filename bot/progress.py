"""Progress of the long CLI commands: a bar on a terminal, one summary line otherwise.

Imports, exports, `digest --save` and `broadcast send` can run for a minute on a province's
data. On a terminal a bar (tqdm) shows how far they are, ticking at least twice a second so
a long database query still shows the time going by; piped or in cron, where a bar would be
noise, one line at the end says what was done and how long it took. Both go to stderr:
stdout carries the command's own output (an export without ``-o`` is the CSV itself).

The storage layer reports with a plain callback, ``advance(n)`` (storage.types.Progress);
a command may instead give ``poll``, a function returning the count so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable
from typing import TextIO

from tqdm import tqdm

REFRESH_SECONDS = 0.5


class Tracker:
    """The count of one operation; ``advance`` is what the storage functions call."""

    def __init__(self, poll: Callable[[], int] | None = None) -> None:
        self.count = 0
        self.total: int | None = None
        self._poll = poll

    def advance(self, n: int = 1) -> None:
        self.count += n

    def current(self) -> int:
        return self._poll() if self._poll is not None else self.count


@contextlib.asynccontextmanager
async def progress(
    description: str,
    *,
    unit: str = "row",
    total: int | None = None,
    poll: Callable[[], int] | None = None,
    stream: TextIO | None = None,
) -> AsyncIterator[Tracker]:
    """Show the progress of the block; ``tracker.total`` may be set once it is known."""
    out = stream if stream is not None else sys.stderr
    tracker = Tracker(poll)
    tracker.total = total
    started = time.monotonic()
    if not _is_terminal(out):
        yield tracker
        elapsed = time.monotonic() - started
        print(f"{description}: {tracker.current()} {unit}(s) in {elapsed:.1f} s", file=out)
        return
    bar = tqdm(total=total, desc=description, unit=f" {unit}", file=out, leave=True)

    def show() -> None:
        if tracker.total is not None and bar.total != tracker.total:
            bar.total = tracker.total
        bar.n = tracker.current()
        bar.refresh()

    async def tick() -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            show()

    ticking = asyncio.create_task(tick())
    try:
        yield tracker
        show()
    finally:
        ticking.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticking
        bar.close()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
