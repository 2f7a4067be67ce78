"""Files as links, for chats that cannot carry files (Zalo Bot and Zalo OA).

The file is kept in the database for a while (``shared_files``) and the person gets a link to
the bot's own web server: ``{base}/tep/{id}/{expires}/{signature}``. The signature (HMAC-SHA256
over the id and the expiry, with a key made once and kept with the channels' secrets) means a
link cannot be guessed from another one, nor made to last longer than it was given for.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.prompt import OutFile, Reply
from handlers.i18n import _, current_locale
from handlers.text import format_date
from storage.normalize import parse_id
from storage.shared_files import forget_expired_files, link_signing_key, share_file, shared_file
from storage.types import utcnow

log = logging.getLogger(__name__)

# A week: long enough to open the digest's XLSX on Monday that came on Friday.
LINK_LIFETIME = timedelta(days=7)
PREFIX = "/tep"
SIGNATURE_CHARS = 32  # 128 bits of the HMAC, in hex


class FileLinks:
    """Stores files and hands out signed links; serves them (``routes``) until they expire."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        base_url: str,
        *,
        lifetime: timedelta = LINK_LIFETIME,
        now: Callable[[], datetime] | None = None,
        tz: str = "Asia/Ho_Chi_Minh",
    ) -> None:
        self.sessionmaker = sessionmaker
        self.base_url = base_url.rstrip("/")
        self.lifetime = lifetime
        self._now = now or utcnow
        self.tz = tz
        # The key never changes once made: read once per process.
        self._key: bytes | None = None

    async def _signing_key(self, session: AsyncSession) -> bytes:
        if self._key is None:
            self._key = await link_signing_key(session, self._now())
        return self._key

    @staticmethod
    def _sign(key: bytes, file_id: int, expires: int) -> str:
        digest = hmac.new(key, f"{file_id}.{expires}".encode(), hashlib.sha256).hexdigest()
        return digest[:SIGNATURE_CHARS]

    async def link(self, file: OutFile) -> tuple[str, datetime]:
        """A URL for the file and when it stops working."""
        now = self._now()
        expires_at = (now + self.lifetime).replace(microsecond=0)
        async with self.sessionmaker() as session, session.begin():
            key = await self._signing_key(session)
            await forget_expired_files(session, now)
            row = await share_file(session, file.filename, file.mime, file.content, expires_at)
            file_id = row.id
        expires = int(expires_at.timestamp())
        signature = self._sign(key, file_id, expires)
        return f"{self.base_url}{PREFIX}/{file_id}/{expires}/{signature}", expires_at

    async def as_links(self, replies: list[Reply]) -> list[Reply]:
        """The replies with each file (that has its bytes) turned into a line with its link.

        Call it inside the person's locale: the line is in their language.
        """
        out = []
        for reply in replies:
            file = reply.file
            if file is None or not file.content:
                out.append(reply)
                continue
            try:
                url, expires_at = await self.link(file)
            except SQLAlchemyError:
                # The chat still says which file there was (the channel's notice).
                log.exception("file %r could not be kept for a link", file.filename)
                out.append(reply)
                continue
            until = format_date(expires_at.astimezone(ZoneInfo(self.tz)).date(), current_locale())
            line = _("📎 {name}: {url}\n(Open the link to download it; it works until {date}.)")
            offer = line.format(name=file.filename, url=url, date=until)
            text = "\n\n".join(part for part in (reply.text.strip(), offer) if part)
            out.append(replace(reply, text=text, file=None))
        return out

    def routes(self) -> list[web.RouteDef]:
        pattern = PREFIX + r"/{id:\d{1,18}}/{expires:\d{1,12}}/{sig:[0-9a-f]{32}}"
        return [web.get(pattern, self.serve)]

    async def serve(self, request: web.Request) -> web.Response:
        """The file, if the link is genuine and has not expired; otherwise a plain 404."""
        file_id = parse_id(request.match_info["id"])
        expires = int(request.match_info["expires"])
        now = self._now()
        if file_id is None or expires < now.timestamp():
            raise web.HTTPNotFound(text=_("This link has expired. Please ask the bot again."))
        async with self.sessionmaker() as session, session.begin():
            key = await self._signing_key(session)
            expected = self._sign(key, file_id, expires)
            if not hmac.compare_digest(expected, request.match_info["sig"]):
                raise web.HTTPNotFound()
            row = await shared_file(session, file_id, now)
            if row is None:
                raise web.HTTPNotFound(text=_("This link has expired. Please ask the bot again."))
            name, mime, content = row.name, row.mime, row.content
        return web.Response(
            body=content,
            content_type=mime or "application/octet-stream",
            headers={
                "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
                "Cache-Control": "private, no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
