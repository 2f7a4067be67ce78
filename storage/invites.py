"""Invite codes: how a leader or officer is let into the bot with a role on a unit.

A code travels as a Telegram deep-link payload (``https://t.me/<bot>?start=<code>``), which
allows at most 64 characters from ``[A-Za-z0-9_-]``; a code is also a bearer secret, so it
carries 192 random bits. Redeeming a code (bumping ``uses``, granting the role) belongs to
the conversation; this module creates, finds, lists and revokes.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import AuditEntry, Invite, Role, Unit
from storage.types import utcnow

CODE_BYTES = 24  # 192 bits; token_urlsafe makes 32 characters of [A-Za-z0-9_-]
CODE_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# An invitation to lead a unit or to be an officer hands out a role over people's data: by
# default it is for one person (one use) and soon (a week), unless widened on purpose.
PRIVILEGED_ROLES = (Role.LEADER, Role.OFFICER)
PRIVILEGED_USES = 1
PRIVILEGED_DAYS = 7


class InviteError(ValueError):
    """A request about invites that cannot be met; the message is meant for the user."""


def new_invite_code() -> str:
    return secrets.token_urlsafe(CODE_BYTES)


def _check_now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now


async def create_invite(
    session: AsyncSession,
    role: str | Role,
    unit_code: str,
    max_uses: int | None = None,
    days: int | None = None,
    now: datetime | None = None,
    *,
    via: str = "cli",
    actor_id: int | None = None,
    unlimited_uses: bool = False,
    no_expiry: bool = False,
) -> Invite:
    """A new invite granting ``role`` on the unit ``unit_code``.

    ``max_uses`` None means unlimited and ``days`` None never expires for a member invite;
    a leader or officer invite defaults to one use within 7 days, widened only by
    ``unlimited_uses`` / ``no_expiry`` (or a number). Raises :class:`InviteError` for an
    unknown role or unit or a non-positive limit.
    """
    now = _check_now(now)
    try:
        role = Role(role)
    except ValueError:
        allowed = ", ".join(r.value for r in Role)
        raise InviteError(f"unknown role {role!r}; use one of: {allowed}") from None
    if role in PRIVILEGED_ROLES:
        if max_uses is None and not unlimited_uses:
            max_uses = PRIVILEGED_USES
        if days is None and not no_expiry:
            days = PRIVILEGED_DAYS
    if max_uses is not None and max_uses < 1:
        raise InviteError("the number of uses must be at least 1")
    if days is not None and days < 1:
        raise InviteError("the number of days must be at least 1")
    unit = await session.scalar(select(Unit).where(Unit.code == unit_code))
    if unit is None:
        raise InviteError(f"unknown unit code {unit_code!r}")
    invite = Invite(
        code=new_invite_code(),
        role=role.value,
        unit_id=unit.id,
        max_uses=max_uses,
        uses=0,
        expires_at=now + timedelta(days=days) if days is not None else None,
        created_at=now,
    )
    invite.unit = unit
    session.add(invite)
    await session.flush()
    # The code itself stays out of the log: whoever reads the log must not be able to join.
    session.add(
        AuditEntry(
            via=via,
            actor_id=actor_id,
            action="invite.create",
            entity="invite",
            entity_id=invite.id,
            details={
                "role": role.value,
                "unit_code": unit.code,
                "max_uses": max_uses,
                "expires_at": invite.expires_at.isoformat() if invite.expires_at else None,
            },
        )
    )
    return invite


async def _by_code(session: AsyncSession, code: str) -> Invite | None:
    if not CODE_RE.fullmatch(code):
        return None  # not even shaped like a code: no need to ask the database
    return await session.scalar(
        select(Invite).where(Invite.code == code).options(selectinload(Invite.unit))
    )


async def revoke_invite(
    session: AsyncSession,
    code: str,
    now: datetime | None = None,
    *,
    via: str = "cli",
    actor_id: int | None = None,
) -> Invite:
    """Stop ``code`` from working; revoking twice keeps the first revocation time."""
    now = _check_now(now)
    invite = await _by_code(session, code)
    if invite is None:
        raise InviteError(f"no invite with code {code!r}")
    if invite.revoked_at is None:
        invite.revoked_at = now
        session.add(
            AuditEntry(
                via=via,
                actor_id=actor_id,
                action="invite.revoke",
                entity="invite",
                entity_id=invite.id,
                details={"role": invite.role, "unit_code": invite.unit.code},
            )
        )
        await session.flush()
    return invite


def invite_status(invite: Invite, now: datetime | None = None) -> str:
    """ "active", "revoked", "expired" or "used up"."""
    now = _check_now(now)
    if invite.revoked_at is not None:
        return "revoked"
    if invite.expires_at is not None and invite.expires_at <= now:
        return "expired"
    if invite.max_uses is not None and invite.uses >= invite.max_uses:
        return "used up"
    return "active"


async def find_valid_invite(
    session: AsyncSession, code: str, now: datetime | None = None
) -> Invite | None:
    """The invite for ``code`` if it can still be used (not revoked, expired or used up)."""
    invite = await _by_code(session, code.strip())
    if invite is None or invite_status(invite, now) != "active":
        return None
    return invite


async def list_invites(session: AsyncSession, unit_code: str | None = None) -> list[Invite]:
    """Invites, newest first; with ``unit_code``, those of that unit and every unit below."""
    query = select(Invite).join(Invite.unit).options(selectinload(Invite.unit))
    if unit_code is not None:
        unit = await session.scalar(select(Unit).where(Unit.code == unit_code))
        if unit is None:
            raise InviteError(f"unknown unit code {unit_code!r}")
        query = query.where(Unit.path.startswith(unit.path, autoescape=True))
    return list(await session.scalars(query.order_by(Invite.created_at.desc(), Invite.id.desc())))
