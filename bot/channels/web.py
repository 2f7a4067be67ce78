"""The web chat: one mobile page and a small JSON API over the same engine.

`thidua run` with no platform token, and `thidua demo`, serve it at THIDUA_WEB_HOST:PORT. The
page carries its CSS and script inline and loads nothing from elsewhere, so it works on a LAN
with no Internet.

Who is who: a person signs in with a sign-in code (an invite from `thidua invite create`; the
conversation then starts with "/start <code>", as a Telegram deep link would) or, in demo mode,
by picking a demo role. The browser gets a random token in an HttpOnly, SameSite=Strict cookie;
the database keeps only its hash, mapped to the web address ``Address("web", external_id)``
that the engine, the outbox and the logs see. The token itself is never an address. The
cookie is Secure when the page is https: directly, by THIDUA_PUBLIC_URL, or as told by a proxy
in THIDUA_TRUSTED_PROXIES. Sign-in codes are throttled in the database, per client address
(failures) and per code. A new sign-in is a new web chat: the person reaches their own
account again through the same proof as anyone who types a phone (handlers.flows.onboarding).

Every bubble (the person's, the bot's, and messages queued by others through the outbox) is
kept in ``web_messages``: a reload shows the conversation, and the page polls for new ones.

Against other sites: POSTs need a custom header (a cross-site form cannot send one, and a
cross-site fetch with one needs a CORS preflight this server never grants) and a matching
Origin when the browser sends one; bodies are small; every response carries a strict CSP
whose only script is the page's own, allowed by a per-response nonce.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from aiohttp import BodyPartReader, web
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import undefer

from bot.demo import DEMO_ROLES
from bot.outbox import OutboxDispatcher
from handlers.engine.prompt import NAV_IDS, Address, Incoming, IncomingFile, Reply
from handlers.engine.runner import Engine
from handlers.flows.initiatives import (
    ACCEPTED_EXTENSIONS,
    MAX_FILE_BYTES,
    attachment_problem,
    file_size_text,
)
from handlers.i18n import _, current_locale, use_locale
from storage.claims import count_since, record_attempts
from storage.invites import find_valid_invite
from storage.models import ChannelIdentity, Person, WebMessage, WebSession
from storage.normalize import MAX_ID, parse_id
from storage.repo import identity_on_channel, person_by_phone
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.app import Core
    from bot.config import Settings

log = logging.getLogger(__name__)

CHANNEL = "web"
COOKIE = "thidua_session"
# The custom header every POST must carry (see the module docstring).
CSRF_HEADER = "X-Requested-With"
CSRF_VALUE = "thidua"
TOKEN_BYTES = 32  # 256 random bits in the cookie
SESSION_LIFETIME = timedelta(days=180)
# last_seen_at is written at most this often, not on every poll.
TOUCH_EVERY = timedelta(minutes=10)
MAX_BODY = 16 * 1024
# Sign-in limits, counted in the database (all processes, across restarts): failed codes per
# client address, and sign-ins per code (a leaked code hammered from many addresses).
SIGNIN_WINDOW = timedelta(minutes=15)
SIGNIN_FAILURES = 10
SIGNIN_PER_CODE = 60
MAX_TEXT = 4000
MAX_CODE = 64
MAX_CHOICE_ID = 64
HISTORY = 60  # bubbles shown when the page opens
PAGE_SIZE = 100  # bubbles per poll at most
POLL_MS = 3000
ME, BOT = "me", "bot"
NEW_PERSON = "new"  # the demo picker's "I am new here": plain onboarding, no invite
# Pictures the page shows in the bubble (a chart, a QR code, a receipt card), not only as a
# download link.
INLINE_IMAGES = frozenset({"image/png", "image/jpeg"})

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_external_id() -> str:
    # An address, not a secret: it is in the outbox, channel_identities and the logs.
    return "w" + secrets.token_hex(12)


def reply_payload(reply: Reply) -> dict[str, Any]:
    """A bot bubble as stored: what the page needs to draw it and its buttons."""
    return {
        "text": reply.text,
        "choices": [{"id": c.id, "label": c.label, "nav": c.id in NAV_IDS} for c in reply.choices],
        "seq": reply.seq,
        "one_per_row": reply.one_per_row,
        "phone": reply.request_contact,
    }


def message_json(row: WebMessage) -> dict[str, Any]:
    payload = row.payload or {}
    return {
        "id": row.id,
        "from": row.sender,
        "text": str(payload.get("text", "")),
        "choices": payload.get("choices", []),
        "seq": payload.get("seq"),
        "one_per_row": bool(payload.get("one_per_row", True)),
        "phone": bool(payload.get("phone", False)),
        "file": (
            {"name": row.file_name, "image": (row.file_mime or "") in INLINE_IMAGES}
            if row.file_name is not None
            else None
        ),
    }


class WebChannel:
    """The aiohttp site: the page, the JSON API, and ``send`` for the outbox."""

    name = CHANNEL

    def __init__(
        self,
        engine: Engine,
        sessionmaker: async_sessionmaker[AsyncSession],
        host: str,
        port: int,
        *,
        demo: bool,
        also_listen: tuple[tuple[str, int], ...] = (),
        public_url: str | None = None,
        trusted_proxies: str | Iterable[str] = (),
    ) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.host = host
        self.port = port
        self.demo = demo
        # More (host, port) addresses the same server answers on (the webhooks' own port).
        self.also_listen = also_listen
        # Served as https to people (a TLS proxy in front): cookies are Secure.
        self.public_https = (urlsplit(public_url).scheme == "https") if public_url else False
        if isinstance(trusted_proxies, str):
            trusted_proxies = trusted_proxies.split(",")
        self.trusted_proxies = frozenset(p.strip() for p in trusted_proxies if p.strip())
        self.app = self._make_app()
        self._runner: web.AppRunner | None = None

    # --- Channel protocol ------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on host:port (port 0 picks a free one; ``self.port`` then tells which)."""
        async with self.sessionmaker() as session, session.begin():
            # Sessions are checked for age when used; this drops those never used again.
            await session.execute(
                delete(WebSession).where(WebSession.last_seen_at < utcnow() - SESSION_LIFETIME)
            )
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])
        for host, port in self.also_listen:
            await web.TCPSite(self._runner, host, port).start()
        log.info("web chat at %s", self.url)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def send(self, address_external_id: str, reply: Reply) -> None:
        """A message from someone else: it waits in the person's chat until the page polls."""
        await self._store(address_external_id, [(BOT, reply_payload(reply), reply)])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    # --- the application ---------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY, middlewares=[self._headers])
        app.router.add_get("/", self.page)
        app.router.add_get("/api/me", self.me)
        app.router.add_post("/api/signin", self.signin)
        app.router.add_post("/api/signout", self.signout)
        app.router.add_post("/api/send", self.send_message)
        app.router.add_get("/api/inbox", self.inbox)
        app.router.add_get(r"/api/file/{id:\d{1,18}}", self.file)
        app.router.add_post("/api/upload", self.upload)
        return app

    @web.middleware
    async def _headers(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            # Server texts (errors, the page) in the bot's language, as the engine's default.
            with use_locale(self.engine.config.default_locale):
                response = await handler(request)
        except web.HTTPException as exc:
            response = exc
        response.headers.setdefault(
            "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
        )
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        if isinstance(response, web.HTTPException):
            raise response
        return response

    # --- the page ------------------------------------------------------------------------

    async def page(self, request: web.Request) -> web.Response:
        """The chat page, its texts in the bot's language; a fresh nonce for its script."""
        nonce = secrets.token_urlsafe(18)
        response = web.Response(
            text=render_page(nonce, demo=self.demo), content_type="text/html", charset="utf-8"
        )
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
            "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'"
        )
        return response

    # --- API -----------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        """Whether this browser is signed in, and as whom (for the page header)."""
        external_id = await self._session(request)
        name = None
        if external_id is not None:
            async with self.sessionmaker() as session:
                name = await session.scalar(
                    select(Person.full_name)
                    .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
                    .where(
                        ChannelIdentity.channel == CHANNEL,
                        ChannelIdentity.external_id == external_id,
                    )
                )
        return web.json_response(
            {"signed_in": external_id is not None, "name": name, "demo": self.demo}
        )

    def client_address(self, request: web.Request) -> str:
        """Who is asking: the peer, or what a trusted proxy says the client was."""
        peer = request.remote or "-"
        if peer not in self.trusted_proxies:
            return peer
        hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
        # The nearest hop not one of our proxies: hops further left are the client's to write.
        for hop in reversed([h for h in hops if h]):
            if hop not in self.trusted_proxies:
                return hop[:60]
        return peer

    def is_https(self, request: web.Request) -> bool:
        """Whether the person's browser talks https to us (directly or through our proxy)."""
        if request.secure or self.public_https:
            return True
        if (request.remote or "") in self.trusted_proxies:
            proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip()
            return proto.lower() == "https"
        return False

    async def _throttled(self, request: web.Request, code: str | None) -> bool:
        """Too many failed sign-ins from this address, or too many with this code."""
        now = utcnow()
        address_key = f"signin:addr:{self.client_address(request)}"
        async with self.sessionmaker() as session:
            if await count_since(session, [address_key], now - SIGNIN_WINDOW) >= SIGNIN_FAILURES:
                return True
            if code is not None:
                code_key = f"signin:code:{_hash(code)[:32]}"
                if await count_since(session, [code_key], now - SIGNIN_WINDOW) >= SIGNIN_PER_CODE:
                    return True
        return False

    async def _count_signin(self, request: web.Request, code: str, *, failed: bool) -> None:
        keys = [f"signin:code:{_hash(code)[:32]}"]
        if failed:
            keys.append(f"signin:addr:{self.client_address(request)}")
        async with self.sessionmaker() as session, session.begin():
            await record_attempts(session, keys, utcnow())

    async def signin(self, request: web.Request) -> web.Response:
        """Sign in with a code (an invite) or, in demo mode, a demo role; sets the cookie."""
        body = await self._json(request)
        code, role = body.get("code"), body.get("role")
        now = self.engine.config.now() if self.engine.config.now else utcnow()
        if isinstance(code, str) and code.strip():
            code = code.strip()[: MAX_CODE + 1]
            if await self._throttled(request, code):
                raise self._error(
                    web.HTTPTooManyRequests,
                    _(
                        "Too many sign-in attempts. Please wait a quarter of an hour, then "
                        "try again."
                    ),
                )
            async with self.sessionmaker() as session:
                invite = (
                    await find_valid_invite(session, code, now) if len(code) <= MAX_CODE else None
                )
            await self._count_signin(request, code, failed=invite is None)
            if invite is None:
                raise self._error(
                    web.HTTPForbidden,
                    _(
                        "This sign-in code is not valid (mistyped, expired or used up). "
                        "Please check it or ask your union officer for a new one."
                    ),
                )
            external_id, first = _new_external_id(), f"/start {code}"
        elif self.demo and role == NEW_PERSON:
            external_id, first = _new_external_id(), "/start"
        elif self.demo and isinstance(role, str) and role in DEMO_ROLES:
            found = await self._demo_address(DEMO_ROLES[role].phone)
            if found is None:
                raise self._error(
                    web.HTTPConflict,
                    _("The demo data is not loaded. Run `thidua demo` to load it."),
                )
            external_id, first = found, "/start"
        else:
            raise self._error(web.HTTPBadRequest, _("Please type your sign-in code."))

        token = secrets.token_urlsafe(TOKEN_BYTES)
        old = request.cookies.get(COOKIE)
        async with self.sessionmaker() as session, session.begin():
            if old:
                await session.execute(delete(WebSession).where(WebSession.token_hash == _hash(old)))
            session.add(WebSession(token_hash=_hash(token), external_id=external_id))
        result = await self.engine.handle(Incoming(Address(CHANNEL, external_id), text=first))
        await self._store(external_id, [(BOT, reply_payload(r), r) for r in result.replies])
        response = web.json_response({"ok": True})
        response.set_cookie(
            COOKIE,
            token,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/",
            httponly=True,
            samesite="Strict",
            # On a LAN the page is plain http; behind a TLS proxy (THIDUA_PUBLIC_URL https,
            # or X-Forwarded-Proto from a THIDUA_TRUSTED_PROXIES address) it stays on https.
            secure=self.is_https(request),
        )
        return response

    async def signout(self, request: web.Request) -> web.Response:
        await self._json(request)
        token = request.cookies.get(COOKIE)
        if token:
            async with self.sessionmaker() as session, session.begin():
                await session.execute(
                    delete(WebSession).where(WebSession.token_hash == _hash(token))
                )
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/")
        return response

    async def send_message(self, request: web.Request) -> web.Response:
        """One thing the person did: typed text, or a tapped button {choice_id, seq}."""
        body = await self._json(request)
        external_id = await self._require_session(request)
        address = Address(CHANNEL, external_id)
        text, choice_id, seq = body.get("text"), body.get("choice_id"), body.get("seq")
        if choice_id is not None:
            if (
                not isinstance(choice_id, str)
                or not 0 < len(choice_id) <= MAX_CHOICE_ID
                or not choice_id.isascii()
                or not choice_id.isprintable()
                or (seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)))
            ):
                raise self._error(web.HTTPBadRequest, _("That button cannot be used."))
            shown = await self._label(external_id, choice_id, seq) or choice_id
            incoming = Incoming(address, choice_id=choice_id, seq=seq)
        elif isinstance(text, str) and text.strip():
            if len(text) > MAX_TEXT:
                raise self._error(
                    web.HTTPBadRequest,
                    _("That message is too long. Please keep it under 4,000 characters."),
                )
            shown = text.strip()
            incoming = Incoming(address, text=text)
        else:
            raise self._error(web.HTTPBadRequest, _("Please type a message."))
        result = await self.engine.handle(incoming)
        rows = await self._store(
            external_id,
            [(ME, {"text": shown}, None)] + [(BOT, reply_payload(r), r) for r in result.replies],
        )
        return web.json_response({"messages": [message_json(r) for r in rows]})

    async def upload(self, request: web.Request) -> web.Response:
        """A file the person attached (multipart, field "file"), answered like Telegram's.

        The bytes are kept with the person's own bubble (``web_messages``), and the engine
        gets the bubble's id as the file's id: an initiative's attachment then refers to the
        file the web chat keeps, as on Telegram it refers to the file Telegram keeps. Read in
        chunks and stopped at the flows' limit, so a huge upload costs no memory.
        """
        self._same_site(request)
        external_id = await self._require_session(request)
        if request.content_type != "multipart/form-data":
            raise self._error(web.HTTPUnsupportedMediaType, _("Please use the chat page."))
        too_big = web.HTTPRequestEntityTooLarge(
            max_size=MAX_FILE_BYTES,
            actual_size=request.content_length or MAX_FILE_BYTES + 1,
            text=json.dumps(
                {
                    "error": _(
                        "This file is more than {limit} MB. Please send a smaller file (for "
                        "example a photo of the main page)."
                    ).format(limit=MAX_FILE_BYTES // (1024 * 1024))
                },
                ensure_ascii=False,
            ),
            content_type="application/json",
        )
        if (request.content_length or 0) > MAX_FILE_BYTES + MAX_BODY:
            raise too_big
        try:
            reader = await request.multipart()
            part = await reader.next()
        except (ValueError, AssertionError) as exc:
            raise self._error(web.HTTPBadRequest, _("Please use the chat page.")) from exc
        if not isinstance(part, BodyPartReader) or part.name != "file":
            raise self._error(web.HTTPBadRequest, _("Please use the chat page."))
        filename = clean_filename(part.filename)
        mime = (part.headers.get("Content-Type") or "").split(";")[0].strip().lower() or None
        content = bytearray()
        while chunk := await part.read_chunk(64 * 1024):
            content += chunk
            if len(content) > MAX_FILE_BYTES:
                raise too_big
        if not content:
            raise self._error(web.HTTPBadRequest, _("This file is empty."))
        size = len(content)
        # A file the flows refuse anyway is not kept: the engine still hears of it, so the
        # question explains what it takes.
        kept = attachment_problem(filename, mime, size) is None
        shown = "📎 " + (filename or _("file")) + f" ({file_size_text(size)})"
        [mine] = await self._store(
            external_id,
            [(ME, {"text": shown}, None)],
            file=(filename or "file", mime or "application/octet-stream", bytes(content))
            if kept
            else None,
        )
        incoming = Incoming(
            Address(CHANNEL, external_id),
            file=IncomingFile(str(mine.id) if kept else "", filename, mime, size),
        )
        result = await self.engine.handle(incoming)
        rows = await self._store(external_id, [(BOT, reply_payload(r), r) for r in result.replies])
        return web.json_response({"messages": [message_json(r) for r in [mine, *rows]]})

    def _same_site(self, request: web.Request) -> None:
        """The cross-site checks of every POST (see the module docstring)."""
        if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise self._error(web.HTTPForbidden, _("Please use the chat page."))
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise self._error(web.HTTPForbidden, _("Please use the chat page."))

    async def inbox(self, request: web.Request) -> web.Response:
        """Bubbles after ``after`` (an id); with none, the latest ones, to open the page."""
        external_id = await self._require_session(request)
        raw = request.query.get("after", "0")
        # ASCII digits only ("²" is a digit int() refuses), and no larger than the id column
        # holds: PostgreSQL refuses a bigger number for an integer column.
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise self._error(web.HTTPBadRequest, _("Something went wrong, please try again."))
        after = min(int(raw), MAX_ID)
        async with self.sessionmaker() as session:
            query = select(WebMessage).where(WebMessage.external_id == external_id)
            if after:
                rows = list(
                    await session.scalars(
                        query.where(WebMessage.id > after).order_by(WebMessage.id).limit(PAGE_SIZE)
                    )
                )
            else:
                rows = list(
                    await session.scalars(query.order_by(WebMessage.id.desc()).limit(HISTORY))
                )
                rows.reverse()
        return web.json_response({"messages": [message_json(r) for r in rows]})

    async def file(self, request: web.Request) -> web.Response:
        """A file the bot sent (an export, say), only to the chat it was sent to."""
        external_id = await self._require_session(request)
        message_id = parse_id(request.match_info["id"])
        if message_id is None:  # no column holds it, so no such file
            raise web.HTTPNotFound()
        async with self.sessionmaker() as session:
            row = await session.scalar(
                select(WebMessage)
                .where(
                    WebMessage.id == message_id,
                    WebMessage.external_id == external_id,
                    WebMessage.file_name.is_not(None),
                )
                .options(undefer(WebMessage.file_content))
            )
        if row is None or row.file_content is None:
            raise web.HTTPNotFound()
        name = row.file_name or "file"
        return web.Response(
            body=row.file_content,
            content_type=row.file_mime or "application/octet-stream",
            headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"},
        )

    # --- helpers -------------------------------------------------------------------------

    def _error(self, kind: type[web.HTTPException], message: str) -> web.HTTPException:
        """An HTTP error whose JSON body the page shows as is."""
        return kind(
            text=json.dumps({"error": message}, ensure_ascii=False),
            content_type="application/json",
        )

    async def _json(self, request: web.Request) -> dict[str, Any]:
        """The body of a POST, after the cross-site checks."""
        if request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise self._error(web.HTTPForbidden, _("Please use the chat page."))
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            raise self._error(web.HTTPForbidden, _("Please use the chat page."))
        if request.content_type != "application/json":
            raise self._error(web.HTTPUnsupportedMediaType, _("Please use the chat page."))
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            raise self._error(web.HTTPBadRequest, _("Something went wrong, please try again."))
        return body

    async def _session(self, request: web.Request) -> str | None:
        """The web address this browser is signed in as, if any."""
        token = request.cookies.get(COOKIE)
        if not token or len(token) > 100:
            return None
        now = utcnow()
        async with self.sessionmaker() as session, session.begin():
            row = await session.scalar(
                select(WebSession).where(WebSession.token_hash == _hash(token))
            )
            if row is None:
                return None
            if row.last_seen_at < now - SESSION_LIFETIME:
                await session.delete(row)
                return None
            if row.last_seen_at < now - TOUCH_EVERY:
                row.last_seen_at = now
            return row.external_id

    async def _require_session(self, request: web.Request) -> str:
        external_id = await self._session(request)
        if external_id is None:
            raise self._error(web.HTTPUnauthorized, _("Please sign in again."))
        return external_id

    async def _demo_address(self, phone: str) -> str | None:
        """The web address of a demo person, created (and linked) on the first sign-in."""
        async with self.sessionmaker() as session, session.begin():
            person = await person_by_phone(session, phone)
            if person is None:
                return None
            identity = await identity_on_channel(session, person.id, CHANNEL)
            if identity is None:
                identity = ChannelIdentity(
                    channel=CHANNEL, external_id=_new_external_id(), person_id=person.id
                )
                session.add(identity)
            return identity.external_id

    async def _label(self, external_id: str, choice_id: str, seq: int | None) -> str | None:
        """The label of the tapped button, for the person's own bubble."""
        async with self.sessionmaker() as session:
            recent = await session.scalars(
                select(WebMessage)
                .where(WebMessage.external_id == external_id, WebMessage.sender == BOT)
                .order_by(WebMessage.id.desc())
                .limit(30)
            )
            for row in recent:
                payload = row.payload or {}
                if payload.get("seq") != seq:
                    continue
                for choice in payload.get("choices", []):
                    if choice.get("id") == choice_id:
                        return str(choice.get("label", ""))
        return None

    async def _store(
        self,
        external_id: str,
        bubbles: Iterable[tuple[str, dict[str, Any], Reply | None]],
        file: tuple[str, str, bytes] | None = None,
    ) -> list[WebMessage]:
        """Keep bubbles; ``file`` (name, type, bytes) is the person's own upload."""
        rows = []
        for sender, payload, reply in bubbles:
            sent = reply.file if reply is not None else None
            own = (sent.filename, sent.mime, sent.content) if sent else file
            rows.append(
                WebMessage(
                    external_id=external_id,
                    sender=sender,
                    payload=payload,
                    file_name=own[0][:200] if own else None,
                    file_mime=own[1][:100] if own else None,
                    file_content=own[2] if own else None,
                )
            )
        if rows:
            async with self.sessionmaker() as session, session.begin():
                session.add_all(rows)
        return rows


# --- wiring ------------------------------------------------------------------------------


async def serve_web(core: Core, settings: Settings, *, demo: bool, dispatch: bool = True) -> None:
    """Serve the web chat until cancelled.

    With ``dispatch`` (the default) it also delivers the outbox's web messages; pass False
    when the caller runs one dispatcher for every channel and lists this one in it.
    """
    channel = WebChannel(
        core.engine, core.sessionmaker, settings.web_host, settings.web_port, demo=demo
    )
    dispatcher = OutboxDispatcher(core.sessionmaker, {CHANNEL: channel}) if dispatch else None
    tasks: list[asyncio.Task[None]] = []
    await channel.start()
    try:
        if dispatcher is not None:
            core.engine.on_queued = dispatcher.nudge
            tasks.append(asyncio.create_task(dispatcher.run()))
        print(f"Web chat: open {channel.url} in a browser (Ctrl-C to stop).", flush=True)
        await asyncio.Event().wait()  # until cancelled
    finally:
        if dispatcher is not None:
            dispatcher.stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await channel.stop()


# --- the page ----------------------------------------------------------------------------


def clean_filename(name: str | None) -> str | None:
    """A browser's file name as shown and stored: no folders, no control characters."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable()).strip()
    return base[:200] or None


def _script_json(value: object) -> str:
    """JSON safe inside <script type="application/json"> (no "</script>" can close it)."""
    return (
        json.dumps(value, ensure_ascii=False)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def render_page(nonce: str, *, demo: bool) -> str:
    """The chat page in the current locale. Every inserted text is escaped."""
    roles = ""
    if demo:
        role_labels = {
            "member": _("Union member"),
            "leader": _("Unit leader"),
            "officer": _("Upper-level officer"),
        }
        buttons = [
            f'<button type="button" class="role" data-role="{html.escape(role)}">'
            f"<b>{html.escape(role_labels[role])}</b>"
            f"<span>{html.escape(DEMO_ROLES[role].name)}</span></button>"
            for role in role_labels
            if role in DEMO_ROLES
        ]
        new_person, from_start = _("New person"), _("Sign up from the start")
        buttons.append(
            f'<button type="button" class="role" data-role="{NEW_PERSON}">'
            f"<b>{html.escape(new_person)}</b><span>{html.escape(from_start)}</span></button>"
        )
        try_as = _("Or try the demo as:")
        roles = (
            f'<p class="or">{html.escape(try_as)}</p><div class="roles">{"".join(buttons)}</div>'
        )
    texts = {
        "offline": _("Cannot reach the server. Please check the connection and try again."),
        "error": _("Something went wrong, please try again."),
        "placeholder": _("Type your answer…"),
        "phone": _("Type your phone number…"),
        "file": _("Download"),
        "too_big": _(
            "This file is more than {limit} MB. Please send a smaller file (for example a "
            "photo of the main page)."
        ).format(limit=MAX_FILE_BYTES // (1024 * 1024)),
        "max_file": MAX_FILE_BYTES,
        "poll": POLL_MS,
    }
    values = {
        "lang": current_locale(),
        "nonce": nonce,
        "title": html.escape(_("Emulation registration")),
        "subtitle": html.escape(_("Trade union emulation assistant")),
        "signout": html.escape(_("Sign out")),
        "signin_title": html.escape(_("Sign in")),
        "signin_help": html.escape(
            _("Type the sign-in code your union officer gave you, then tap Continue.")
        ),
        "code_label": html.escape(_("Sign-in code")),
        "continue": html.escape(_("Continue")),
        "roles": roles,
        "send": html.escape(_("Send")),
        "attach": html.escape(_("Attach a file")),
        "accept": ",".join(f".{ext}" for ext in sorted(ACCEPTED_EXTENSIONS)),
        "noscript": html.escape(_("This page needs JavaScript turned on.")),
        "texts": _script_json(texts),
    }
    page = PAGE
    for key, value in values.items():
        page = page.replace("{{" + key + "}}", value)
    return page


PAGE = """<!doctype html>
<html lang="{{lang}}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, viewport-fit=cover">
<meta name="color-scheme" content="light">
<link rel="icon" href="data:,">
<title>{{title}}</title>
<style nonce="{{nonce}}">
*{box-sizing:border-box}
html,body{margin:0;height:100%}
body{display:flex;flex-direction:column;height:100vh;height:100dvh;background:#eef2f6;
  color:#1c2733;font:16px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Noto Sans",
  "DejaVu Sans",sans-serif,"Apple Color Emoji","Segoe UI Emoji","Noto Color Emoji"}
header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#0b57a4;color:#fff}
header .who{flex:1;min-width:0}
header h1{margin:0;font-size:17px;line-height:1.2}
header p{margin:0;font-size:13px;opacity:.85;white-space:nowrap;overflow:hidden;
  text-overflow:ellipsis}
header button{flex:none;border:1px solid rgba(255,255,255,.6);background:transparent;color:#fff;
  border-radius:16px;padding:5px 10px;font:inherit;font-size:13px}
[hidden]{display:none!important}
#signin{flex:1;overflow-y:auto;padding:20px 16px}
#signin h2{margin:0 0 6px;font-size:20px}
#signin form{display:flex;gap:8px;margin:12px 0}
#signin input{flex:1;min-width:0}
.or{margin:20px 0 8px;color:#4a5a6a}
.roles{display:grid;gap:8px}
.role{display:flex;flex-direction:column;align-items:flex-start;text-align:left;padding:10px 14px;
  border:1px solid #b9cbe0;border-radius:12px;background:#fff;color:inherit;font:inherit}
.role span{font-size:14px;color:#4a5a6a}
.alert{color:#a4000f;min-height:1.4em;margin:8px 0}
#log{flex:1;overflow-y:auto;padding:12px 10px 4px;overscroll-behavior:contain}
.msg{max-width:88%;margin:0 0 10px;padding:8px 12px;border-radius:14px;background:#fff;
  box-shadow:0 1px 1px rgba(0,0,0,.08);overflow-wrap:anywhere}
.msg.me{margin-left:auto;background:#d4e8ff;border-bottom-right-radius:4px}
.msg.bot{border-bottom-left-radius:4px}
.msg p{margin:0;white-space:pre-wrap}
.choices{margin-top:8px}
.options,.navs{display:flex;flex-wrap:wrap;gap:6px}
.options.column{flex-direction:column;align-items:stretch}
.options+.navs{margin-top:8px}
.choice{border:1px solid #0b57a4;background:#f4f8fd;color:#0b57a4;border-radius:10px;
  padding:8px 12px;font:inherit;font-size:15px;text-align:left;min-height:40px}
.choice.nav{border-color:#9aa8b6;color:#3d4b59;background:#fff;font-size:14px;padding:6px 10px}
.choice:disabled{opacity:.45}
.file{display:inline-block;margin-top:6px;color:#0b57a4}
.picture{display:block;max-width:100%;height:auto;margin-top:8px;border-radius:8px}
.typing{color:#6b7a89;font-size:14px;margin:0 0 8px 4px}
#composer{display:flex;gap:8px;padding:8px 10px calc(8px + env(safe-area-inset-bottom));
  background:#fff;border-top:1px solid #d5dde6}
input{font:inherit;padding:9px 12px;border:1px solid #9fb3c8;border-radius:20px;
  background:#fff;color:inherit}
#text{flex:1;min-width:0}
input:focus{outline:2px solid #0b57a4;outline-offset:1px}
.send{border:0;border-radius:20px;padding:9px 16px;background:#0b57a4;color:#fff;font:inherit}
.send:disabled{opacity:.5}
.attach{flex:none;display:flex;align-items:center;justify-content:center;width:40px;
  border:1px solid #9fb3c8;border-radius:20px;font-size:18px;cursor:pointer;position:relative}
.attach input{position:absolute;width:1px;height:1px;opacity:0;overflow:hidden}
.attach:focus-within{outline:2px solid #0b57a4;outline-offset:1px}
</style>
</head>
<body>
<header>
  <div class="who"><h1>{{title}}</h1><p id="sub">{{subtitle}}</p></div>
  <button type="button" id="signout" hidden>{{signout}}</button>
</header>
<noscript><p class="alert">{{noscript}}</p></noscript>
<section id="signin" hidden>
  <h2>{{signin_title}}</h2>
  <p>{{signin_help}}</p>
  <form id="code-form" autocomplete="off">
    <input id="code" name="code" maxlength="64" aria-label="{{code_label}}"
      placeholder="{{code_label}}" autocapitalize="off" spellcheck="false">
    <button class="send" type="submit">{{continue}}</button>
  </form>
  <p class="alert" id="signin-error" role="alert"></p>
  {{roles}}
</section>
<main id="log" hidden aria-live="polite"></main>
<p class="alert" id="chat-error" role="alert" hidden></p>
<form id="composer" hidden autocomplete="off">
  <label class="attach" title="{{attach}}"><span aria-hidden="true">📎</span>
    <input type="file" id="file" accept="{{accept}}" aria-label="{{attach}}"></label>
  <input id="text" maxlength="4000" enterkeyhint="send" aria-label="{{send}}">
  <button class="send" id="send" type="submit">{{send}}</button>
</form>
<script type="application/json" id="texts">{{texts}}</script>
<script nonce="{{nonce}}">
"use strict";
(function () {
  // Every text from the server or the person goes in with textContent: never as HTML.
  var T = JSON.parse(document.getElementById("texts").textContent);
  var $ = function (id) { return document.getElementById(id); };
  var log = $("log"), input = $("text"), composer = $("composer");
  var seen = new Set(), lastId = 0, busy = false, pollTimer = null, signedIn = false;
  var subtitle = $("sub").textContent;

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  async function api(method, path, body) {
    var options = {method: method, credentials: "same-origin",
                   headers: {"X-Requested-With": "thidua"}};
    if (body instanceof FormData) {
      options.body = body;  // multipart: the browser writes its Content-Type
    } else if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    var response;
    try { response = await fetch(path, options); }
    catch (e) { throw new Error(T.offline); }
    var data = {};
    try { data = await response.json(); } catch (e) { data = {}; }
    if (response.status === 401 && signedIn) { showSignin(); }
    if (!response.ok) { throw new Error(data.error || T.error); }
    return data;
  }

  function showError(id, message) {
    var box = $(id);
    box.textContent = message || "";
    box.hidden = !message;
  }

  function setBusy(value) {
    busy = value;
    log.querySelectorAll(".choices.live .choice").forEach(function (b) { b.disabled = value; });
    var typing = log.querySelector(".typing");
    if (value && !typing) { log.appendChild(el("p", "typing", "…")); scrollDown(); }
    if (!value && typing) { typing.remove(); }
  }

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function render(m) {
    if (seen.has(m.id)) return;
    seen.add(m.id);
    lastId = Math.max(lastId, m.id);
    var bubble = el("div", "msg " + (m.from === "me" ? "me" : "bot"));
    bubble.appendChild(el("p", "", m.text));
    if (m.file && m.file.image) {
      var picture = el("img", "picture");
      picture.src = "/api/file/" + encodeURIComponent(String(m.id));
      picture.alt = m.file.name;
      bubble.appendChild(picture);
    }
    if (m.file) {
      var link = el("a", "file", "📎 " + m.file.name + " — " + T.file);
      link.href = "/api/file/" + encodeURIComponent(String(m.id));
      link.setAttribute("download", "");
      bubble.appendChild(link);
    }
    if (m.choices && m.choices.length) {
      var group = el("div", "choices live");
      if (m.seq !== null) {
        // Only the newest question keeps working buttons; older ones are history.
        log.querySelectorAll(".choices.live.asked").forEach(function (old) {
          old.classList.remove("live");
          old.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        });
        group.classList.add("asked");
      }
      // The answers first (one per line when the labels are long), then Skip/Back/Cancel
      // side by side, so the navigation does not take a line each.
      var options = el("div", "options" + (m.one_per_row ? " column" : ""));
      var navs = el("div", "navs");
      m.choices.forEach(function (c) {
        var button = el("button", "choice" + (c.nav ? " nav" : ""), c.label);
        button.type = "button";
        button.addEventListener("click", function () {
          send({choice_id: c.id, seq: m.seq});
        });
        (c.nav ? navs : options).appendChild(button);
      });
      if (options.childElementCount) group.appendChild(options);
      if (navs.childElementCount) group.appendChild(navs);
      bubble.appendChild(group);
    }
    if (m.from === "bot" && (m.seq !== null || m.phone)) {
      input.placeholder = m.phone ? T.phone : T.placeholder;
      input.inputMode = m.phone ? "tel" : "text";
    }
    var typing = log.querySelector(".typing");
    log.insertBefore(bubble, typing);
    scrollDown();
  }

  // One request at a time, in order: text typed while an answer is on its way waits for it.
  var pending = Promise.resolve(true);
  function send(body) {
    pending = pending.then(function () { return post(body); });
    return pending;
  }

  // One answer to the bot (typed, as JSON to /api/send; a file, as multipart to /api/upload),
  // its replies rendered as they come back.
  async function post(body, path) {
    setBusy(true);
    showError("chat-error", "");
    try {
      var data = await api("POST", path || "/api/send", body);
      data.messages.forEach(render);
      return true;
    } catch (e) {
      showError("chat-error", e.message);
      return false;
    } finally {
      setBusy(false);
    }
  }

  // A file goes as multipart to /api/upload, in turn with the typed answers.
  function upload(file) {
    var form = new FormData();
    form.append("file", file, file.name);
    pending = pending.then(function () { return post(form, "/api/upload"); });
    return pending;
  }

  $("file").addEventListener("change", function () {
    var picker = $("file"), file = picker.files && picker.files[0];
    picker.value = "";
    if (!file) return;
    if (file.size > T.max_file) { showError("chat-error", T.too_big); return; }
    upload(file);
  });

  async function poll() {
    clearTimeout(pollTimer);
    if (!signedIn) return;
    if (!document.hidden && !busy) {
      try {
        var data = await api("GET", "/api/inbox?after=" + lastId);
        data.messages.forEach(render);
      } catch (e) { /* the next poll tries again */ }
    }
    if (signedIn) pollTimer = setTimeout(poll, T.poll);
  }

  async function openChat(name) {
    signedIn = true;
    $("signin").hidden = true;
    log.hidden = false;
    composer.hidden = false;
    $("signout").hidden = false;
    if (name) $("sub").textContent = name;
    log.replaceChildren();
    seen.clear();
    lastId = 0;
    try {
      var data = await api("GET", "/api/inbox?after=0");
      data.messages.forEach(render);
    } catch (e) { showError("chat-error", e.message); }
    pollTimer = setTimeout(poll, T.poll);
    input.focus();
  }

  function showSignin() {
    signedIn = false;
    clearTimeout(pollTimer);
    $("signin").hidden = false;
    log.hidden = true;
    composer.hidden = true;
    showError("chat-error", "");
    $("signout").hidden = true;
    $("sub").textContent = subtitle;
  }

  async function signIn(body) {
    showError("signin-error", "");
    try {
      await api("POST", "/api/signin", body);
      var me = await api("GET", "/api/me");
      await openChat(me.name);
    } catch (e) { showError("signin-error", e.message); }
  }

  $("code-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var code = $("code").value.trim();
    if (code) signIn({code: code});
  });
  document.querySelectorAll(".role").forEach(function (button) {
    button.addEventListener("click", function () { signIn({role: button.dataset.role}); });
  });
  composer.addEventListener("submit", async function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    if (!(await send({text: text})) && !input.value) input.value = text;
    input.focus();
  });
  $("signout").addEventListener("click", async function () {
    try { await api("POST", "/api/signout", {}); } catch (e) { /* signed out anyway */ }
    showSignin();
  });
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && signedIn) poll();
  });

  api("GET", "/api/me").then(function (me) {
    if (me.signed_in) openChat(me.name); else showSignin();
  }, function (e) { showSignin(); showError("signin-error", e.message); });
})();
</script>
</body>
</html>
"""
