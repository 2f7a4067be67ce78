"""Telegram updates read as the JSON they arrive in (a getUpdates answer, a webhook body).

The bot reads a handful of fields of an update: who wrote, in which chat, the text or the
shared contact or the file, the pressed button's data and the message it was on. aiogram
validated every update whole into pydantic models (each entity, each nested object) and
then propagated it through its dispatcher's observers and middlewares, for the bot to read
those few fields; bench/conversation.py measured that at about a tenth of the bot's CPU.

Here only the fields the bot reads are looked at, each checked for its JSON type. One that
is missing or of the wrong type makes the update unreadable: :class:`UnreadableUpdate` says
where and what (``message.chat: missing``), never the value, which is the person's words.
Everything else in an update (entities, replies, forwarded-from, fields Telegram adds one day)
is left alone, as the models left unknown fields alone.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from handlers.engine.prompt import Address, Incoming, IncomingFile

log = logging.getLogger(__name__)

# The update kinds the bot asks for (getUpdates and setWebhook); Telegram sends no others,
# and any other that still arrives is ignored.
ALLOWED_UPDATES = ["message", "callback_query"]
CALLBACK_PREFIX = "c"
# A malformed or foreign callback is answered as a press on an earlier question.
STALE_SEQ = -1


class UnreadableUpdate(ValueError):
    """An update lacking a field the bot reads, or with a field of the wrong JSON type."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f"{where}: {problem}")
        self.where = where
        self.problem = problem


@dataclass(frozen=True, slots=True)
class PressedMessage:
    """The message a pressed button was on, as far as marking the press needs it."""

    chat_id: int
    message_id: int
    text: str | None
    label: str | None  # the pressed button's, None when the keyboard has no such button


@dataclass(frozen=True, slots=True)
class MessageUpdate:
    """A person wrote in the private chat, shared a contact or sent a file."""

    update_id: int
    user_id: int
    incoming: Incoming


@dataclass(frozen=True, slots=True)
class PressUpdate:
    """A person pressed an inline button."""

    update_id: int
    user_id: int
    query_id: str
    incoming: Incoming
    # None: the message is too old for Telegram to show it to the bot (or there is none).
    pressed: PressedMessage | None


TelegramUpdate = MessageUpdate | PressUpdate


class _Object:
    """A JSON object of an update with the path it was found at, read field by field."""

    __slots__ = ("fields", "path")

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, dict):
            raise UnreadableUpdate(path or "update", "not an object")
        self.fields: dict[str, Any] = value
        self.path = path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str, kind: type | tuple[type, ...], what: str, required: bool) -> Any:
        value = self.fields.get(key)
        if value is None:
            if required:
                raise UnreadableUpdate(self._where(key), "missing")
            return None
        # bool is an int to Python, not to JSON.
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise UnreadableUpdate(self._where(key), f"not {what}")
        return value

    def integer(self, key: str) -> int:
        value: int = self._get(key, int, "an integer", True)
        return value

    def optional_integer(self, key: str) -> int | None:
        value: int | None = self._get(key, int, "an integer", False)
        return value

    def text(self, key: str) -> str:
        value: str = self._get(key, str, "a string", True)
        return value

    def optional_text(self, key: str) -> str | None:
        value: str | None = self._get(key, str, "a string", False)
        return value

    def flag(self, key: str) -> bool:
        value: bool = self._get(key, bool, "a boolean", True)
        return value

    def object(self, key: str) -> _Object:
        return _Object(self._get(key, dict, "an object", True), self._where(key))

    def optional_object(self, key: str) -> _Object | None:
        value = self._get(key, dict, "an object", False)
        return None if value is None else _Object(value, self._where(key))

    def optional_objects(self, key: str) -> list[_Object]:
        """A list of objects (absent: empty)."""
        value = self._get(key, list, "a list", False) or []
        where = self._where(key)
        return [_Object(item, f"{where}.{i}") for i, item in enumerate(value)]


@dataclass(frozen=True, slots=True)
class _User:
    id: int
    is_bot: bool
    full_name: str
    language_code: str | None


def _user(user: _Object) -> _User:
    first_name = user.text("first_name")
    last_name = user.optional_text("last_name")
    return _User(
        id=user.integer("id"),
        is_bot=user.flag("is_bot"),
        # As Telegram clients (and aiogram's User.full_name) show it.
        full_name=f"{first_name} {last_name}" if last_name else first_name,
        language_code=user.optional_text("language_code"),
    )


def read_update(update: Any, channel: str) -> TelegramUpdate | None:
    """What an update asks of the bot; None when it asks nothing (not a private message or a
    button press: a group, another bot, an edited message, a kind the bot did not ask for).

    Raises :class:`UnreadableUpdate` when a field the bot reads is missing or mistyped.
    """
    root = _Object(update, "")
    update_id = root.integer("update_id")
    if (message := root.optional_object("message")) is not None:
        return _message_update(update_id, message, channel)
    if (query := root.optional_object("callback_query")) is not None:
        return _press_update(update_id, query, channel)
    kind = next((key for key in root.fields if key != "update_id"), "empty")
    log.debug("ignoring a Telegram %s update", kind)
    return None


def _message_update(update_id: int, message: _Object, channel: str) -> MessageUpdate | None:
    chat = message.object("chat")
    chat_id = chat.integer("id")
    sender = message.optional_object("from")
    user = _user(sender) if sender is not None else None
    if user is None or user.is_bot or chat.text("type") != "private":
        log.debug("ignoring a message outside a private chat (chat %s)", chat_id)
        return None
    return MessageUpdate(update_id, user.id, _incoming_from_message(message, user, channel))


def _incoming_from_message(message: _Object, user: _User, channel: str) -> Incoming:
    """What a person did in a message: text, a shared contact, a document or a photo."""
    message_id = message.integer("message_id")
    contact_phone: str | None = None
    contact_is_own = False
    if (contact := message.optional_object("contact")) is not None:
        contact_phone = contact.text("phone_number")
        # Only a contact carrying the sender's own id is a verified number of theirs.
        contact_is_own = contact.optional_integer("user_id") == user.id
    file: IncomingFile | None = None
    if (doc := message.optional_object("document")) is not None:
        file = IncomingFile(
            doc.text("file_id"),
            doc.optional_text("file_name"),
            doc.optional_text("mime_type"),
            doc.optional_integer("file_size"),
        )
    elif photo := message.optional_objects("photo"):
        biggest = photo[-1]  # Telegram lists sizes from small to large
        file = IncomingFile(
            biggest.text("file_id"), None, "image/jpeg", biggest.optional_integer("file_size")
        )
    text = message.optional_text("text")
    return Incoming(
        address=Address(channel, str(user.id)),
        text=text if text is not None else message.optional_text("caption"),
        contact_phone=contact_phone,
        contact_is_own=contact_is_own,
        file=file,
        display_name=user.full_name,
        locale=user.language_code,
        event_id=f"m{message_id}",
    )


def _press_update(update_id: int, query: _Object, channel: str) -> PressUpdate:
    user = _user(query.object("from"))
    query_id = query.text("id")
    data = query.optional_text("data") or ""
    choice_id, seq = parse_callback_data(data)
    message = query.optional_object("message")
    pressed: PressedMessage | None = None
    message_ref: str | None = None
    if message is not None:
        message_id = message.integer("message_id")
        message_ref = str(message_id)
        # Telegram gives a message too old to be shown as {chat, message_id, date: 0}.
        if message.integer("date") != 0:
            pressed = PressedMessage(
                chat_id=message.object("chat").integer("id"),
                message_id=message_id,
                text=message.optional_text("text"),
                label=pressed_label(message, data),
            )
    incoming = Incoming(
        address=Address(channel, str(user.id)),
        choice_id=choice_id,
        seq=seq,
        display_name=user.full_name,
        locale=user.language_code,
        event_id=f"q{query_id}",
        message_ref=message_ref,
    )
    return PressUpdate(update_id, user.id, query_id, incoming, pressed)


def parse_callback_data(data: str) -> tuple[str, int]:
    """The (choice id, prompt seq) of a press (``c:<seq>:<choice id>``, as
    ``bot.channels.telegram.callback_data`` writes it); anything unexpected counts as stale."""
    prefix, _sep, rest = data.partition(":")
    seq_text, sep, choice_id = rest.partition(":")
    if prefix != CALLBACK_PREFIX or not sep or not choice_id:
        return (data[:64] or "?"), STALE_SEQ
    try:
        return choice_id, int(seq_text)
    except ValueError:
        return choice_id, STALE_SEQ


def pressed_label(message: _Object, data: str) -> str | None:
    """The label of the inline button of ``message`` that carries ``data``."""
    markup = message.optional_object("reply_markup")
    if markup is None:
        return None
    where = f"{markup.path}.inline_keyboard"
    rows = markup.fields.get("inline_keyboard")
    if not isinstance(rows, list):
        raise UnreadableUpdate(where, "missing" if rows is None else "not a list")
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise UnreadableUpdate(f"{where}.{i}", "not a list")
        for j, item in enumerate(row):
            button = _Object(item, f"{where}.{i}.{j}")
            if button.optional_text("callback_data") == data:
                return button.text("text")
    return None
