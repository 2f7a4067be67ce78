"""A local Telegram Bot API server for tests and benchmarks, and a person to drive it.

:class:`FakeBotAPI` speaks real HTTP on 127.0.0.1 (random port), so the bot under test runs
its ordinary aiogram session against it: nothing of aiogram or of the project is patched. It
keeps what the bot sent per chat, hands out updates through long polling, validates what
Telegram validates (text length, callback_data size, "message is not modified"), and can
misbehave on demand: a global rate limit answered with 429, people who blocked the bot (403),
5xx errors for the next few calls (or the next few getUpdates), and calls that hang until the
client gives up.

Webhook mode, as Telegram does it: after ``setWebhook`` every update is POSTed (JSON, with the
``X-Telegram-Bot-Api-Secret-Token`` header) to the webhook and re-sent until it is answered
with a 2xx; getUpdates then fails with 409. The registered URL is public (HTTPS), so tests set
``webhook_targets``: the local addresses the update is really sent to, one after the other,
like a load balancer in front of several bot processes.

:class:`TgUser` is one person in a private chat: they type, press buttons, share a contact,
send a document, and wait (event-driven) for the bot's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import re
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from tests.waiting import patience

DEFAULT_TOKEN = "123456789:TEST-fake-token-for-thidua-bot"
MAX_TEXT = 4096
MAX_CALLBACK_BYTES = 64
# Parameters aiogram sends as JSON strings inside form data.
JSON_PARAMS = frozenset(
    {
        "reply_markup",
        "allowed_updates",
        "commands",
        "scope",
        "entities",
        "caption_entities",
        "link_preview_options",
        "reply_parameters",
    }
)
# Calls that put something on a person's screen; they count against the rate limit.
COUNTED = frozenset(
    {"sendmessage", "senddocument", "sendphoto", "editmessagetext", "editmessagereplymarkup"}
)
FORBIDDEN_BLOCKED = "Forbidden: bot was blocked by the user"
WEBHOOK_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")

T = TypeVar("T")


class ApiError(Exception):
    """An error answer of the Bot API."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


@dataclass
class UploadedFile:
    filename: str | None
    content_type: str | None
    content: bytes


@dataclass
class ApiCall:
    method: str
    params: dict[str, Any]
    status: int = 200


@dataclass
class SentMessage:
    """A message the bot sent (and perhaps edited since)."""

    message_id: int
    chat_id: int
    text: str | None
    reply_markup: dict[str, Any] | None
    kind: str  # "text", "document" or "photo"
    params: dict[str, Any]
    # Global order of the last change: a wait only looks at changes after the last action.
    stamp: int
    sent_at: float
    document: UploadedFile | None = None
    edits: list[str | None] = field(default_factory=list)

    @property
    def inline_buttons(self) -> list[dict[str, Any]]:
        rows = (self.reply_markup or {}).get("inline_keyboard") or []
        return [button for row in rows for button in row]

    @property
    def keyboard_buttons(self) -> list[dict[str, Any]]:
        """Buttons of a reply keyboard (under the typing field)."""
        rows = (self.reply_markup or {}).get("keyboard") or []
        return [b if isinstance(b, dict) else {"text": b} for row in rows for b in row]

    @property
    def labels(self) -> list[str]:
        return [str(b["text"]) for b in self.inline_buttons + self.keyboard_buttons]

    @property
    def removes_keyboard(self) -> bool:
        return bool((self.reply_markup or {}).get("remove_keyboard"))

    def to_api(self, bot_user: dict[str, Any]) -> dict[str, Any]:
        """The message as Telegram shows it to the bot (in a callback query, for instance)."""
        out: dict[str, Any] = {
            "message_id": self.message_id,
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private"},
            "from": bot_user,
        }
        if self.text is not None:
            key = "caption" if self.kind != "text" else "text"
            out[key] = self.text
        if self.document is not None:
            out["document"] = {
                "file_id": f"doc-{self.message_id}",
                "file_unique_id": f"udoc-{self.message_id}",
                "file_name": self.document.filename,
                "mime_type": self.document.content_type,
                "file_size": len(self.document.content),
            }
        if self.inline_buttons:  # reply keyboards are not part of the message object
            out["reply_markup"] = self.reply_markup
        return out


@dataclass
class WebhookDelivery:
    """One POST of an update to the webhook; ``status`` None: no answer (refused, timeout)."""

    update_id: int
    target: str
    status: int | None
    seconds: float


@dataclass
class TimelineEntry:
    stamp: int
    line: str


class FakeBotAPI:
    """The Bot API on ``base_url``; use ``async with FakeBotAPI() as server``."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "thidua_test_bot",
        rate_limit: float | None = None,
        blocked: set[int] | None = None,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.bot_user = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Thi đua",
            "username": username,
        }
        # Knobs for benchmarks and failure tests; change them at any time.
        self.rate_limit = rate_limit  # messages per second over all chats, None = no limit
        self.blocked: set[int] = set(blocked or ())
        self.latency = latency  # seconds added to every answer
        self._fail_left = 0
        self._fail_method: str | None = None
        self._fail_status = 502
        self._fail_json = True
        self._poll_fail_left = 0
        self._poll_fail_status = 502
        self._stall_left = 0
        self._stall_seconds = 0.0
        # Webhook delivery knobs: where updates really go (None: the registered URL), how long
        # an answer is waited for, the first pause before a re-send (it doubles, up to 2 s),
        # and whether one chat's updates wait for each other as Telegram's do (False sends
        # every update at once: the harshest interleaving for tests of races).
        self.webhook_targets: list[str] | None = None
        self.webhook_timeout = 10.0
        self.webhook_retry_delay = 0.2
        self.webhook_in_chat_order = True
        self.webhook_url: str | None = None
        self.webhook_secret: str | None = None
        self.webhook_allowed: list[str] | None = None
        self.deliveries: list[WebhookDelivery] = []
        self._undelivered: dict[int, dict[str, Any]] = {}
        self._chat_queues: dict[int, deque[dict[str, Any]]] = {}
        self._delivery_tasks: set[asyncio.Task[None]] = set()
        self._delivery_changed = asyncio.Condition()
        self._target_turn = itertools.count()
        self._http: aiohttp.ClientSession | None = None
        # What happened.
        self.calls: list[ApiCall] = []
        self.statuses: Counter[int] = Counter()
        self.commands: dict[str | None, list[dict[str, Any]]] = {}
        self.callback_answers: list[dict[str, Any]] = []
        self.pushed: list[dict[str, Any]] = []  # every update people made, in order
        self._messages: dict[int, list[SentMessage]] = {}
        self._timeline: dict[int, list[TimelineEntry]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._stamp = 0
        self._sent_times: deque[float] = deque()
        self._updates_changed = asyncio.Condition()
        self._chat_changed: dict[int, asyncio.Condition] = {}
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._methods: dict[str, Callable[[dict[str, Any]], Any]] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "deletewebhook": self._delete_webhook,
            "setwebhook": self._set_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "setmycommands": self._set_my_commands,
            "sendmessage": self._send_message,
            "editmessagetext": self._edit_message_text,
            "editmessagereplymarkup": self._edit_message_reply_markup,
            "answercallbackquery": self._answer_callback_query,
            "senddocument": self._send_document,
            "sendphoto": self._send_photo,
            "sendchataction": self._true,
        }

    # --- life cycle ------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=60 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        # Long polls end at once on stop(); there is nothing else to wait for.
        self._runner = web.AppRunner(app, shutdown_timeout=1.0, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self._port = int(sockets[0].getsockname()[1])

    async def stop(self) -> None:
        self._closing = True
        async with self._updates_changed:
            self._updates_changed.notify_all()
        for task in list(self._delivery_tasks):
            task.cancel()
        await asyncio.gather(*self._delivery_tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeBotAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """What the bot takes as its API base (``TELEGRAM_API_BASE``)."""
        return f"http://127.0.0.1:{self._port}"

    # --- misbehaviour on demand ------------------------------------------------------------

    def fail_next(
        self, count: int, status: int = 502, *, json_body: bool = True, method: str | None = None
    ) -> None:
        """Answer the next ``count`` calls (getUpdates excepted) with a server error.

        ``json_body=False`` answers with an HTML page, as a proxy in front of the API does;
        ``method`` fails only the calls of that method (others run beside it at start).
        """
        self._fail_left = count
        self._fail_status = status
        self._fail_json = json_body
        self._fail_method = method.lower() if method else None

    def fail_polls(self, count: int, status: int = 502) -> None:
        """Answer the next ``count`` getUpdates calls with a server error."""
        self._poll_fail_left = count
        self._poll_fail_status = status

    def stall_next(self, count: int, seconds: float) -> None:
        """Hold the next ``count`` calls (getUpdates excepted) ``seconds``, then answer 504
        without doing them: a gateway that timed out. A client with a shorter timeout sees a
        timeout."""
        self._stall_left = count
        self._stall_seconds = seconds

    # --- what the bot sent -----------------------------------------------------------------

    def messages(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in a chat, oldest first."""
        return list(self._messages.get(chat_id, ()))

    def all_messages(self) -> list[SentMessage]:
        return sorted(
            (m for msgs in self._messages.values() for m in msgs), key=lambda m: m.message_id
        )

    def calls_of(self, method: str) -> list[ApiCall]:
        return [c for c in self.calls if c.method.lower() == method.lower()]

    def timeline(self, chat_id: int) -> list[str]:
        return [entry.line for entry in self._timeline.get(chat_id, ())]

    @property
    def stamp(self) -> int:
        return self._stamp

    def chat_changed(self, chat_id: int) -> asyncio.Condition:
        """Notified whenever the bot sends or edits a message in ``chat_id``."""
        cond = self._chat_changed.get(chat_id)
        if cond is None:
            cond = self._chat_changed[chat_id] = asyncio.Condition()
        return cond

    # --- updates from people ---------------------------------------------------------------

    async def push_update(
        self, kind: str, payload: dict[str, Any], *, chat_id: int, note: str
    ) -> int:
        """Queue an update (``kind`` = "message", "callback_query") for the next getUpdates."""
        update_id = next(self._update_ids)
        self._note(chat_id, note)
        update = {"update_id": update_id, kind: payload}
        self.pushed.append(update)
        if self.webhook_url is not None:
            self._enqueue(update)
            return update_id
        async with self._updates_changed:
            self._updates.append(update)
            self._updates_changed.notify_all()
        return update_id

    def new_message_id(self) -> int:
        return next(self._message_ids)

    def _note(self, chat_id: int, line: str) -> int:
        self._stamp += 1
        self._timeline.setdefault(chat_id, []).append(TimelineEntry(self._stamp, line))
        return self._stamp

    # --- webhook ---------------------------------------------------------------------------

    def _set_webhook(self, params: dict[str, Any]) -> bool:
        url = str(params.get("url") or "")
        if not url:
            return self._delete_webhook(params)
        if not url.startswith("https://"):
            raise ApiError(400, "Bad Request: bad webhook: An HTTPS URL must be provided")
        secret = params.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        allowed = params.get("allowed_updates")
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret is not None else None
        self.webhook_allowed = list(allowed) if isinstance(allowed, list) else None
        if _flag(params.get("drop_pending_updates")):
            self._updates.clear()
        # Updates that waited for a poll now go to the webhook.
        pending, self._updates = self._updates, []
        for update in pending:
            self._enqueue(update)
        return True

    def _delete_webhook(self, params: dict[str, Any]) -> bool:
        self.webhook_url = None
        for task in list(self._delivery_tasks):
            task.cancel()
        self._chat_queues.clear()
        # What the webhook did not take waits for getUpdates again, unless dropped.
        undelivered = sorted(self._undelivered.values(), key=lambda u: int(u["update_id"]))
        self._undelivered.clear()
        if not _flag(params.get("drop_pending_updates")):
            known = {u["update_id"] for u in self._updates}
            self._updates += [u for u in undelivered if u["update_id"] not in known]
            self._updates.sort(key=lambda u: int(u["update_id"]))
        return True

    def _get_webhook_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": self.webhook_url or "",
            "has_custom_certificate": False,
            "pending_update_count": len(self._undelivered) + len(self._updates),
        }

    @property
    def undelivered(self) -> int:
        """Updates the webhook has not taken yet (not answered with a 2xx)."""
        return len(self._undelivered)

    async def wait_delivered(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Wait until the webhook has taken every update pushed so far."""
        async with self._delivery_changed:
            try:
                await asyncio.wait_for(
                    self._delivery_changed.wait_for(lambda: not self._undelivered),
                    patience(timeout),
                )
            except TimeoutError:
                raise AssertionError(
                    f"{len(self._undelivered)} updates not taken by the webhook in {timeout}s; "
                    f"last deliveries: {self.deliveries[-5:]}"
                ) from None

    def _enqueue(self, update: dict[str, Any]) -> None:
        kind = next((k for k in update if k != "update_id"), "")
        if self.webhook_allowed and kind not in self.webhook_allowed:
            return  # Telegram does not even keep what the bot did not ask for
        self._undelivered[int(update["update_id"])] = update
        if not self.webhook_in_chat_order:
            self._spawn(self._deliver(update))
            return
        chat = _chat_of(update)
        queue = self._chat_queues.get(chat)
        if queue is not None:
            queue.append(update)
            return
        self._chat_queues[chat] = deque([update])
        self._spawn(self._chat_worker(chat))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._delivery_tasks.add(task)
        task.add_done_callback(self._delivery_tasks.discard)

    async def _chat_worker(self, chat: int) -> None:
        """One chat's updates one after another: the next waits until the webhook took one."""
        queue = self._chat_queues[chat]
        try:
            while queue:
                if not await self._deliver(queue[0]):
                    return
                queue.popleft()
        finally:
            if self._chat_queues.get(chat) is queue:
                del self._chat_queues[chat]

    async def _deliver(self, update: dict[str, Any]) -> bool:
        """POST ``update`` until a 2xx answers it; False if the webhook went away first."""
        update_id = int(update["update_id"])
        failures = 0
        while self.webhook_url is not None and not self._closing:
            status = await self._post(self._next_target(), update)
            if status is not None and 200 <= status < 300:
                async with self._delivery_changed:
                    self._undelivered.pop(update_id, None)
                    self._delivery_changed.notify_all()
                return True
            failures += 1
            await asyncio.sleep(min(self.webhook_retry_delay * 2 ** (failures - 1), 2.0))
        return False

    def _next_target(self) -> str:
        targets = self.webhook_targets or [self.webhook_url or ""]
        return targets[next(self._target_turn) % len(targets)]

    async def _post(self, target: str, update: dict[str, Any]) -> int | None:
        if self._http is None:
            self._http = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret is not None:
            headers[WEBHOOK_SECRET_HEADER] = self.webhook_secret
        started = time.monotonic()
        status: int | None = None
        try:
            async with self._http.post(
                target,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout),
            ) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            status = None
        self.deliveries.append(
            WebhookDelivery(int(update["update_id"]), target, status, time.monotonic() - started)
        )
        return status

    # --- HTTP ------------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _read_params(request)
        call = ApiCall(method, params)
        self.calls.append(call)
        if self.latency:
            await asyncio.sleep(self.latency)
        try:
            if request.match_info["token"] != self.token:
                raise ApiError(401, "Unauthorized")
            name = method.lower()
            if self._poll_fail_left > 0 and name == "getupdates":
                self._poll_fail_left -= 1
                raise ApiError(self._poll_fail_status, "Bad Gateway")
            if self._stall_left > 0 and name != "getupdates":
                self._stall_left -= 1
                await asyncio.sleep(self._stall_seconds)
                raise ApiError(504, "Gateway Timeout")
            if self._fail_left > 0 and name != "getupdates" and self._fail_method in (None, name):
                self._fail_left -= 1
                if not self._fail_json:
                    call.status = self._fail_status
                    self.statuses[call.status] += 1
                    return web.Response(
                        status=self._fail_status,
                        text="<html><body>502 Bad Gateway</body></html>",
                        content_type="text/html",
                    )
                raise ApiError(self._fail_status, "Bad Gateway")
            chat = params.get("chat_id")
            if chat is not None and _int(chat) in self.blocked:
                raise ApiError(403, FORBIDDEN_BLOCKED)
            if name in COUNTED:
                self._check_rate()
            handler = self._methods.get(name, self._true)
            result = await _maybe_await(handler(params))
        except ApiError as exc:
            call.status = exc.code
            self.statuses[exc.code] += 1
            body: dict[str, Any] = {
                "ok": False,
                "error_code": exc.code,
                "description": exc.description,
            }
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        self.statuses[200] += 1
        return web.json_response({"ok": True, "result": result})

    def _check_rate(self) -> None:
        if self.rate_limit is None:
            return
        now = time.monotonic()
        while self._sent_times and now - self._sent_times[0] >= 1.0:
            self._sent_times.popleft()
        if len(self._sent_times) >= self.rate_limit:
            wait = max(1, math.ceil(1.0 - (now - self._sent_times[0])))
            raise ApiError(429, f"Too Many Requests: retry after {wait}", retry_after=wait)
        self._sent_times.append(now)

    # --- methods ---------------------------------------------------------------------------

    def _true(self, params: dict[str, Any]) -> bool:
        return True

    def _get_me(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.bot_user

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self.webhook_url is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        offset = _int(params.get("offset") or 0)
        timeout = float(params.get("timeout") or 0)
        limit = _int(params.get("limit") or 100)
        async with self._updates_changed:
            if offset > 0:  # everything below the offset is confirmed and forgotten
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._updates_changed.wait_for(lambda: bool(self._updates) or self._closing),
                    timeout,
                )
            return self._updates[:limit]

    def _set_my_commands(self, params: dict[str, Any]) -> bool:
        self.commands[params.get("language_code") or None] = list(params.get("commands") or [])
        return True

    def _answer_callback_query(self, params: dict[str, Any]) -> bool:
        self.callback_answers.append(params)
        return True

    async def _send_message(self, params: dict[str, Any]) -> dict[str, Any]:
        text = _render(str(params.get("text") or ""), params.get("parse_mode"))
        _check_text(text, MAX_TEXT)
        markup = _check_markup(params.get("reply_markup"))
        msg = await self._store(_int(params["chat_id"]), "text", params, text, markup)
        return msg.to_api(self.bot_user)

    async def _send_document(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(params, "document")

    async def _send_photo(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._send_file(params, "photo")

    async def _send_file(self, params: dict[str, Any], kind: str) -> dict[str, Any]:
        value = params.get(kind)
        if isinstance(value, str) and value.startswith("attach://"):
            value = params.get(value.removeprefix("attach://"))
        if isinstance(value, str):  # a file_id or URL: nothing uploaded
            value = UploadedFile(value, None, b"")
        if not isinstance(value, UploadedFile):
            raise ApiError(400, f"Bad Request: there is no {kind} in the request")
        caption = params.get("caption")
        if caption is not None:
            caption = _render(str(caption), params.get("parse_mode"))
            _check_text(caption, 1024)
        markup = _check_markup(params.get("reply_markup"))
        msg = await self._store(_int(params["chat_id"]), kind, params, caption, markup, value)
        return msg.to_api(self.bot_user)

    async def _edit_message_text(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(params)
        text = _render(str(params.get("text") or ""), params.get("parse_mode"))
        _check_text(text, MAX_TEXT)
        # Like Telegram: an edit without reply_markup leaves the message without buttons.
        markup = _check_markup(params.get("reply_markup"))
        if text == msg.text and markup == msg.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified")
        await self._change(msg, text, markup, params)
        return msg.to_api(self.bot_user)

    async def _edit_message_reply_markup(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(params)
        markup = _check_markup(params.get("reply_markup"))
        if markup == msg.reply_markup:
            raise ApiError(400, "Bad Request: message is not modified")
        await self._change(msg, msg.text, markup, params)
        return msg.to_api(self.bot_user)

    def _find(self, params: dict[str, Any]) -> SentMessage:
        chat_id = _int(params.get("chat_id") or 0)
        message_id = _int(params.get("message_id") or 0)
        for msg in self._messages.get(chat_id, ()):
            if msg.message_id == message_id:
                return msg
        raise ApiError(400, "Bad Request: message to edit not found")

    async def _store(
        self,
        chat_id: int,
        kind: str,
        params: dict[str, Any],
        text: str | None,
        markup: dict[str, Any] | None,
        document: UploadedFile | None = None,
    ) -> SentMessage:
        msg = SentMessage(
            message_id=self.new_message_id(),
            chat_id=chat_id,
            text=text,
            reply_markup=markup,
            kind=kind,
            params=params,
            stamp=0,
            sent_at=time.monotonic(),
            document=document,
        )
        msg.stamp = self._note(chat_id, _describe(msg))
        self._messages.setdefault(chat_id, []).append(msg)
        await self._changed(chat_id)
        return msg

    async def _change(
        self,
        msg: SentMessage,
        text: str | None,
        markup: dict[str, Any] | None,
        params: dict[str, Any],
    ) -> None:
        msg.edits.append(msg.text)
        msg.text, msg.reply_markup, msg.params = text, markup, params
        msg.stamp = self._note(msg.chat_id, "✎ edited " + _describe(msg).removeprefix("← "))
        await self._changed(msg.chat_id)

    async def _changed(self, chat_id: int) -> None:
        cond = self.chat_changed(chat_id)
        async with cond:
            cond.notify_all()


class TgUser:
    """One person talking to the bot in a private chat (chat id = user id)."""

    def __init__(
        self,
        server: FakeBotAPI,
        user_id: int,
        first_name: str = "An",
        *,
        last_name: str | None = None,
        language_code: str = "vi",
    ) -> None:
        self.server = server
        self.user_id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.language_code = language_code
        # Only bot messages sent or edited after this stamp answer a wait.
        self._mark = server.stamp

    @property
    def chat_id(self) -> int:
        return self.user_id

    def as_api_user(self) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": self.language_code,
        }
        if self.last_name:
            user["last_name"] = self.last_name
        return user

    # --- actions ---------------------------------------------------------------------------

    async def send(self, text: str) -> None:
        """Type a message."""
        extra: dict[str, Any] = {"text": text}
        if text.startswith("/"):
            length = len(text.split(" ", 1)[0])
            extra["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        await self._message(extra, f"→ {self.first_name}: {text}")

    async def command(self, name: str, payload: str = "") -> None:
        """Send ``/name payload`` (a deep link arrives the same way)."""
        name = name if name.startswith("/") else f"/{name}"
        await self.send(f"{name} {payload}".strip())

    # The timeouts are part of the driver's API (not asyncio.timeout) so a failed wait can
    # report the whole conversation.
    async def press(self, label: str, *, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Press the button whose text contains ``label`` (case-insensitive).

        Looks at the newest bot message with such a button; waits for one if none is there
        yet. A reply-keyboard button sends its text, as a real client does.
        """
        wanted = label.casefold()

        def find() -> tuple[SentMessage, dict[str, Any]] | None:
            for msg in reversed(self.server.messages(self.chat_id)):
                for button in msg.inline_buttons + self.shown_reply_keyboard(msg):
                    if wanted in str(button["text"]).casefold():
                        return msg, button
            return None

        found = await self._wait(find, timeout, f"a button containing {label!r}")
        msg, button = found
        if "callback_data" in button:
            await self.press_data(str(button["callback_data"]), msg, label=str(button["text"]))
        elif button.get("request_contact"):
            raise AssertionError("use share_contact() for a share-contact button")
        else:
            await self.send(str(button["text"]))

    def shown_reply_keyboard(self, msg: SentMessage) -> list[dict[str, Any]]:
        """The reply keyboard of ``msg`` if no later message has replaced or removed it."""
        if not msg.keyboard_buttons:
            return []
        later = [m for m in self.server.messages(self.chat_id) if m.message_id > msg.message_id]
        if any(m.keyboard_buttons or m.removes_keyboard for m in later):
            return []
        return msg.keyboard_buttons

    async def press_data(
        self, data: str, message: SentMessage | None = None, *, label: str | None = None
    ) -> None:
        """Send a callback query with any ``data`` (a forged or outdated button)."""
        if message is None:
            messages = self.server.messages(self.chat_id)
            if not messages:
                raise AssertionError("there is no bot message to press a button on")
            message = messages[-1]
        payload = {
            "id": f"cq-{self.user_id}-{self.server.new_message_id()}",
            "from": self.as_api_user(),
            "message": message.to_api(self.server.bot_user),
            "chat_instance": f"ci-{self.user_id}",
            "data": data,
        }
        shown = label if label is not None else data
        await self._push("callback_query", payload, f"→ {self.first_name} pressed [{shown}]")

    async def share_contact(self, phone: str, own: bool = True) -> None:
        """Share a phone number with the contact button (someone else's when not ``own``)."""
        contact = {
            "phone_number": phone,
            "first_name": self.first_name,
            "user_id": self.user_id if own else self.user_id + 1_000_000,
        }
        whose = "own" if own else "someone else's"
        await self._message({"contact": contact}, f"→ {self.first_name} shared {whose} {phone}")

    async def send_document(self, name: str, mime: str, size: int) -> None:
        document = {
            "file_id": f"file-{self.server.new_message_id()}",
            "file_unique_id": f"u-{name}",
            "file_name": name,
            "mime_type": mime,
            "file_size": size,
        }
        await self._message({"document": document}, f"→ {self.first_name} sent {name} ({mime})")

    async def _message(self, extra: dict[str, Any], note: str) -> None:
        payload = {
            "message_id": self.server.new_message_id(),
            "date": int(time.time()),
            "chat": {"id": self.chat_id, "type": "private", "first_name": self.first_name},
            "from": self.as_api_user(),
            **extra,
        }
        await self._push("message", payload, note)

    async def _push(self, kind: str, payload: dict[str, Any], note: str) -> None:
        self._mark = self.server.stamp
        await self.server.push_update(kind, payload, chat_id=self.chat_id, note=note)

    # --- waiting ---------------------------------------------------------------------------

    async def wait_for(self, substring: str, timeout: float = 10.0) -> str:  # noqa: ASYNC109
        """The newest bot text containing ``substring`` sent (or edited) since my last action."""
        msg = await self.wait_message(substring, timeout)
        return msg.text or ""

    async def wait_message(
        self,
        substring: str,
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> SentMessage:
        wanted = substring.casefold()

        def find() -> SentMessage | None:
            for msg in reversed(self.since_last_action()):
                if wanted in (msg.text or "").casefold():
                    return msg
            return None

        return await self._wait(find, timeout, f"a message containing {substring!r}")

    async def wait_until(
        self,
        predicate: Callable[[list[SentMessage]], bool],
        timeout: float = 10.0,  # noqa: ASYNC109
    ) -> list[SentMessage]:
        """Wait until ``predicate`` holds for the bot messages since my last action."""

        def check() -> list[SentMessage] | None:
            messages = self.since_last_action()
            return messages if predicate(messages) else None

        return await self._wait(check, timeout, "the expected messages")

    def since_last_action(self) -> list[SentMessage]:
        """Bot messages sent or edited after my last action, in the order they were sent."""
        return [m for m in self.server.messages(self.chat_id) if m.stamp > self._mark]

    async def _wait(
        self,
        find: Callable[[], T | None],
        timeout: float,  # noqa: ASYNC109
        what: str,
    ) -> T:
        cond = self.server.chat_changed(self.chat_id)
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
                    f"waited {timeout}s for {what} in the chat of {self.first_name}; "
                    f"conversation so far:\n{self.transcript()}"
                ) from None
        return found[-1]

    # --- looking -------------------------------------------------------------------------

    def transcript(self) -> str:
        return "\n".join(self.server.timeline(self.chat_id)) or "(nothing yet)"

    def last_keyboard(self) -> list[str]:
        """Button labels of the bot's newest message ([] when it has none)."""
        messages = self.server.messages(self.chat_id)
        return messages[-1].labels if messages else []


# --- helpers ----------------------------------------------------------------------------------


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json() if request.body_exists else {}
        params.update(body or {})
    elif request.body_exists:
        form = await request.post()
        for key, value in form.items():
            if isinstance(value, web.FileField):
                params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
            else:
                params[key] = value
    for key in JSON_PARAMS & params.keys():
        if isinstance(params[key], str):
            with contextlib.suppress(ValueError):
                params[key] = json.loads(params[key])
    return params


def _flag(value: Any) -> bool:
    """A boolean parameter as aiogram sends it in form data ("true"/"false") or as JSON."""
    return value is True or str(value).lower() == "true"


def _chat_of(update: dict[str, Any]) -> int:
    """The private chat an update belongs to (Telegram orders webhook deliveries by chat)."""
    if "message" in update:
        return int(update["message"]["chat"]["id"])
    if "callback_query" in update:
        return int(update["callback_query"]["from"]["id"])
    return 0


async def _maybe_await(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(400, f"Bad Request: not a number: {value!r}") from None


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode: a few tags become formatting, anything else is an error."""

    TAGS = frozenset(
        {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre"}
        | {"span", "tg-spoiler", "tg-emoji", "blockquote"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.TAGS:
            raise ApiError(
                400, f'Bad Request: can\'t parse entities: Unsupported start tag "{tag}"'
            )

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _render(text: str, parse_mode: Any) -> str:
    """The text as the person sees it: markup is interpreted only when a parse mode is set."""
    if not parse_mode:
        return text
    if str(parse_mode).upper() == "HTML":
        parser = _TelegramHTML()
        parser.feed(text)
        parser.close()
        return "".join(parser.parts)
    return re.sub(r"[*_`~|]", "", text)  # Markdown: formatting characters disappear


def _check_text(text: str, limit: int) -> None:
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    if len(text) > limit:
        raise ApiError(400, "Bad Request: message is too long")


def _check_markup(markup: Any) -> dict[str, Any] | None:
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard") or []:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_BYTES:
                raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
    return markup


def _describe(msg: SentMessage) -> str:
    head = f"← bot #{msg.message_id}"
    if msg.document is not None:
        head += f" [{msg.kind} {msg.document.filename}]"
    lines = [f"{head}: {msg.text}" if msg.text else head]
    rows = (msg.reply_markup or {}).get("inline_keyboard") or (msg.reply_markup or {}).get(
        "keyboard"
    )
    for row in rows or []:
        labels = [b["text"] if isinstance(b, dict) else str(b) for b in row]
        lines.append("      " + " ".join(f"[{label}]" for label in labels))
    if msg.removes_keyboard:
        lines.append("      (keyboard removed)")
    return "\n".join(lines)
