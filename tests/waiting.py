"""Waits sized by what they wait for, not by a clock a busy machine overruns.

A test that waits for another process or task gives up when that thing has plainly stopped
— the process exited, or it made no progress for a while — rather than after a fixed total:
a loaded machine (CI beside five other jobs) makes everything slower, not stuck. The "while"
is itself stretched by the machine's load (load average per core), measured as the wait
goes on.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

# Without progress for this long on an idle machine (seconds) a waited-for thing is stuck.
QUIET_PATIENCE = 30.0


def slowness() -> float:
    """How much slower than idle the machine is now: 1 idle, 3 with 3 runnable jobs a core."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    return max(1.0, load / (os.cpu_count() or 1))


def patience(seconds: float) -> float:
    """``seconds`` on an idle machine, stretched by the load now."""
    return seconds * slowness()


async def until(
    condition: Callable[[], bool],
    *,
    what: str,
    progress: Callable[[], object] | None = None,
    alive: Callable[[], bool] | None = None,
    stalled_after: float = QUIET_PATIENCE,
    step: float = 0.05,
) -> None:
    """Poll ``condition`` until it holds.

    Fails at once when ``alive()`` turns false (the process that should make it true has
    exited), and when ``progress()`` (a count of what is being waited for; by default the
    condition itself) has not changed for ``stalled_after`` seconds scaled by the load.
    """
    loop = asyncio.get_running_loop()
    watch = progress or condition
    seen = watch()
    since = loop.time()
    while not condition():
        if alive is not None and not alive():
            if condition():  # made true as it exited
                return
            raise AssertionError(f"{what}: the process exited first")
        now = loop.time()
        current = watch()
        if current != seen:
            seen, since = current, now
        elif now - since > patience(stalled_after):
            raise AssertionError(f"{what}: no progress for {now - since:.0f} s (still {seen!r})")
        await asyncio.sleep(step)


async def finished(process: asyncio.subprocess.Process, *, what: str, within: float) -> bytes:
    """The output of ``process`` once it exits; ``within`` is its idle-machine allowance,
    stretched by the load (a process's own progress cannot be seen from here)."""
    try:
        out, _err = await asyncio.wait_for(process.communicate(), patience(within))
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{what}: still running after {patience(within):.0f} s") from None
    return out or b""
