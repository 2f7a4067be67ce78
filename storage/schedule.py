"""A campaign's timing settings: reminder offsets and the digest frequency.

They come from the free sections of the campaign file, kept in ``Campaign.settings``:

    reminders: [7, 3, 1]              # days before the deadline and before each phase end
    reminders: {days: [7, 3, 1], at: "09:00"}   # the same, at a chosen local time
                                      # (days_before_deadline is read as days)
    reminders: off                    # no reminders for this campaign
    digest: weekly                    # daily | weekly (default, Mondays) | off

Pure functions, no database: the campaign loader uses :func:`schedule_problems` to refuse a
bad file, the reminder pass and the scheduler use :func:`reminder_settings` and
:func:`digest_frequency` to read a campaign already loaded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import time
from typing import Any

DEFAULT_OFFSETS: tuple[int, ...] = (7, 3, 1)
DIGEST_FREQUENCIES = ("daily", "weekly", "off")
DEFAULT_DIGEST = "weekly"
MAX_OFFSET_DAYS = 366
# Other spellings officers use for ``days`` (an earlier example file wrote this one).
DAYS_ALIASES = ("days_before_deadline",)


@dataclass(frozen=True)
class ReminderSettings:
    """Days before each deadline (largest first) and the local time of day, if one is set.

    ``at`` None means "when the day's sending window opens" (the end of the quiet hours).
    """

    offsets: tuple[int, ...] = DEFAULT_OFFSETS
    at: time | None = None


def _parse_time(value: Any) -> time:
    # YAML 1.1 reads an unquoted 09:00 as the sexagesimal number 540.
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(\d{1,2})[:h](\d{2})\s*", value)
        if m and int(m.group(1)) < 24 and int(m.group(2)) < 60:
            return time(int(m.group(1)), int(m.group(2)))
    raise ValueError(f'{value!r} is not a time of day (write it as "09:00")')


def _parse_offsets(value: Any) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise ValueError("must be a list of days before the deadline, e.g. [7, 3, 1]")
    offsets: list[int] = []
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int):
            raise ValueError(f"{item!r} is not a whole number of days")
        if not 0 <= item <= MAX_OFFSET_DAYS:
            raise ValueError(f"{item} days is out of range (0 to {MAX_OFFSET_DAYS})")
        offsets.append(item)
    return tuple(sorted(set(offsets), reverse=True))


def parse_reminders(value: Any) -> ReminderSettings:
    """The ``reminders:`` section as written; ValueError with a readable reason if wrong."""
    if value is None:
        return ReminderSettings()
    # "reminders: off" is the boolean False in YAML 1.1.
    if value is False or value == "off":
        return ReminderSettings(offsets=())
    if isinstance(value, dict):
        unknown = sorted(str(k) for k in value if k not in ("days", *DAYS_ALIASES, "at"))
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(unknown)} (use days and at)")
        days = [k for k in ("days", *DAYS_ALIASES) if k in value]
        if len(days) > 1:
            raise ValueError(f"give the days once, not as both {' and '.join(days)}")
        offsets = _parse_offsets(value[days[0]]) if days else DEFAULT_OFFSETS
        at = _parse_time(value["at"]) if value.get("at") is not None else None
        return ReminderSettings(offsets, at)
    return ReminderSettings(_parse_offsets(value))


def parse_digest(value: Any) -> str:
    if value is None:
        return DEFAULT_DIGEST
    if value is False:  # "digest: off" in YAML 1.1
        return "off"
    if isinstance(value, str) and value.strip().lower() in DIGEST_FREQUENCIES:
        return value.strip().lower()
    raise ValueError(f"{value!r} is not one of daily, weekly, off")


def schedule_problems(settings: dict[str, Any]) -> list[str]:
    """What is wrong with the ``reminders:`` and ``digest:`` sections, as loader messages."""
    problems: list[str] = []
    try:
        parse_reminders(settings.get("reminders"))
    except (ValueError, KeyError) as exc:
        problems.append(f"reminders: {exc}")
    try:
        parse_digest(settings.get("digest"))
    except ValueError as exc:
        problems.append(f"digest: {exc}")
    return problems


def reminder_settings(settings: dict[str, Any]) -> ReminderSettings:
    """A loaded campaign's reminder settings; a value that slipped past the loader counts as
    the default rather than stopping the reminders of every other campaign."""
    try:
        return parse_reminders(settings.get("reminders"))
    except (ValueError, KeyError):
        return ReminderSettings()


def digest_frequency(settings: dict[str, Any]) -> str:
    try:
        return parse_digest(settings.get("digest"))
    except ValueError:
        return DEFAULT_DIGEST
