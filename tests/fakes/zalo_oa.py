"""A local Zalo Official Account platform for tests, and a follower who talks to the OA.

:class:`FakeZaloOA` plays both sides of Zalo on 127.0.0.1 (random port):

- the Open API the bot calls: ``POST /v3.0/oa/message/cs`` (header ``access_token``; text up
  to 2,000 characters, at most 5 buttons) and the OAuth endpoint ``POST /v4/oa/access_token``
  that rotates the token pair (the refresh token works once). Errors come as HTTP 200 with
  ``error != 0``, as Zalo does: -216 unknown token, -220 expired token, -230 outside the
  7-day interaction window, -32 rate limit;
- the webhook sender: events are POSTed to the bot's webhook URL, signed
  ``X-ZEvent-Signature: mac=sha256(app_id + body + timestamp + secret)``.

:class:`OAUser` follows the OA, types, taps query buttons (the tap arrives as their own text,
carrying the button's payload) and waits for the OA's answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.waiting import patience

APP_ID = "4318901234567890123"
OA_ID = "2940001234567890123"
OA_SECRET = "fake-oa-secret-key"
SEED_ACCESS = "access-1"
SEED_REFRESH = "refresh-1"
MAX_TEXT = 2000
MAX_BUTTONS = 5
MAX_BUTTON_TITLE = 100
BUTTON_TYPES = frozenset(
    {"oa.query.show", "oa.query.hide", "oa.open.url", "oa.open.phone", "oa.open.sms"}
)


@dataclass
class OASent:
    """A customer-service message the OA sent."""

    user_id: str
    text: str
    buttons: list[dict[str, Any]]
    access_token: str
    stamp: int

    @property
    def titles(self) -> list[str]:
        return [str(b["title"]) for b in self.buttons]


@dataclass
class RefreshCall:
    form: dict[str, str]
    secret_key: str | None
    accepted: bool


@dataclass
class FakeZaloOA:
    app_id: str = APP_ID
    secret: str = OA_SECRET
    access_token: str = SEED_ACCESS
    refresh_token: str = SEED_REFRESH
    # Where events go (the bot's webhook), set by the test once the bot serves it.
    webhook_url: str | None = None
    # Knobs.
    out_of_window: set[str] = field(default_factory=set)
    rate_limited_next: int = 0
    server_errors_next: int = 0
    # Called with the access token of every accepted message/cs, before it is recorded.
    on_accept: Callable[[str], Awaitable[None]] | None = None
    # What happened.
    sent: list[OASent] = field(default_factory=list)
    refresh_calls: list[RefreshCall] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    deliveries: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._expired: set[str] = set()
        self._spent_refresh: set[str] = set()
        self._generation = itertools.count(2)
        self._msg_ids = itertools.count(1)
        self._stamp = 0
        self.timeline: list[tuple[int, str, str]] = []
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._port = 0

    # --- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> FakeZaloOA:
        app = web.Application()
        app.router.add_post("/v3.0/oa/message/cs", self._message_cs)
        app.router.add_post("/v4/oa/access_token", self._access_token)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])
        self._client = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        """Both ``ZALO_OA_API_BASE`` and ``ZALO_OA_OAUTH_BASE`` in tests."""
        return f"http://127.0.0.1:{self._port}"

    # --- knobs -----------------------------------------------------------------------------

    def expire_access_token(self) -> None:
        """The current access token ends (its 25 hours are over): -220 from now on."""
        self._expired.add(self.access_token)

    # --- records ---------------------------------------------------------------------------

    @property
    def stamp(self) -> int:
        return self._stamp

    @property
    def changed(self) -> asyncio.Condition:
        return self._changed

    def messages(self, user_id: str) -> list[OASent]:
        return [m for m in self.sent if m.user_id == user_id]

    def note(self, user_id: str, line: str) -> None:
        self._stamp += 1
        self.timeline.append((self._stamp, user_id, line))

    def transcript(self, user_id: str) -> str:
        return "\n".join(line for _s, who, line in self.timeline if who == user_id)

    # --- the Open API ----------------------------------------------------------------------

    def _error(self, code: int, message: str) -> web.Response:
        self.errors.append(code)
        return web.json_response({"error": code, "message": message})  # HTTP 200, as Zalo

    async def _message_cs(self, request: web.Request) -> web.Response:
        if self.server_errors_next > 0:
            self.server_errors_next -= 1
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        token = request.headers.get("access_token", "")
        if token in self._expired:
            return self._error(-220, "Access token has expired")
        if token != self.access_token:
            return self._error(-216, "Access token is invalid")
        if self.rate_limited_next > 0:
            self.rate_limited_next -= 1
            return self._error(-32, "Exceeded the rate limit")
        try:
            body = await request.json()
        except ValueError:
            return self._error(-201, "Body is not JSON")
        user_id = str((body.get("recipient") or {}).get("user_id") or "")
        message = body.get("message") or {}
        text = message.get("text")
        if not user_id:
            return self._error(-201, "recipient.user_id is required")
        if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT:
            return self._error(-201, "text must be 1 to 2000 characters")
        buttons: list[dict[str, Any]] = []
        attachment = message.get("attachment")
        if attachment is not None:
            payload = attachment.get("payload") or {}
            buttons = list(payload.get("buttons") or [])
            if attachment.get("type") != "template" or not 1 <= len(buttons) <= MAX_BUTTONS:
                return self._error(-201, "a template takes 1 to 5 buttons")
            for button in buttons:
                title = button.get("title")
                if button.get("type") not in BUTTON_TYPES or not button.get("payload"):
                    return self._error(-201, "bad button")
                if not isinstance(title, str) or not 1 <= len(title) <= MAX_BUTTON_TITLE:
                    return self._error(-201, "button title must be 1 to 100 characters")
        if user_id in self.out_of_window:
            return self._error(-230, "User has not interacted with the OA in the last 7 days")
        if self.on_accept is not None:
            await self.on_accept(token)
        async with self._changed:
            self.note(user_id, f"← OA: {text}" + "".join(f" [{b['title']}]" for b in buttons))
            self.sent.append(OASent(user_id, text, buttons, token, self._stamp))
            self._changed.notify_all()
        msg_id = f"oa{next(self._msg_ids):018x}"
        return web.json_response(
            {"error": 0, "message": "Success", "data": {"message_id": msg_id, "user_id": user_id}}
        )

    async def _access_token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        secret_key = request.headers.get("secret_key")
        ok = (
            secret_key == self.secret
            and form.get("app_id") == self.app_id
            and form.get("grant_type") == "refresh_token"
            and form.get("refresh_token") == self.refresh_token
        )
        self.refresh_calls.append(RefreshCall(form, secret_key, ok))
        if not ok:
            return web.json_response(
                {
                    "error": -14014,
                    "error_name": "Invalid refresh token",
                    "error_description": "Refresh token is invalid or has been used",
                }
            )
        # Rotation: the refresh token just used is spent, the old access token too.
        generation = next(self._generation)
        self._spent_refresh.add(self.refresh_token)
        self._expired.add(self.access_token)
        self.access_token = f"access-{generation}"
        self.refresh_token = f"refresh-{generation}"
        return web.json_response(
            {
                "access_token": self.access_token,
                "refresh_token": self.refresh_token,
                "expires_in": "90000",
            }
        )

    # --- the webhook sender ----------------------------------------------------------------

    def sign(self, body: bytes, timestamp: str, *, secret: str | None = None) -> str:
        key = self.secret if secret is None else secret
        raw = self.app_id.encode() + body + timestamp.encode() + key.encode()
        return "mac=" + hashlib.sha256(raw).hexdigest()

    async def post_event(
        self,
        event: dict[str, Any],
        *,
        signature: str | None = None,
        body: bytes | None = None,
    ) -> int:
        """POST an event to the webhook, signed as Zalo signs it (or with ``signature``)."""
        assert self.webhook_url is not None and self._client is not None, "no webhook URL"
        raw = body if body is not None else json.dumps(event, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json",
            "X-ZEvent-Signature": signature or self.sign(raw, str(event["timestamp"])),
        }
        async with self._client.post(self.webhook_url, data=raw, headers=headers) as resp:
            self.deliveries.append(resp.status)
            return resp.status

    def event(self, name: str, user_id: str, **fields: Any) -> dict[str, Any]:
        """An event as Zalo builds it: every id and the timestamp are strings."""
        who = "follower" if name in ("follow", "unfollow") else "sender"
        event: dict[str, Any] = {
            "app_id": self.app_id,
            "event_name": name,
            "timestamp": str(int(time.time() * 1000) + next(self._msg_ids)),
            who: {"id": user_id},
            "user_id_by_app": f"app-{user_id}",
            **fields,
        }
        if who == "sender":
            event["recipient"] = {"id": OA_ID}
        else:
            event["oa_id"] = OA_ID
            event["source"] = "oa_profile"
        return event

    def new_msg_id(self) -> str:
        return f"{next(self._msg_ids):020x}"


class OAUser:
    """One Zalo user talking to the OA."""

    def __init__(self, oa: FakeZaloOA, user_id: str) -> None:
        self.oa = oa
        self.user_id = user_id
        self.last_event: dict[str, Any] | None = None
        self._mark = oa.stamp

    async def post(self, event: dict[str, Any], note: str) -> int:
        self.oa.note(self.user_id, f"→ {note}")
        self._mark = self.oa.stamp
        self.last_event = event
        return await self.oa.post_event(event)

    async def follow(self) -> int:
        return await self.post(self.oa.event("follow", self.user_id), "(follows the OA)")

    async def unfollow(self) -> int:
        return await self.post(self.oa.event("unfollow", self.user_id), "(unfollows)")

    def text_event(self, text: str) -> dict[str, Any]:
        message = {"text": text, "msg_id": self.oa.new_msg_id()}
        return self.oa.event("user_send_text", self.user_id, message=message)

    async def send(self, text: str) -> int:
        return await self.post(self.text_event(text), text)

    async def send_sticker(self) -> int:
        message = {
            "msg_id": self.oa.new_msg_id(),
            "attachments": [{"type": "sticker", "payload": {"id": "ab12", "url": "https://s/x"}}],
        }
        event = self.oa.event("user_send_sticker", self.user_id, message=message)
        return await self.post(event, "(a sticker)")

    async def tap(self, title: str) -> None:
        """Tap the newest button whose title contains ``title``: its payload comes as text."""
        wanted = title.casefold()
        for sent in reversed(self.oa.messages(self.user_id)):
            for button in sent.buttons:
                if wanted in str(button["title"]).casefold():
                    await self.post(self.text_event(str(button["payload"])), f"[{button['title']}]")
                    return
        raise AssertionError(f"no button {title!r}; conversation:\n{self.transcript()}")

    async def say(self, text: str, expect: str, timeout: float = 10.0) -> OASent:  # noqa: ASYNC109
        await self.send(text)
        return await self.wait_for(expect, timeout)

    def since_last_action(self) -> list[OASent]:
        return [m for m in self.oa.messages(self.user_id) if m.stamp > self._mark]

    async def wait_for(self, substring: str, timeout: float = 10.0) -> OASent:  # noqa: ASYNC109
        """The newest OA message showing ``substring`` (in its text or a button) since my
        last action."""
        wanted = substring.casefold()

        def find() -> OASent | None:
            for msg in reversed(self.since_last_action()):
                if any(wanted in shown.casefold() for shown in [msg.text, *msg.titles]):
                    return msg
            return None

        cond = self.oa.changed
        found: list[OASent] = []

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
                    f"waited {timeout}s for {substring!r} from the OA; conversation so far:\n"
                    + self.transcript()
                ) from None
        return found[-1]

    def transcript(self) -> str:
        return self.oa.transcript(self.user_id) or "(nothing yet)"
