"""How a flow is written: a table of steps, each asking one question and judging the answer.

A step's ``ask`` builds the :class:`Prompt` (or returns a transition to skip itself when it
does not apply); ``answer`` receives the already-matched and parsed :class:`Answer` and says
where to go. Back, cancel, skip, edit-from-summary, stale buttons and resuming after a
restart are the runner's job, not the flow's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from handlers.engine.prompt import Incoming, IncomingFile, Outgoing, Prompt, Reply

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from storage.models import ChannelIdentity, Person


# --- transitions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Next:
    """Go to ``step`` of the current flow. ``edit_chain`` keeps going after an edit."""

    step: str
    edit_chain: bool = False


@dataclass(frozen=True)
class Again:
    """Re-ask the same step, after saying why."""

    reason: str


@dataclass(frozen=True)
class Switch:
    """Leave this flow and start ``flow`` (at its first step, or at ``step``)."""

    flow: str
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Edit:
    """From a summary: re-ask ``step``, then come back to the summary."""

    step: str


@dataclass(frozen=True)
class Finish:
    """The flow is done; the person is back at the main menu."""

    show_menu: bool = True


@dataclass(frozen=True)
class Cancel:
    """Drop the flow's draft, as the "Hủy" button does."""


Go = Next | Again | Switch | Edit | Finish | Cancel


@dataclass
class Answer:
    """An answer already matched against the prompt's choices and parsed for its kind."""

    choice: str | None = None
    text: str | None = None
    value: Any = None
    skipped: bool = False
    contact_phone: str | None = None
    contact_is_own: bool = False
    file: IncomingFile | None = None


AskFn = Callable[["Ctx"], Awaitable[Prompt | Go]]
AnswerFn = Callable[["Ctx", Answer], Awaitable[Go]]


@dataclass(frozen=True)
class Step:
    name: str
    ask: AskFn
    answer: AnswerFn


@dataclass(frozen=True)
class Flow:
    name: str
    steps: tuple[Step, ...]
    # Whether its steps need a signed-up person: checked by the runner before each answer
    # (a chat whose person was taken over by another chat starts over instead).
    needs_person: bool = True

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"{self.name} has no step {name!r}")

    @property
    def first(self) -> str:
        return self.steps[0].name


# --- context -----------------------------------------------------------------------------


# Channels that show no buttons: choices come as numbered text (Zalo Bot, the console).
TEXT_ONLY_CHANNELS = frozenset({"zalo", "console"})


@dataclass
class EngineConfig:
    timezone: str = "Asia/Ho_Chi_Minh"
    default_locale: str = "vi"
    # For t.me deep links in messages; empty when not on Telegram.
    bot_username: str = ""
    # Clock; tests pass a fixed one to move through a campaign.
    now: Callable[[], datetime] | None = None
    # How long an update waits for an unreachable database before it is given up (s).
    busy_patience: float = 60.0
    # Draws the digest's progress chart (PNG bytes) for /tonghop; the composition root passes
    # bot.charts.progress_chart_png (plotting stays out of handlers). None: text and XLSX only.
    digest_chart: Callable[[Any], bytes | None] | None = None
    # Draws a receipt card (PNG bytes) from handlers.receipts.ReceiptCard; the composition
    # root passes bot.receipt_card.receipt_card_png. None: the receipt is a line of text only.
    receipt_card: Callable[[Any], bytes | None] | None = None
    # Quiet hours (local time): news that can wait (a list approved in the evening) is held
    # in the outbox until they end. THIDUA_QUIET_START/END, as for the reminders.
    quiet_start: time = time(20, 0)
    quiet_end: time = time(8, 0)
    # Channels that cannot carry files but offer them as links (bot.file_links, Zalo with
    # THIDUA_PUBLIC_URL): the digest's XLSX and the plan document go there too.
    linked_file_channels: frozenset[str] = frozenset()
    # Channels that show no buttons (numbered text): prompts there say "gõ số 1", not "bấm".
    text_only_channels: frozenset[str] = TEXT_ONLY_CHANNELS
    # Channels with a "share my phone number" button (Telegram's contact keyboard).
    contact_button_channels: frozenset[str] = frozenset({"telegram"})

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class Ctx:
    """Everything a step needs for one update. ``data`` is the flow's draft, persisted."""

    session: AsyncSession
    config: EngineConfig
    identity: ChannelIdentity
    person: Person | None
    incoming: Incoming
    now: datetime
    data: dict[str, Any]
    # The flow the person is in when the update arrives ("" before the first one).
    flow: str = ""
    said: list[Reply] = field(default_factory=list)
    others: list[Outgoing] = field(default_factory=list)
    # Set when a pressed button is not taken (stale or no longer valid).
    press_refused: bool = False
    # The identity was created by this update (the first message from this address): it
    # has nothing to look up yet (claims, links).
    first_contact: bool = False
    # What a step read that the next step of the same answer needs again (a title's
    # duplicate check and its eligibility notes): read once per answer, never kept longer.
    memo: dict[Any, Any] = field(default_factory=dict)

    @property
    def today(self) -> date:
        return self.now.astimezone(self.config.tz).date()

    @property
    def locale(self) -> str:
        return (self.person.locale if self.person and self.person.locale else None) or (
            self.config.default_locale
        )

    @property
    def shows_buttons(self) -> bool:
        """Whether the person's channel shows buttons (else choices are typed by number)."""
        return self.identity.channel not in self.config.text_only_channels

    @property
    def shows_contact_button(self) -> bool:
        """Whether a prompt asking for the phone number shows a "share my number" button."""
        return self.identity.channel in self.config.contact_button_channels

    def say(self, text: str, **kwargs: Any) -> None:
        """A message shown before the next prompt."""
        self.said.append(Reply(text=text, **kwargs))

    def require_person(self) -> Person:
        if self.person is None:
            raise RuntimeError("this step needs an onboarded person")
        return self.person
