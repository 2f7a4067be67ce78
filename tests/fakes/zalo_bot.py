"""A local Zalo Bot Platform API for tests, and a person who chats with the bot through it.

:class:`FakeZaloBotAPI` speaks real HTTP on 127.0.0.1 (random port), the way Zalo does:
``POST /bot{token}/{method}`` with a JSON body, answers in an ``{ok, result}`` envelope, and
errors *with HTTP 200* (only ``ok`` tells). ``getUpdates`` hands out one update per call, or
error 408 when none came within the timeout, and refuses while a webhook is set. When a webhook
is set, updates are POSTed to it with the secret in ``X-Bot-Api-Secret-Token``, wrapped in
``{ok, result}`` (or flat, on request). ``sendMessage`` refuses texts over 2,000 characters.

:class:`ZaloUser` is one person in a private chat: they type, send a photo or a sticker, and
wait (event-driven) for the bot's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from tests.waiting import patience

DEFAULT_ZALO_TOKEN = "1459232241454765289:fake-zalo-secret-for-tests"
MAX_TEXT = 2000
SECRET_HEADER = "X-Bot-Api-Secret-Token"

T = TypeVar("T")


@dataclass
class ZaloCall:
    method: str
    params: dict[str, Any]


@dataclass
class ZaloSent:
    """A text the bot sent."""

    message_id: str
    chat_id: str
    text: str
    stamp: int


class FakeZaloBotAPI:
    """The Bot API on ``base_url``; use ``async with FakeZaloBotAPI() as server``."""

    def __init__(self, token: str = DEFAULT_ZALO_TOKEN) -> None:
        self.token = token
        self.calls: list[ZaloCall] = []
        self.sent: list[ZaloSent] = []
        self.webhook: dict[str, Any] | None = None
        # Webhook deliveries: (HTTP status, body) per update pushed while a webhook is set.
        self.deliveries: list[tuple[int, str]] = []
        self.flat_webhooks = False  # post updates without the {ok, result} wrapper
        self._fail: deque[tuple[int, int, str]] = deque()
        self._fail_polls: deque[tuple[int, int, str]] = deque()
        self._updates: deque[dict[str, Any]] = deque()
        self._updates_changed = asyncio.Condition()
        self._sent_changed = asyncio.Condition()
        self._ids = itertools.count(1)
        self._stamp = 0
        # (stamp, chat id, line): both sides of every chat, for failure messages.
        self.timeline: list[tuple[int, str, str]] = []
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port = 0

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        self._client = aiohttp.ClientSession()

    async def stop(self) -> None:
        self._closing = True
        async with self._updates_changed:
            self._updates_changed.notify_all()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeZaloBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What the bot takes as ``ZALO_API_BASE``."""
        return f"http://127.0.0.1:{self._port}"

    # --- misbehaviour on demand ------------------------------------------------------------

    def fail_next(
        self,
        count: int,
        error_code: int = 500,
        *,
        description: str = "Internal error",
        http_status: int = 200,
    ) -> None:
        """Answer the next ``count`` calls (getUpdates excepted) with ``ok: false``.

        HTTP 200 by default: Zalo reports errors inside the envelope.
        """
        for _ in range(count):
            self._fail.append((error_code, http_status, description))

    def fail_polls(self, count: int, error_code: int = 502, *, http_status: int = 502) -> None:
        """Answer the next ``count`` getUpdates calls with an error (an outage of Zalo)."""
        for _ in range(count):
            self._fail_polls.append((error_code, http_status, "Bad Gateway"))

    # --- what the bot sent -----------------------------------------------------------------

    def messages(self, chat_id: str) -> list[ZaloSent]:
        return [m for m in self.sent if m.chat_id == chat_id]

    def calls_of(self, method: str) -> list[ZaloCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    @property
    def stamp(self) -> int:
        return self._stamp

    @property
    def sent_changed(self) -> asyncio.Condition:
        return self._sent_changed

    def note(self, chat_id: str, line: str) -> None:
        self._stamp += 1
        self.timeline.append((self._stamp, chat_id, line))

    def transcript(self, chat_id: str) -> str:
        return "\n".join(line for _s, chat, line in self.timeline if chat == chat_id)

    # --- updates from people ---------------------------------------------------------------

    def new_message_id(self) -> str:
        return f"{next(self._ids):020x}"

    async def push(self, update: dict[str, Any]) -> None:
        """An update for the bot: to its webhook if one is set, else for getUpdates."""
        if self.webhook is not None:
            await self.deliver(update)
            return
        async with self._updates_changed:
            self._updates.append(update)
            self._updates_changed.notify_all()

    async def deliver(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """POST ``update`` to the webhook as Zalo does; returns the HTTP status."""
        assert self.webhook is not None and self._client is not None, "no webhook set"
        body = update if self.flat_webhooks else {"ok": True, "result": update}
        headers = {SECRET_HEADER: self.webhook["secret_token"] if secret is None else secret}
        async with self._client.post(self.webhook["url"], json=body, headers=headers) as resp:
            self.deliveries.append((resp.status, await resp.text()))
            return resp.status

    @property
    def pending_updates(self) -> int:
        return len(self._updates)

    # --- HTTP ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"].lower()
        params: dict[str, Any] = {}
        if request.body_exists:
            with contextlib.suppress(ValueError):
                params = await request.json()
        self.calls.append(ZaloCall(request.match_info["method"], params))
        if request.match_info["token"] != self.token:
            return self._error(401, "Unauthorized")
        failures = self._fail_polls if method == "getupdates" else self._fail
        if failures:
            code, status, description = failures.popleft()
            return self._error(code, description, status)
        methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getme": self._get_me,
            "getupdates": partial(self._get_updates, request),
            "sendmessage": self._send_message,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendchataction": lambda params: True,
        }
        handler = methods.get(method)
        if handler is None:
            return self._error(404, "Not Found")
        result = handler(params)
        if asyncio.iscoroutine(result):
            result = await result
        if isinstance(result, web.Response):
            return result
        return web.json_response({"ok": True, "result": result})

    @staticmethod
    def _error(code: int, description: str, status: int = 200) -> web.Response:
        return web.json_response(
            {"ok": False, "error_code": code, "description": description}, status=status
        )

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.token.split(":", 1)[0],
            "account_name": "bot.ThiDua",
            "account_type": "BASIC",
            "can_join_groups": False,
        }

    async def _get_updates(self, request: web.Request, params: dict[str, Any]) -> Any:
        if self.webhook is not None:
            return self._error(400, "Webhook is set: use deleteWebhook first")
        timeout = float(params.get("timeout") or 30)
        async with self._updates_changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._updates_changed.wait_for(lambda: bool(self._updates) or self._closing),
                    timeout,
                )
            transport = request.transport
            if transport is None or transport.is_closing():
                # The poller gave up (the bot stopped): the update stays for the next one.
                return web.Response(status=499)
            if not self._updates:
                return self._error(408, "Request timeout")
            # One update per call, and no offset: handed out means gone.
            return self._updates.popleft()

    async def _send_message(self, params: dict[str, Any]) -> Any:
        text = params.get("text")
        chat_id = params.get("chat_id")
        if not isinstance(chat_id, str) or not chat_id:
            return self._error(400, "chat_id is required")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            return self._error(400, "text must be 1 to 2000 characters")
        message_id = self.new_message_id()
        async with self._sent_changed:
            self.note(chat_id, f"← bot: {text}")
            self.sent.append(ZaloSent(message_id, chat_id, text, self._stamp))
            self._sent_changed.notify_all()
        return {"message_id": message_id, "date": int(time.time() * 1000)}

    def _set_webhook(self, params: dict[str, Any]) -> Any:
        secret = params.get("secret_token")
        if not isinstance(secret, str) or not 8 <= len(secret) <= 256:
            return self._error(400, "secret_token must be 8 to 256 characters")
        self.webhook = {"url": params.get("url"), "secret_token": secret}
        return {"url": params.get("url"), "updated_at": int(time.time() * 1000)}

    def _delete_webhook(self, params: dict[str, Any]) -> dict[str, Any]:
        self.webhook = None
        return {"url": "", "updated_at": int(time.time() * 1000)}

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"url": (self.webhook or {}).get("url", ""), "updated_at": 0}


class ZaloUser:
    """One person writing to the bot in a private chat (their chat id is their user id)."""

    def __init__(self, server: FakeZaloBotAPI, user_id: str, display_name: str = "Bình") -> None:
        self.server = server
        self.user_id = user_id
        self.display_name = display_name
        self.last_update: dict[str, Any] | None = None
        self._mark = server.stamp

    # --- actions ---------------------------------------------------------------------------

    def update(self, event: str, **fields: Any) -> dict[str, Any]:
        """An update as Zalo builds it (not pushed yet)."""
        return {
            "event_name": event,
            "message": {
                "message_id": self.server.new_message_id(),
                "date": int(time.time() * 1000),
                "from": {"id": self.user_id, "display_name": self.display_name, "is_bot": False},
                "chat": {"id": self.user_id, "chat_type": "PRIVATE"},
                **fields,
            },
        }

    async def push(self, update: dict[str, Any]) -> None:
        message = update.get("message") or {}
        what = message.get("text") or update.get("event_name")
        self.server.note(self.user_id, f"→ {self.display_name}: {what}")
        self._mark = self.server.stamp
        self.last_update = update
        await self.server.push(update)

    async def send(self, text: str) -> None:
        await self.push(self.update("message.text.received", text=text))

    async def send_image(self, url: str, caption: str | None = None) -> None:
        fields: dict[str, Any] = {"photo_url": url}
        if caption is not None:
            fields["caption"] = caption
        await self.push(self.update("message.image.received", **fields))

    async def send_sticker(self) -> None:
        await self.push(self.update("message.sticker.received", sticker="0e078a2fb66a5f34067b"))

    async def say(self, text: str, expect: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """Type ``text`` and wait for an answer containing ``expect``."""
        await self.send(text)
        return await self.wait_for(expect, timeout)

    # --- waiting ---------------------------------------------------------------------------

    def since_last_action(self) -> list[ZaloSent]:
        return [m for m in self.server.messages(self.user_id) if m.stamp > self._mark]

    async def wait_for(self, substring: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """The newest bot text containing ``substring`` (case-insensitive) since my action."""
        wanted = substring.casefold()

        def find() -> str | None:
            for msg in reversed(self.since_last_action()):
                if wanted in msg.text.casefold():
                    return msg.text
            return None

        return await self._wait(find, timeout, repr(substring))

    async def wait_until(
        self,
        predicate: Callable[[list[ZaloSent]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[ZaloSent]:
        def check() -> list[ZaloSent] | None:
            messages = self.since_last_action()
            return messages if predicate(messages) else None

        return await self._wait(check, timeout, "the expected messages")

    async def _wait(self, find: Callable[[], T | None], timeout: float, what: str) -> T:  # noqa: ASYNC109
        cond = self.server.sent_changed
        found: list[T] = []

        def ready() -> bool:
            value = find()
            if value is not None:
                found.append(value)
            return value is not None

        async with cond:
            try:
                await asyncio.wait_for(cond.wait_for(ready), patience(timeout))
            except TimeoutError:
                raise AssertionError(
                    f"waited {timeout}s for {what} from the bot; conversation so far:\n"
                    + self.transcript()
                ) from None
        return found[-1]

    def transcript(self) -> str:
        return self.server.transcript(self.user_id) or "(nothing yet)"
