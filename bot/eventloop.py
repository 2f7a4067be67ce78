"""The event loop the bot's commands run on.

uvloop where it is installed (Linux and macOS; a dependency of the package there): the bot's
work is many small steps on the loop (a Bot API call, a database round trip, a timer), and
uvloop runs each of them with a fraction of asyncio's own overhead. bench/conversation.py
measured the bot's CPU per update 6.9 → 5.0 ms on SQLite and 4.9 → 4.0 ms on PostgreSQL
with nothing else changed. ``THIDUA_EVENT_LOOP=asyncio`` keeps the standard loop (to rule the
loop out when something behaves strangely).
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

LoopChoice = Literal["auto", "uvloop", "asyncio"]


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: LoopChoice) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the chosen loop; None for asyncio's own."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return None
    import uvloop  # "uvloop" when it is not installed is refused by the settings first

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: LoopChoice = "auto") -> T:
    """asyncio.run on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


def loop_name() -> str:
    """The running loop's kind, for the start's log line: "uvloop" or "asyncio"."""
    module = type(asyncio.get_running_loop()).__module__
    return "uvloop" if module.startswith("uvloop") else "asyncio"
