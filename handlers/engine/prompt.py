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
# A button a 360-px phone shows whole. Labels written for buttons stay under it
# (tests/test_buttons.py); a label made of data (a unit's or a person's name) is shortened.
MAX_LABEL = 32


# Shorter forms union officers write themselves, tried one by one until a label fits.
SHORTER_FORMS = (
    ("Chiến sĩ thi đua", "CSTĐ"),
    ("lao động", "LĐ"),
    ("Lao động", "LĐ"),
    ("công đoàn cấp trên trực tiếp cơ sở", "CĐ cấp trên"),
    ("Công đoàn cơ sở", "CĐCS"),
    ("công đoàn cơ sở", "CĐCS"),
    ("hoàn thành xuất sắc nhiệm vụ", "HTXS nhiệm vụ"),
    ("Liên đoàn Lao động", "LĐLĐ"),
    ("Tổng Liên đoàn", "TLĐ"),
    ("Công đoàn", "CĐ"),
    ("công đoàn", "CĐ"),
    ("Trách nhiệm hữu hạn", "TNHH"),
    ("trách nhiệm hữu hạn", "TNHH"),
    ("Cổ phần", "CP"),
    ("cổ phần", "CP"),
    (", bảo đảm ATVSLĐ", ", ATVSLĐ"),
    ("công nghệ thông tin", "CNTT"),
    ("Bằng khen", "BK"),
    ("Cờ thi đua", "Cờ TĐ"),
    (" của ", " "),
    ("LĐLĐ tỉnh", "LĐLĐ"),
)


def shorten(label: str, limit: int = MAX_LABEL) -> str:
    """The label with officers' short forms ("Công đoàn cơ sở" -> "CĐCS") until it fits;
    maybe still too long."""
    for long, short in SHORTER_FORMS:
        if len(label) <= limit:
            break
        label = label.replace(long, short)
    return label


def fit_label(label: str, limit: int = MAX_LABEL) -> str:
    """ "Công đoàn cơ sở Công ty Cổ phần Xi măng Bắc Kạn" -> "CĐCS Công ty CP Xi măng Bắc
    Kạn": short forms first, then cut at a word with "…"."""
    label = shorten(label, limit)
    if len(label) <= limit:
        return label
    cut = label[: limit - 1]
    if " " in cut[limit // 2 :]:
        cut = cut[: cut.rfind(" ")]
    return cut.rstrip(" ,;:–—-") + "…"


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
    # The whole label when ``label`` was shortened to fit a button (also an alias).
    full_label: str = ""

    def __post_init__(self) -> None:
        if not self.id.isascii() or not 0 < len(self.id) <= MAX_CHOICE_ID:
            raise ValueError(f"choice id must be short ASCII: {self.id!r}")
        if len(self.label) > MAX_LABEL:
            # Shown shortened; typing the whole label still selects it.
            object.__setattr__(self, "full_label", self.label)
            object.__setattr__(self, "aliases", (*self.aliases, self.label))
            object.__setattr__(self, "label", fit_label(self.label))


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
