"""The Zalo Bot Platform channel: text in, numbered text out.

Zalo's bot API looks like Telegram's (``{base}/bot{token}/{method}``, an ``{ok, result}``
envelope) but has no buttons, no keyboards and no message edits, so every prompt is rendered
by :func:`numbered_text` and the engine reads answers typed as a number or as the label.
Errors may come with HTTP 200: only ``ok`` says whether a call worked.

Updates arrive by long polling (``getUpdates`` hands out *one* update per call, or error 408
when none came within the timeout; there are no offsets) or by webhook (``setWebhook`` with a
shared secret sent back in ``X-Bot-Api-Secret-Token``). Either way an update has no id of its
own: it is de-duplicated on ``message_id`` in the database (see :mod:`bot.channels.updates`).

Plan limits (a few thousand messages a month on the basic plan) make every message count:
the replies of one turn go out as one message when they fit in 2,000 characters.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.updates import BadBody, UpdateRunner, as_dict, load_json, read_body
from bot.config import Settings
from bot.delivery import Blocked, DeliveryError, RateLimited, TransientError, call_with_retry
from bot.file_links import FileLinks
from handlers.engine.prompt import Address, Incoming, IncomingFile, Reply, Result
from handlers.engine.render import numbered_text
from handlers.engine.runner import ACTION_PREFIX, Engine
from handlers.i18n import _, use_locale
from handlers.text import split_message

log = logging.getLogger(__name__)

CHANNEL = "zalo"
MAX_TEXT = 2000
SECRET_HEADER = "X-Bot-Api-Secret-Token"
NO_UPDATE_YET = 408
DRAIN_TIMEOUT = 10.0
MAX_POLL_BACKOFF = 30.0
# A webhook body is one small JSON object; anything bigger is not from Zalo.
MAX_WEBHOOK_BYTES = 256 * 1024

TEXT_EVENT = "message.text.received"
IMAGE_EVENT = "message.image.received"


class ZaloApiError(Exception):
    """A call the Bot API answered with ``ok: false`` (and that retrying will not fix)."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code
        self.description = description


# --- pure conversions (no network) ----------------------------------------------------------


@dataclass
class ParsedUpdate:
    """An update worth answering: who, its de-duplication key, and what they did.

    ``incoming`` is None for a message the bot cannot read (a sticker, a voice note).
    """

    chat_id: str
    key: str
    incoming: Incoming | None


def unwrap(body: Any) -> list[dict[str, Any]]:
    """The updates in a getUpdates result or a webhook body: wrapped in {ok, result} or not."""
    if isinstance(body, dict) and "result" in body and "event_name" not in body:
        body = body["result"]
    if isinstance(body, list):  # not seen from Zalo, but harmless to accept
        return [u for u in body if isinstance(u, dict)]
    return [body] if isinstance(body, dict) and body else []


def _photo_url(message: dict[str, Any]) -> str | None:
    photo = message.get("photo_url") or message.get("photo")
    if isinstance(photo, dict):  # some clients describe it as an object with a url
        photo = photo.get("url")
    return photo if isinstance(photo, str) and photo else None


def parse_update(update: dict[str, Any], channel: str = CHANNEL) -> ParsedUpdate | None:
    """An update as (chat, key, Incoming); None for what the bot ignores (groups, bots)."""
    message = as_dict(update.get("message"))
    sender = as_dict(message.get("from"))
    chat = as_dict(message.get("chat"))
    chat_id = str(chat.get("id") or sender.get("id") or "")
    message_id = str(message.get("message_id") or "")
    if not chat_id or not message_id:
        log.info("%s: update without chat or message id ignored", channel)
        return None
    if sender.get("is_bot") or str(chat.get("chat_type") or "PRIVATE").upper() != "PRIVATE":
        log.debug("%s: ignoring a message outside a private chat (%s)", channel, chat_id)
        return None
    name = sender.get("display_name") or sender.get("first_name") or sender.get("name")
    address = Address(channel, chat_id)
    display_name = str(name) if name else None
    event = update.get("event_name")
    incoming: Incoming | None = None
    if event == TEXT_EVENT and isinstance(message.get("text"), str):
        incoming = Incoming(address, text=message["text"], display_name=display_name)
    elif event == IMAGE_EVENT and _photo_url(message):
        url = _photo_url(message) or ""
        caption = message.get("caption")
        incoming = Incoming(
            address,
            text=caption if isinstance(caption, str) and caption else None,
            file=IncomingFile(url, None, "image/jpeg", None),
            display_name=display_name,
        )
    return ParsedUpdate(chat_id, message_id, incoming)


def file_notice(filename: str) -> str:
    return _(
        "(The file “{name}” cannot be sent in Zalo. Please ask your union officer for it, or "
        "open the bot on Telegram or the web page.)"
    ).format(name=filename)


def render_reply(reply: Reply) -> str:
    """One reply as plain text: choices numbered, a file replaced by a one-line notice.

    Notification actions ("!name:arg" buttons) cannot be typed back on a text channel, so
    they are left out rather than numbered like answers to the current question.
    """
    shown = Reply(
        reply.text,
        choices=tuple(c for c in reply.choices if not c.id.startswith(ACTION_PREFIX)),
    )
    text = numbered_text(shown).strip()
    if reply.file is not None:
        text = f"{text}\n\n{file_notice(reply.file.filename)}".strip()
    return text


def render_parts(replies: Iterable[Reply], limit: int = MAX_TEXT) -> list[str]:
    """The replies of one turn as few messages as fit, split at word boundaries."""
    texts = [text for text in (render_reply(r) for r in replies) if text]
    if not texts:
        return []
    return split_message("\n\n".join(texts), limit)


def secret_matches(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so the secret cannot be guessed one character at a time."""
    return hmac.compare_digest((given or "").encode(), expected.encode())


# --- the channel ----------------------------------------------------------------------------


class ZaloBotChannel:
    """Polls (or receives webhooks from) the Zalo Bot API, feeds the engine, answers in text."""

    def __init__(
        self,
        engine: Engine,
        token: str,
        api_base: str,
        *,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        channel_name: str = CHANNEL,
        polling_timeout: int = 30,
        max_concurrent_updates: int = 64,
        retry_delay: float = 0.5,
    ) -> None:
        if webhook_url and not (webhook_secret and 8 <= len(webhook_secret) <= 256):
            raise ValueError("a Zalo webhook needs ZALO_WEBHOOK_SECRET of 8 to 256 characters")
        self.name = channel_name
        self.engine = engine
        self._token = token
        self.api_base = api_base.rstrip("/")
        self.webhook_url = webhook_url or None
        self._webhook_secret = webhook_secret or None
        self.polling_timeout = polling_timeout
        self.retry_delay = retry_delay
        self.runner = UpdateRunner(
            sessionmaker or engine.sessionmaker, channel_name, max_concurrent=max_concurrent_updates
        )
        self._http: aiohttp.ClientSession | None = None
        self._poller: asyncio.Task[None] | None = None
        self._stopped = asyncio.Event()
        self._closing = False
        # Files go out as signed links to the bot's web server when it has a public address
        # (bot.file_links); without one, a line says the file cannot be sent here.
        self.file_links: FileLinks | None = None
        self.bot_info: dict[str, Any] = {}

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    ) -> ZaloBotChannel:
        """The channel as configured by ZALO_BOT_TOKEN, ZALO_API_BASE and ZALO_WEBHOOK_*."""
        token = settings.zalo_token
        if token is None:
            raise ValueError("ZALO_BOT_TOKEN is not set")
        secret = settings.zalo_webhook_secret
        return cls(
            engine,
            token,
            settings.zalo_api_base,
            sessionmaker=sessionmaker,
            webhook_url=(settings.zalo_webhook_url or "").strip() or None,
            webhook_secret=secret.get_secret_value().strip() if secret else None,
            max_concurrent_updates=settings.updates_in_hand,
        )

    @property
    def locale(self) -> str:
        # Zalo tells nothing about the person's language: the bot's default it is.
        return self.engine.config.default_locale

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Check the token (getMe), prune old receipts, and register the webhook if used."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        info = await call_with_retry(
            partial(self._checked, "getMe", {}), what="Zalo getMe", base_delay=self.retry_delay
        )
        self.bot_info = as_dict(info)
        log.info("Zalo bot %s is ready", self.bot_info.get("account_name") or "?")
        await self.runner.forget_old()
        if self.webhook_url and self._webhook_secret:
            await call_with_retry(
                partial(
                    self._checked,
                    "setWebhook",
                    {"url": self.webhook_url, "secret_token": self._webhook_secret},
                ),
                what="Zalo setWebhook",
                base_delay=self.retry_delay,
            )
            log.info("Zalo webhook registered")

    async def run(self) -> None:
        """Receive updates until :meth:`stop` (long polling; in webhook mode, just wait)."""
        if self._closing:
            return
        if self.webhook_url:
            await self._stopped.wait()
            return
        # One task from the first call on, so stop() can end it at any point.
        self._poller = asyncio.create_task(self._poll())
        await asyncio.wait([self._poller])
        if not self._poller.cancelled():
            self._poller.result()

    async def stop(self) -> None:
        """Stop receiving, let updates in hand finish and answer, close the connections."""
        self._closing = True
        self._stopped.set()
        poller = self._poller
        if poller is not None and not poller.done():
            # An update Zalo hands out in this very moment is lost (there is no offset to
            # confirm it with); waiting out a 30-second poll on every stop is worse.
            poller.cancel()
            await asyncio.wait([poller])
        await self.runner.drain(DRAIN_TIMEOUT)
        if self._http is not None:
            await self._http.close()
            self._http = None

    # --- the Bot API ---------------------------------------------------------------------

    def _url(self, method: str) -> str:
        return f"{self.api_base}/bot{self._token}/{method}"

    def _redact(self, text: str) -> str:
        # aiohttp puts URLs in some error messages; the token is part of every URL.
        return text.replace(self._token, "***") if self._token else text

    async def _call(
        self,
        method: str,
        payload: dict[str, Any],
        timeout: float = 30.0,  # noqa: ASYNC109 - the HTTP client's own limit, per call
    ) -> Any:
        """One API call: its ``result``, or the error classified for the retry policy."""
        if self._http is None:
            raise TransientError("the channel is not started")
        try:
            async with self._http.post(
                self._url(method), json=payload, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TransientError(self._redact(f"{exc.__class__.__name__}: {exc}")) from None
        try:
            body = json.loads(raw)
        except ValueError:
            if status == NO_UPDATE_YET:
                raise ZaloApiError(NO_UPDATE_YET, "Request timeout") from None
            if status >= 500 or status == 429:
                raise TransientError(f"HTTP {status} without a JSON body") from None
            raise ZaloApiError(status, "answer is not JSON") from None
        body = as_dict(body)
        if body.get("ok") is True:
            return body.get("result")
        code = _int(body.get("error_code"), status if status >= 400 else 0)
        description = str(body.get("description") or body.get("message") or "")[:300]
        if code == 429:
            retry = as_dict(body.get("parameters")).get("retry_after")
            raise RateLimited(float(_int(retry, 1) or 1))
        if code == 403:
            raise Blocked(description or "forbidden")
        if code >= 500 or status >= 500:
            raise TransientError(f"{code} {description}")
        raise ZaloApiError(code, description)

    async def _checked(self, method: str, payload: dict[str, Any]) -> Any:
        """A call whose rejection is final: a DeliveryError, which call_with_retry passes on."""
        try:
            return await self._call(method, payload)
        except ZaloApiError as exc:
            log.error("Zalo %s rejected: %s", method, exc)
            raise DeliveryError(f"Zalo {method}", f"rejected: {exc}") from None

    # --- updates in ----------------------------------------------------------------------

    async def _poll(self) -> None:
        # getUpdates fails while a webhook is set: a leftover one would stop us cold.
        with contextlib.suppress(DeliveryError):
            await call_with_retry(
                partial(self._checked, "deleteWebhook", {}),
                what="Zalo deleteWebhook",
                base_delay=self.retry_delay,
            )
        failures = 0
        while not self._closing:
            try:
                result = await self._call(
                    "getUpdates",
                    {"timeout": str(self.polling_timeout)},
                    timeout=self.polling_timeout + 15,
                )
            except ZaloApiError as exc:
                if exc.code == NO_UPDATE_YET:
                    failures = 0
                    continue
                failures += 1
                log.error("Zalo getUpdates rejected (%s), retrying", exc)
            except RateLimited as exc:
                failures += 1
                await asyncio.sleep(exc.retry_after)
                continue
            except (TransientError, Blocked) as exc:
                failures += 1
                log.warning("Zalo getUpdates failed (%s), retrying", exc)
            else:
                failures = 0
                for update in unwrap(result):
                    self.feed(update)
                continue
            # Back off, with jitter, so an outage is not hammered.
            delay = min(self.retry_delay * 2 ** (failures - 1), MAX_POLL_BACKOFF)
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))

    def feed(self, update: dict[str, Any]) -> bool:
        """Hand one update to the background runner; False when it is not for the bot."""
        parsed = parse_update(update, self.name)
        if parsed is None:
            return False
        self.runner.submit(parsed.chat_id, parsed.key, partial(self._answer, parsed))
        return True

    async def _answer(self, parsed: ParsedUpdate) -> None:
        # A sticker or anything else unreadable: the engine says so and asks again.
        incoming = parsed.incoming or Incoming(Address(self.name, parsed.chat_id), unreadable=True)
        replies = (await self._handle(incoming)).replies
        try:
            await self._deliver(parsed.chat_id, replies)
        except DeliveryError as exc:
            log.warning("%s: reply to %s not delivered: %s", self.name, parsed.chat_id, exc)

    async def _handle(self, incoming: Incoming) -> Result:
        try:
            return await self.engine.handle(incoming)
        except Exception:
            # A bug must not leave the person facing silence.
            log.exception("engine failed on an update from %s", incoming.address)
            with use_locale(self.locale):
                text = _("Sorry, something went wrong on our side. Please try again.")
            return Result(replies=[Reply(text)])

    # --- webhook -------------------------------------------------------------------------

    async def handle_webhook(self, request: web.Request) -> web.Response:
        """POST from Zalo: check the secret, queue the update, answer 200 at once."""
        if self._webhook_secret is None:
            raise web.HTTPNotFound()
        if not secret_matches(request.headers.get(SECRET_HEADER), self._webhook_secret):
            log.warning("Zalo webhook call with a wrong secret from %s", request.remote)
            return web.json_response({"ok": False, "description": "Unauthorized"}, status=401)
        # Read only after the secret matched, up to Zalo's own limit, then parsed with a
        # bound on nesting.
        raw = await read_body(request, MAX_WEBHOOK_BYTES)
        if raw is None:
            return web.json_response({"ok": False, "description": "Too large"}, status=413)
        try:
            body = load_json(raw)
        except BadBody:
            return web.json_response({"ok": False, "description": "Bad JSON"}, status=400)
        if self._closing:
            # Not 200: Zalo keeps the update and delivers it again to the restarted bot.
            return web.json_response({"ok": False, "description": "Restarting"}, status=503)
        for update in unwrap(body):
            self.feed(update)
        return web.json_response({"ok": True})

    @property
    def webhook_path(self) -> str:
        """The path of ZALO_WEBHOOK_URL: where to mount the route when no proxy rewrites it."""
        return urlsplit(self.webhook_url or "").path or "/"

    def webhook_routes(self, path: str) -> list[web.RouteDef]:
        """The webhook as a route, for the composition root's web server (``add_routes``)."""
        return [web.post(path, self.handle_webhook)]

    def webhook_app(self, path: str = "/") -> web.Application:
        """A small app of its own answering the webhook at ``path`` (serve it standalone)."""
        app = web.Application(client_max_size=MAX_WEBHOOK_BYTES)
        app.add_routes(self.webhook_routes(path))
        return app

    # --- replies out ---------------------------------------------------------------------

    async def send(self, address_external_id: str, reply: Reply) -> None:
        """Send a reply to someone who did not just write (raises DeliveryError)."""
        chat_id = address_external_id.strip()
        if not chat_id or len(chat_id) > 100:
            log.error("not a Zalo chat id: %r", address_external_id[:100])
            raise DeliveryError(f"send to {address_external_id[:100]!r}", "bad address")
        await self._deliver(chat_id, [reply])

    async def _deliver(self, chat_id: str, replies: list[Reply]) -> None:
        with use_locale(self.locale):
            if self.file_links is not None:
                replies = await self.file_links.as_links(replies)
            parts = render_parts(replies)
        for part in parts:
            # A later part alone would read out of order: the first failure stops the rest.
            await call_with_retry(
                partial(self._checked, "sendMessage", {"chat_id": chat_id, "text": part}),
                what=f"Zalo sendMessage to {chat_id}",
                base_delay=self.retry_delay,
            )


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default
