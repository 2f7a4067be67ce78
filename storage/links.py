"""One-time codes that link a second chat account (Zalo, web...) to a person already known.

A code is read off one screen and typed on another, often on a phone keyboard: 8 characters
from an alphabet without look-alikes (no 0/O, 1/I/L), about 39 bits, valid 15 minutes, once.
Only its SHA-256 is stored, so a copy of the database does not hand out live codes; guessing
one in its lifetime would take hundreds of billions of tries.

No commits here: the caller owns the transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import LinkCode

ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
LIFETIME = timedelta(minutes=15)
# A personal code a leader hands out (printed or in chat) to a member who has not used the
# bot yet: the same kind of code, spent the same way, but it has to last until they try.
PERSONAL_LIFETIME = timedelta(days=30)


def new_link_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_link_code(text: str) -> str | None:
    """What a person typed, as a code: case, spaces and dashes ignored; None if not one.

    The look-alikes are not in the alphabet at all, so a mistyped O/0 or I/1/L is refused
    rather than quietly matching some other code.
    """
    code = "".join(ch for ch in text.upper() if ch not in " -._")
    if len(code) != CODE_LENGTH or any(ch not in ALPHABET for ch in code):
        return None
    return code


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode("ascii")).hexdigest()


async def issue_link_code(
    session: AsyncSession,
    person_id: int,
    channel: str,
    now: datetime,
    lifetime: timedelta = LIFETIME,
) -> tuple[str, datetime]:
    """A fresh code for ``person_id``; earlier unused codes of that person stop working.

    ``channel`` is where it was shown ("telegram", "web"...), or "leader" / "cli" for a
    personal code handed out by a leader or an operator.
    """
    await session.execute(
        update(LinkCode)
        .where(LinkCode.person_id == person_id, LinkCode.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    code = new_link_code()
    expires = now + lifetime
    session.add(
        LinkCode(
            code_hash=_digest(code),
            person_id=person_id,
            issued_via=channel,
            expires_at=expires,
            created_at=now,
        )
    )
    await session.flush()
    return code, expires


async def usable_link_code(session: AsyncSession, code: str, now: datetime) -> LinkCode | None:
    """The live code with this text (normalised), or None when unknown, used or expired."""
    row = await session.scalar(select(LinkCode).where(LinkCode.code_hash == _digest(code)))
    if row is None or row.used_at is not None or row.expires_at <= now:
        return None
    return row


async def use_link_code(
    session: AsyncSession, link: LinkCode, identity_id: int, now: datetime
) -> bool:
    """Spend a code; False when it was spent in the meantime.

    One conditional UPDATE, so the same code typed on two phones at once links only one.
    """
    spent = await session.execute(
        update(LinkCode)
        .where(LinkCode.id == link.id, LinkCode.used_at.is_(None))
        .values(used_at=now, used_by_identity_id=identity_id)
        .execution_options(synchronize_session=False)
    )
    return bool(spent.rowcount)  # type: ignore[attr-defined]
