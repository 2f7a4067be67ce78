"""The platform-neutral prompt model: what the engine says and what it receives.

Channels render :class:`Reply` (Telegram inline buttons, numbered text on Zalo and in the
terminal) and turn platform updates into :class:`Incoming`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

# Choice ids travel in Telegram callback_data (≤ 64 bytes with a prefix): short and ASCII.
MAX_CHOICE_ID = 40

BACK = "_back"
CANCEL = "_cancel"
SKIP = "_skip"
NAV_IDS = (BACK, CANCEL, SKIP)
# Choice ids of notification buttons ("!approve:12"): actions, not answers to a question.
ACTION_PREFIX = "!"


class InputKind(StrEnum):
    CHOICE = "choice"  # one of the choices (button, number or label)
    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    MONEY = "money"
    PHONE = "phone"
    FILE = "file"


@dataclass(frozen=True)
class Choice:
    id: str
    label: str
    # Extra words that select this choice when typed (abbreviations such as "LĐTT").
    aliases: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.id.isascii() or not 0 < len(self.id) <= MAX_CHOICE_ID:
            raise ValueError(f"choice id must be short ASCII: {self.id!r}")


@dataclass(frozen=True)
class Prompt:
    """One question of a flow."""

    text: str
    choices: tuple[Choice, ...] = ()
    kind: InputKind = InputKind.CHOICE
    optional: bool = False  # offers "Bỏ qua"
    allow_back: bool = True
    allow_cancel: bool = True
    request_contact: bool = False  # Telegram: a "share my phone number" keyboard button
    # Show the choices in one column (long labels) rather than packed in rows.
    one_per_row: bool = True


@dataclass(frozen=True)
class OutFile:
    filename: str
    content: bytes
    mime: str
    # A file the platform already has (a Telegram file_id): sent by reference, ``content``
    # is then empty. Only for the channel the id came from (broadcast attachments).
    file_id: str | None = None
    # "document" or "photo" (a photo is shown inline where the platform can).
    kind: str = "document"


@dataclass
class Reply:
    """One message to send. ``choices`` include the navigation buttons."""

    text: str
    choices: tuple[Choice, ...] = ()
    request_contact: bool = False
    remove_keyboard: bool = False
    # Prompt sequence number: a button pressed on an older prompt is recognised as stale.
    seq: int | None = None
    one_per_row: bool = True
    file: OutFile | None = None


@dataclass(frozen=True)
class Address:
    """Where a person can be reached: a channel name and the id on that channel."""

    channel: str
    external_id: str


@dataclass
class Outgoing:
    """A reply for someone other than the sender (an officer, a leader)."""

    to: Address
    reply: Reply
    # Held in the outbox until then (news for members waits out the quiet hours).
    not_before: datetime | None = None


@dataclass
class IncomingFile:
    file_id: str
    filename: str | None
    mime: str | None
    size: int | None


@dataclass
class Incoming:
    """One thing a person did: typed text, pressed a button, shared a contact or a file."""

    address: Address
    text: str | None = None
    choice_id: str | None = None
    seq: int | None = None
    contact_phone: str | None = None
    # Telegram says whether a shared contact is the sender's own number.
    contact_is_own: bool = False
    file: IncomingFile | None = None
    display_name: str | None = None
    locale: str | None = None
    # The platform's id of this event (message id, callback id). A platform that delivers
    # the same event again (a webhook retry, a restart before the update was confirmed)
    # gets no second answer: the engine remembers the recent ids with the conversation.
    event_id: str | None = None
    # The platform's id of the message a pressed button sits on (Telegram message_id), for
    # channels that can edit messages: a broadcast edits its confirmation into a progress bar.
    message_ref: str | None = None
    # Something the channel could not read (a Zalo sticker): the question is asked again.
    unreadable: bool = False


@dataclass
class Result:
    """What the engine answers: replies to the sender, and messages to others."""

    replies: list[Reply] = field(default_factory=list)
    others: list[Outgoing] = field(default_factory=list)
    # The language the replies are in: channels label their own buttons in it too.
    locale: str | None = None
    # False when a pressed button was refused (an earlier question's, no longer valid):
    # channels then leave it unmarked instead of showing it as chosen.
    press_taken: bool = True


def reply_to_payload(reply: Reply) -> dict[str, object]:
    """A Reply as JSON for the outbox (the file travels separately, as bytes)."""
    return {
        "text": reply.text,
        "choices": [[c.id, c.label] for c in reply.choices],
        "one_per_row": reply.one_per_row,
    }


def reply_from_payload(payload: dict[str, object], file: OutFile | None = None) -> Reply:
    raw_choices = payload.get("choices") or []
    assert isinstance(raw_choices, list)
    return Reply(
        text=str(payload.get("text", "")),
        choices=tuple(Choice(str(c[0]), str(c[1])) for c in raw_choices),
        one_per_row=bool(payload.get("one_per_row", True)),
        file=file,
    )
