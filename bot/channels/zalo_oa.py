"""The Zalo Official Account channel: OA webhooks in, customer-service messages out.

For organisations with a verified OA. Zalo posts events to a webhook, signed in
``X-ZEvent-Signature: mac=<hex>`` with hex = SHA-256(app_id + raw body + timestamp + OA
secret) (plain SHA-256, not HMAC), and wants a 200 within 2 seconds: the event is checked and
queued, and the engine runs in a background task. It re-sends events it believes lost, so
messages are de-duplicated on ``msg_id`` in the database. Nothing is parsed before the
signature holds (the body is read up to Zalo's 256 KB, the timestamp found in the raw bytes),
JSON nested too deeply is a 400, and an event older than 10 minutes is refused: the receipts
are kept for days, so signed bytes replayed later are never answered twice.

Replies go to ``/v3.0/oa/message/cs``. Up to five choices (navigation included) travel as
"query" buttons whose payload is the choice's label: a tap arrives as the person's own text,
which the engine matches like a typed answer. More choices fall back to numbered text.

Every error comes as HTTP 200 with ``error != 0``. The access token lives about a day; the
refresh token is single use and rotates, so the new pair is written to the database *before*
the new access token is used (a crash in between must not leave us holding only a spent
refresh token). Messages outside the 7-day interaction window are refused by Zalo: they are
reported as :class:`DeliveryError` with ``unreachable`` set, which reminders and broadcasts
show as "ngoài thời hạn tương tác".
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.updates import BadBody, UpdateRunner, as_dict, load_json, read_body
from bot.channels.zalo_bot import file_notice, render_reply
from bot.config import Settings
from bot.delivery import Blocked, DeliveryError, RateLimited, TransientError, call_with_retry
from bot.file_links import FileLinks
from handlers.engine.prompt import Address, Choice, Incoming, IncomingFile, Reply, Result
from handlers.engine.runner import ACTION_PREFIX, Engine
from handlers.i18n import _, use_locale
from handlers.text import split_message
from storage.channel_state import lock_secret, read_secret, write_secret
from storage.types import utcnow

log = logging.getLogger(__name__)

CHANNEL = "zalo_oa"
MAX_TEXT = 2000
MAX_BUTTONS = 5
MAX_BUTTON_TITLE = 100
SIGNATURE_HEADER = "X-ZEvent-Signature"
MAX_WEBHOOK_BYTES = 256 * 1024
DRAIN_TIMEOUT = 10.0
HTTP_TIMEOUT = 20.0
# Refresh a little before the access token's announced end rather than fail a send on it.
REFRESH_MARGIN = timedelta(minutes=5)

TOKEN_ERRORS = frozenset({-216, -220})  # access token invalid / expired
OUTSIDE_WINDOW = frozenset({-230, -232})  # no interaction within 7 days
GONE = frozenset({-213, -217, -227})  # not following, blocked the OA, inactive account
RATE_LIMIT = -32


class OAError(Exception):
    """An OA API answer with ``error != 0`` that no retry fixes."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


# --- pure conversions (no network) ----------------------------------------------------------


# Events are answered within seconds; an older one is a replay of signed bytes. The update
# receipts are kept far longer (7 days), so every accepted event is also de-duplicated.
MAX_EVENT_AGE = timedelta(minutes=10)
_TIMESTAMP = re.compile(rb'"timestamp"\s*:\s*"?(\d{1,20})"?')


def _timestamps(raw: bytes) -> list[str]:
    """Every "timestamp" value in the body, in order (the event's own is one of them)."""
    return [m.group(1).decode() for m in _TIMESTAMP.finditer(raw)][:8]


def _recent(timestamp: str, now: datetime) -> bool:
    """Whether an event's timestamp (milliseconds since 1970) is within MAX_EVENT_AGE."""
    try:
        at = datetime.fromtimestamp(int(timestamp) / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return False
    return abs(now - at) <= MAX_EVENT_AGE


def signature(app_id: str, body: bytes, timestamp: str, secret: str) -> str:
    """The hex SHA-256 Zalo puts after ``mac=`` in ``X-ZEvent-Signature``."""
    return hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret.encode()).hexdigest()


def signature_matches(header: str, app_id: str, body: bytes, timestamp: str, secret: str) -> bool:
    given = header.strip()
    if given.lower().startswith("mac="):
        given = given[4:]
    expected = signature(app_id, body, timestamp, secret)
    # Constant time: the signature cannot be found one character at a time.
    return hmac.compare_digest(given.strip().lower().encode(), expected.encode())


@dataclass
class ParsedEvent:
    """An event worth answering; ``incoming`` is None for a message the bot cannot read."""

    user_id: str
    key: str
    incoming: Incoming | None


def _attachment(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for item in message.get("attachments") or []:
        item = as_dict(item)
        return str(item.get("type") or ""), as_dict(item.get("payload"))
    return "", {}


def _file_from(kind: str, payload: dict[str, Any]) -> IncomingFile | None:
    url = payload.get("url")
    if not isinstance(url, str) or not url:
        return None
    if kind == "image":
        return IncomingFile(url, None, "image/jpeg", None)
    name = payload.get("name")
    filename = str(name) if name else None
    mime = mimetypes.guess_type(filename)[0] if filename else None
    try:
        size: int | None = int(payload.get("size") or 0) or None
    except (TypeError, ValueError):
        size = None
    return IncomingFile(url, filename, mime, size)


def parse_event(event: dict[str, Any], channel: str = CHANNEL) -> ParsedEvent | None:
    """A webhook event as (user, key, Incoming); None for events the bot only logs or skips."""
    name = str(event.get("event_name") or "")
    timestamp = str(event.get("timestamp") or "")
    if name == "follow":
        user_id = str(as_dict(event.get("follower")).get("id") or "")
        if not user_id:
            return None
        # Following the OA is the "open the bot" of Zalo: start onboarding (or greet).
        start = Incoming(Address(channel, user_id), text="/start")
        return ParsedEvent(user_id, f"follow:{user_id}:{timestamp}", start)
    if name == "unfollow":
        log.info("%s: %s unfollowed the OA", channel, as_dict(event.get("follower")).get("id"))
        return None
    if not name.startswith("user_send_"):
        return None  # seen/received receipts, the OA's own messages echoed back, ...
    user_id = str(as_dict(event.get("sender")).get("id") or "")
    message = as_dict(event.get("message"))
    msg_id = str(message.get("msg_id") or "")
    if not user_id or not msg_id:
        log.info("%s: %s without sender or msg_id ignored", channel, name)
        return None
    address = Address(channel, user_id)
    text = message.get("text") if isinstance(message.get("text"), str) else None
    incoming: Incoming | None = None
    if name == "user_send_text" and text:
        if text.startswith(ACTION_PREFIX) and " " not in text:
            # A hidden query button of a notification ("!name:arg"), see oa_buttons().
            incoming = Incoming(address, choice_id=text[:64])
        else:
            incoming = Incoming(address, text=text)
    elif name in ("user_send_image", "user_send_file"):
        file = _file_from(*_attachment(message))
        if file is not None:
            incoming = Incoming(address, text=text or None, file=file)
    return ParsedEvent(user_id, msg_id, incoming)


def oa_buttons(reply: Reply) -> list[dict[str, str]] | None:
    """Query buttons for the reply's choices, or None when there are none or too many.

    An answer's payload is its label (the engine matches it as typed text, shown in the chat
    as if the person had typed it); a notification action's payload is its id, sent hidden.
    """
    if not reply.choices or len(reply.choices) > MAX_BUTTONS:
        return None

    def button(choice: Choice) -> dict[str, str]:
        title = choice.label
        if len(title) > MAX_BUTTON_TITLE:
            title = title[: MAX_BUTTON_TITLE - 1] + "…"
        if choice.id.startswith(ACTION_PREFIX):
            return {"title": title, "type": "oa.query.hide", "payload": choice.id}
        return {"title": title, "type": "oa.query.show", "payload": choice.label}

    return [button(c) for c in reply.choices]


def oa_messages(replies: Iterable[Reply], limit: int = MAX_TEXT) -> list[dict[str, Any]]:
    """The replies of one turn as OA ``message`` objects, as few as fit.

    Plain texts are gathered into the next message; a reply with buttons closes a message
    (the buttons ride on its last part, under the question they answer).
    """
    out: list[dict[str, Any]] = []
    pending: list[str] = []

    def flush(text: str) -> list[str]:
        return split_message(text, limit) if text.strip() else []

    for reply in replies:
        buttons = oa_buttons(reply)
        if buttons is None:
            text = render_reply(reply)
            if text:
                pending.append(text)
            continue
        own = reply.text.strip()
        if reply.file is not None:
            own = f"{own}\n\n{file_notice(reply.file.filename)}".strip()
        parts = flush("\n\n".join([*pending, own]))
        pending = []
        out += [{"text": part} for part in parts[:-1]]
        out.append(
            {
                "text": parts[-1] if parts else "…",
                "attachment": {"type": "template", "payload": {"buttons": buttons}},
            }
        )
    out += [{"text": part} for part in flush("\n\n".join(pending))]
    return out


# --- tokens ---------------------------------------------------------------------------------


class OATokens:
    """The access/refresh token pair, kept in the database because the refresh token rotates.

    The values from the settings only *seed* the database: after the first refresh they are
    spent. When the operator puts a new refresh token in the settings (the old chain was lost),
    it is recognised by its hash and takes over again.
    """

    KEY = "zalo_oa.tokens"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        oauth_base: str,
        app_id: str,
        app_secret: str,
        seed_access: str | None,
        seed_refresh: str | None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.oauth_base = oauth_base.rstrip("/")
        self.app_id = app_id
        self._app_secret = app_secret
        self._seed_access = seed_access
        self._seed_refresh = seed_refresh
        self._access: str | None = None
        self._expires_at: datetime | None = None
        self._unsaved: dict[str, Any] | None = None
        self._lock = asyncio.Lock()
        self.refreshes = 0

    @staticmethod
    def _seed_mark(refresh: str | None) -> str | None:
        return hashlib.sha256(refresh.encode()).hexdigest() if refresh else None

    def _adopt(self, stored: dict[str, Any]) -> None:
        self._access = stored.get("access_token") or None
        expires = stored.get("expires_at")
        self._expires_at = datetime.fromisoformat(expires) if expires else None

    async def load(self) -> None:
        """Take the stored pair, or the one from the settings when it is new."""
        mark = self._seed_mark(self._seed_refresh)
        async with self.sessionmaker() as session, session.begin():
            stored = await lock_secret(session, self.KEY)
            if stored is None or (mark is not None and stored.get("seed") != mark):
                stored = {
                    "access_token": self._seed_access,
                    "refresh_token": self._seed_refresh,
                    "expires_at": None,
                    "seed": mark,
                }
                await write_secret(session, self.KEY, stored, utcnow())
        self._adopt(stored)
        if self._access is None and not stored.get("refresh_token"):
            log.warning("Zalo OA: no access or refresh token; messages cannot be sent")

    async def current(self, http: aiohttp.ClientSession) -> str:
        """An access token that should work now (refreshed first when it is about to end)."""
        if self._unsaved is not None:
            await self._save_unsaved()
        if self._access is None or (
            self._expires_at is not None and utcnow() >= self._expires_at - REFRESH_MARGIN
        ):
            await self.refresh(http, stale=self._access)
        if self._access is None:
            raise DeliveryError("Zalo OA", "no access token")
        return self._access

    async def refresh(self, http: aiohttp.ClientSession, *, stale: str | None) -> None:
        """Rotate the pair once, however many sends found the token stale at the same time."""
        async with self._lock:
            if self._access != stale:
                return  # refreshed by another send while this one waited
            fresh: dict[str, Any] | None = None
            try:
                async with self.sessionmaker() as session, session.begin():
                    # Held until commit: another process refreshing waits, then sees ours.
                    stored = await lock_secret(session, self.KEY) or {}
                    if stored.get("access_token") and stored.get("access_token") != stale:
                        self._adopt(stored)  # another process rotated it already
                        return
                    fresh = {**stored, **await self._request(http, stored.get("refresh_token"))}
                    await write_secret(session, self.KEY, fresh, utcnow())
            except SQLAlchemyError as exc:
                if fresh is None:
                    raise
                # Zalo has rotated the pair but the database did not take it. The old refresh
                # token is spent: keep the new pair in memory and keep trying to save it.
                log.error("Zalo OA: the refreshed token could not be saved (%s)", exc)
                self._unsaved = fresh
            self.refreshes += 1
            # Committed (or at least held): only now is the new access token used.
            self._adopt(fresh)
            log.info("Zalo OA: access token refreshed")

    async def _save_unsaved(self) -> None:
        value = self._unsaved
        if value is None:
            return
        try:
            async with self.sessionmaker() as session, session.begin():
                await write_secret(session, self.KEY, value, utcnow())
        except Exception as exc:
            log.error("Zalo OA: the refreshed token is still not saved (%s)", exc)
            return
        self._unsaved = None

    async def _request(self, http: aiohttp.ClientSession, refresh: str | None) -> dict[str, Any]:
        if not refresh:
            log.error("Zalo OA: no refresh token; set ZALO_OA_REFRESH_TOKEN")
            raise DeliveryError("Zalo OA token refresh", "no refresh token")
        form = {"refresh_token": refresh, "app_id": self.app_id, "grant_type": "refresh_token"}
        try:
            async with http.post(
                f"{self.oauth_base}/v4/oa/access_token",
                data=form,
                headers={"secret_key": self._app_secret},
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"token refresh: {exc.__class__.__name__}") from None
        try:
            body = as_dict(json.loads(raw))
        except ValueError:
            raise TransientError(f"token refresh: HTTP {status} without JSON") from None
        access, new_refresh = body.get("access_token"), body.get("refresh_token")
        if not access or not new_refresh:
            # Never log the body: on success it holds the tokens; here it holds the reason.
            reason = body.get("error_description") or body.get("message") or body.get("error")
            log.error(
                "Zalo OA: token refresh refused (%s). If the refresh token was lost, create a "
                "new one in the Zalo developer console and set ZALO_OA_REFRESH_TOKEN.",
                str(reason)[:200],
            )
            raise DeliveryError("Zalo OA token refresh", f"refused: {str(reason)[:200]}")
        try:
            lifetime = int(body.get("expires_in") or 0)
        except (TypeError, ValueError):
            lifetime = 0
        expires = (utcnow() + timedelta(seconds=lifetime)).isoformat() if lifetime else None
        return {
            "access_token": str(access),
            "refresh_token": str(new_refresh),
            "expires_at": expires,
        }

    async def stored_refresh_token(self) -> str | None:
        """For tests and the operator's checks: the refresh token the database holds."""
        async with self.sessionmaker() as session:
            stored = await read_secret(session, self.KEY)
        return (stored or {}).get("refresh_token")


# --- the channel ----------------------------------------------------------------------------


class ZaloOAChannel:
    """Receives OA webhooks, feeds the engine, answers with customer-service messages."""

    def __init__(
        self,
        engine: Engine,
        app_id: str,
        secret: str,
        *,
        access_token: str | None = None,
        refresh_token: str | None = None,
        api_base: str = "https://openapi.zalo.me",
        oauth_base: str = "https://oauth.zaloapp.com",
        webhook_secret: str | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        channel_name: str = CHANNEL,
        max_concurrent_updates: int = 64,
        retry_delay: float = 0.5,
        rate_limit_wait: float = 2.0,
    ) -> None:
        self.name = channel_name
        self.engine = engine
        self.app_id = app_id
        self.api_base = api_base.rstrip("/")
        # Which secret signs the webhook is not settled in Zalo's documents: the OA secret
        # key unless a separate one is configured.
        self._webhook_secret = webhook_secret or secret
        self.retry_delay = retry_delay
        self.rate_limit_wait = rate_limit_wait
        sessionmaker = sessionmaker or engine.sessionmaker
        self.tokens = OATokens(
            sessionmaker, oauth_base, app_id, secret, access_token, refresh_token
        )
        self.runner = UpdateRunner(
            sessionmaker, channel_name, max_concurrent=max_concurrent_updates
        )
        self._http: aiohttp.ClientSession | None = None
        self._stopped = asyncio.Event()
        self._closing = False
        # Files go out as signed links to the bot's web server when it has a public address
        # (bot.file_links); without one, a line says the file cannot be sent here.
        self.file_links: FileLinks | None = None

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> ZaloOAChannel:
        """The channel as configured by the ZALO_OA_* settings."""
        app_id = (settings.zalo_oa_app_id or "").strip()
        secret = _value(settings.zalo_oa_secret)
        if not app_id or secret is None:
            raise ValueError("ZALO_OA_APP_ID and ZALO_OA_SECRET are not set")
        return cls(
            engine,
            app_id,
            secret,
            access_token=_value(settings.zalo_oa_access_token),
            refresh_token=_value(settings.zalo_oa_refresh_token),
            api_base=settings.zalo_oa_api_base,
            oauth_base=settings.zalo_oa_oauth_base,
            webhook_secret=_value(settings.zalo_oa_webhook_secret),
            sessionmaker=sessionmaker,
            max_concurrent_updates=settings.updates_in_hand,
        )

    @property
    def locale(self) -> str:
        return self.engine.config.default_locale

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session, take the token pair from the database (or the settings)."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        await self.tokens.load()
        await self.runner.forget_old()

    async def run(self) -> None:
        """Events come by webhook (see :meth:`webhook_app`): wait until :meth:`stop`."""
        if not self._closing:
            await self._stopped.wait()

    async def stop(self) -> None:
        self._closing = True
        self._stopped.set()
        await self.runner.drain(DRAIN_TIMEOUT)
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- webhook -------------------------------------------------------------------------

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """POST from Zalo: verify the signature, queue the event, answer 200 at once."""
        header = request.headers.get(SIGNATURE_HEADER)
        if not header:
            return web.json_response({"error": 401, "message": "missing signature"}, status=401)
        raw = await read_body(request, MAX_WEBHOOK_BYTES)
        if raw is None:
            return web.json_response({"error": 413, "message": "too large"}, status=413)
        # The signature covers the body and its timestamp: the candidates are found in the
        # raw bytes, so nothing is parsed before the signature holds (our own app id, not
        # the body's: a forger cannot choose what is hashed).
        signed = next(
            (
                stamp
                for stamp in _timestamps(raw)
                if signature_matches(header, self.app_id, raw, stamp, self._webhook_secret)
            ),
            None,
        )
        if signed is None:
            log.warning("Zalo OA webhook with a wrong signature from %s", request.remote)
            return web.json_response({"error": 403, "message": "bad signature"}, status=403)
        try:
            event = as_dict(load_json(raw))
        except BadBody:
            return web.json_response({"error": 400, "message": "bad JSON"}, status=400)
        if str(event.get("timestamp") or "") != signed:
            return web.json_response({"error": 403, "message": "bad signature"}, status=403)
        if not _recent(signed, utcnow()):
            # Signed bytes replayed later are refused; within the window the de-dup on
            # msg_id (kept for days) answers each event once.
            log.warning("Zalo OA event dated %s refused: older than %s", signed, MAX_EVENT_AGE)
            return web.json_response({"error": 400, "message": "event too old"}, status=400)
        if self._closing:
            # Not 200: Zalo keeps the event and delivers it again to the restarted bot.
            return web.json_response({"error": 503, "message": "restarting"}, status=503)
        self.feed(event)
        return web.json_response({"error": 0, "message": "ok"})

    def webhook_routes(self, path: str) -> list[web.RouteDef]:
        """The webhook as a route, for the composition root's web server (``add_routes``)."""
        return [web.post(path, self.handle_webhook)]

    def webhook_app(self, path: str = "/") -> web.Application:
        """A small app of its own answering the webhook at ``path`` (serve it standalone)."""
        app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
        app.add_routes(self.webhook_routes(path))
        return app

    def feed(self, event: dict[str, Any]) -> bool:
        """Hand one verified event to the background runner; False when it needs no answer."""
        parsed = parse_event(event, self.name)
        if parsed is None:
            return False
        self.runner.submit(parsed.user_id, parsed.key, partial(self._answer, parsed))
        return True

    async def _answer(self, parsed: ParsedEvent) -> None:
        # A sticker or anything else unreadable: the engine says so and asks again.
        incoming = parsed.incoming or Incoming(Address(self.name, parsed.user_id), unreadable=True)
        replies = (await self._handle(incoming)).replies
        try:
            await self._deliver(parsed.user_id, replies)
        except DeliveryError as exc:
            log.warning("%s: reply to %s not delivered: %s", self.name, parsed.user_id, exc)

    async def _handle(self, incoming: Incoming) -> Result:
        try:
            return await self.engine.handle(incoming)
        except Exception:
            log.exception("engine failed on an update from %s", incoming.address)
            with use_locale(self.locale):
                text = _("Sorry, something went wrong on our side. Please try again.")
            return Result(replies=[Reply(text)])

    # --- replies out ---------------------------------------------------------------------

    async def send(self, address_external_id: str, reply: Reply) -> None:
        """Send to someone who did not just write; DeliveryError(unreachable) outside 7 days."""
        user_id = address_external_id.strip()
        if not user_id or len(user_id) > 100:
            log.error("not a Zalo OA user id: %r", address_external_id[:100])
            raise DeliveryError(f"send to {address_external_id[:100]!r}", "bad address")
        await self._deliver(user_id, [reply])

    async def _deliver(self, user_id: str, replies: list[Reply]) -> None:
        with use_locale(self.locale):
            if self.file_links is not None:
                replies = await self.file_links.as_links(replies)
            messages = oa_messages(replies)
        for message in messages:
            what = f"Zalo OA message to {user_id}"
            body = {"recipient": {"user_id": user_id}, "message": message}
            # A later part alone would read out of order: the first failure stops the rest.
            await call_with_retry(
                partial(self._send_once, body, what), what=what, base_delay=self.retry_delay
            )

    async def _send_once(self, body: dict[str, Any], what: str) -> None:
        if self._http is None:
            raise TransientError("the channel is not started")
        for attempt in (1, 2):
            token = await self.tokens.current(self._http)
            answer = await self._post(f"{self.api_base}/v3.0/oa/message/cs", body, token)
            code = _int(answer.get("error"), 0)
            if code == 0:
                return
            if code in TOKEN_ERRORS and attempt == 1:
                log.info("Zalo OA: access token rejected (%d), refreshing", code)
                await self.tokens.refresh(self._http, stale=token)
                continue
            raise self._classify(code, str(answer.get("message") or ""), what)

    def _classify(self, code: int, message: str, what: str) -> Exception:
        if code == RATE_LIMIT:
            return RateLimited(self.rate_limit_wait)
        if code in OUTSIDE_WINDOW:
            log.warning("%s: outside the 7-day interaction window (%d)", what, code)
            return DeliveryError(what, "outside the interaction window", unreachable=True)
        if code in GONE:
            return Blocked(f"{code} {message}")
        log.error("%s: rejected by Zalo (%d %s)", what, code, message[:200])
        return DeliveryError(what, f"rejected: {code} {message[:200]}")

    async def _post(self, url: str, body: dict[str, Any], token: str) -> dict[str, Any]:
        assert self._http is not None
        try:
            async with self._http.post(
                url,
                json=body,
                headers={"access_token": token},
                timeout=aiohttp.ClientTimeout(total=HTTP_TIMEOUT),
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(f"{exc.__class__.__name__}: {exc}") from None
        if status >= 500 or status == 429:
            raise TransientError(f"HTTP {status}")
        try:
            return as_dict(json.loads(raw))
        except ValueError:
            raise TransientError(f"HTTP {status} without a JSON body") from None


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _value(secret: SecretStr | None) -> str | None:
    return (secret.get_secret_value().strip() or None) if secret is not None else None
