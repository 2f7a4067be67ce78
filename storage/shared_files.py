"""Files kept for a while so a chat that cannot carry files can offer a link to them.

No commits here: the caller owns the transaction.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from storage.channel_state import read_secret
from storage.models import ChannelSecret, SharedFile

SIGNING_KEY_NAME = "file_links"

# A link stays in the person's chat: the row outlives the link a little, then it is dropped.
KEEP_AFTER_EXPIRY = timedelta(days=1)


async def share_file(
    session: AsyncSession, name: str, mime: str, content: bytes, expires_at: datetime
) -> SharedFile:
    row = SharedFile(name=name[:200], mime=mime[:100], content=content, expires_at=expires_at)
    session.add(row)
    await session.flush()
    return row


async def shared_file(session: AsyncSession, file_id: int, now: datetime) -> SharedFile | None:
    """The file behind a link, if it has not expired."""
    return await session.scalar(
        select(SharedFile)
        .where(SharedFile.id == file_id, SharedFile.expires_at > now)
        .options(undefer(SharedFile.content))
    )


async def forget_expired_files(session: AsyncSession, now: datetime) -> int:
    result = await session.execute(
        delete(SharedFile).where(SharedFile.expires_at < now - KEEP_AFTER_EXPIRY)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def link_signing_key(session: AsyncSession, now: datetime) -> bytes:
    """The key links are signed with: made once, kept with the channels' secrets, so every
    process (and a restarted one) accepts the links the others gave out."""
    values = {"name": SIGNING_KEY_NAME, "value": {"key": secrets.token_hex(32)}, "updated_at": now}
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    await session.execute(insert(ChannelSecret).values(**values).on_conflict_do_nothing())
    stored = await read_secret(session, SIGNING_KEY_NAME)
    assert stored is not None
    return bytes.fromhex(str(stored["key"]))
