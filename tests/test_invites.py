"""Invite codes: safe in a Telegram deep link, expiring, limited, revocable."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.importers import import_units, read_csv
from storage.invites import (
    InviteError,
    create_invite,
    find_valid_invite,
    invite_status,
    list_invites,
    revoke_invite,
)
from storage.models import AuditEntry, Invite, Unit

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2027, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture
async def units(sessionmaker: Sessions) -> dict[str, int]:
    """LĐLĐ tỉnh Bắc Kạn › Công đoàn KCN › CĐCS Công ty May, and a second branch."""
    _header, rows = read_csv(
        "code,name,parent_code\n"
        "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
        "CD-KCN,Công đoàn Khu công nghiệp,LDLD-BK\n"
        "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn,CD-KCN\n"
        "CD-XA,Công đoàn xã Đồng Tâm,LDLD-BK\n".encode()
    )
    async with sessionmaker() as session, session.begin():
        await import_units(session, rows)
        return {u.code: u.id for u in await session.scalars(select(Unit))}


async def test_code_fits_a_telegram_deep_link(
    sessionmaker: Sessions, units: dict[str, int]
) -> None:
    async with sessionmaker() as session, session.begin():
        codes = [
            (await create_invite(session, "member", "CDCS-MAY", now=NOW)).code for _ in range(50)
        ]
    for code in codes:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", code)
        assert len(code) <= 64
        # At least 128 random bits: 6 bits per base64url character.
        assert len(code) * 6 >= 128
    assert len(set(codes)) == len(codes)


async def test_created_invite_is_valid_until_it_expires(
    sessionmaker: Sessions, units: dict[str, int]
) -> None:
    async with sessionmaker() as session, session.begin():
        invite = await create_invite(session, "leader", "CDCS-MAY", max_uses=2, days=7, now=NOW)
        code = invite.code
    assert invite.role == "leader"
    assert invite.unit_id == units["CDCS-MAY"]
    assert invite.expires_at == NOW + timedelta(days=7)
    async with sessionmaker() as session:
        found = await find_valid_invite(session, code, now=NOW + timedelta(days=6))
        assert found is not None and found.unit.code == "CDCS-MAY"
        assert await find_valid_invite(session, code, now=NOW + timedelta(days=7)) is None
        assert await find_valid_invite(session, code + "x", now=NOW) is None
        assert await find_valid_invite(session, "../' OR 1=1 --", now=NOW) is None
        audit = await session.scalar(select(AuditEntry).where(AuditEntry.entity == "invite"))
    assert audit is not None
    assert audit.action == "invite.create"
    assert audit.details["unit_code"] == "CDCS-MAY"
    assert code not in str(audit.details)  # the log cannot be used to join


async def test_used_up_and_revoked_invites_stop_working(
    sessionmaker: Sessions, units: dict[str, int]
) -> None:
    async with sessionmaker() as session, session.begin():
        limited = await create_invite(session, "member", "CDCS-MAY", max_uses=1, now=NOW)
        forever = await create_invite(
            session, "officer", "LDLD-BK", now=NOW, unlimited_uses=True, no_expiry=True
        )
    async with sessionmaker() as session, session.begin():
        used = await session.scalar(select(Invite).where(Invite.id == limited.id))
        assert used is not None
        used.uses = 1
    async with sessionmaker() as session:
        assert await find_valid_invite(session, limited.code, now=NOW) is None
        assert await find_valid_invite(session, forever.code, now=NOW + timedelta(days=3650))
    async with sessionmaker() as session, session.begin():
        revoked = await revoke_invite(session, forever.code, now=NOW)
        assert invite_status(revoked, NOW) == "revoked"
    async with sessionmaker() as session, session.begin():
        # Revoking twice is harmless and keeps the first time.
        again = await revoke_invite(session, forever.code, now=NOW + timedelta(hours=1))
        assert again.revoked_at == NOW
        assert await find_valid_invite(session, forever.code, now=NOW) is None
        actions = list(
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity == "invite")
                .order_by(AuditEntry.id)
            )
        )
    assert actions == ["invite.create", "invite.create", "invite.revoke"]


async def test_leader_and_officer_invites_are_single_use_for_a_week_by_default(
    sessionmaker: Sessions, units: dict[str, int]
) -> None:
    """Issue 12: `invite create --role officer` defaulted to unlimited uses, no expiry."""
    async with sessionmaker() as session, session.begin():
        officer = await create_invite(session, "officer", "LDLD-BK", now=NOW)
        leader = await create_invite(session, "leader", "CDCS-MAY", now=NOW)
        member = await create_invite(session, "member", "CDCS-MAY", now=NOW)
        wide = await create_invite(session, "leader", "CDCS-MAY", max_uses=5, days=30, now=NOW)
    for invite in (officer, leader):
        assert invite.max_uses == 1
        assert invite.expires_at == NOW + timedelta(days=7)
    assert (member.max_uses, member.expires_at) == (None, None)
    assert (wide.max_uses, wide.expires_at) == (5, NOW + timedelta(days=30))
    async with sessionmaker() as session:
        assert await find_valid_invite(session, officer.code, now=NOW + timedelta(days=6))
        assert await find_valid_invite(session, officer.code, now=NOW + timedelta(days=8)) is None


async def test_clear_errors(sessionmaker: Sessions, units: dict[str, int]) -> None:
    async with sessionmaker() as session:
        with pytest.raises(InviteError, match="unknown unit code 'CDCS-XX'"):
            await create_invite(session, "member", "CDCS-XX", now=NOW)
        with pytest.raises(InviteError, match="unknown role 'admin'"):
            await create_invite(session, "admin", "CDCS-MAY", now=NOW)
        with pytest.raises(InviteError, match="at least 1"):
            await create_invite(session, "member", "CDCS-MAY", max_uses=0, now=NOW)
        with pytest.raises(InviteError, match="no invite with code"):
            await revoke_invite(session, "khong-co-ma-nay", now=NOW)


async def test_list_for_a_unit_covers_its_subtree(
    sessionmaker: Sessions, units: dict[str, int]
) -> None:
    async with sessionmaker() as session, session.begin():
        await create_invite(session, "officer", "LDLD-BK", now=NOW)
        await create_invite(session, "leader", "CDCS-MAY", now=NOW + timedelta(minutes=1))
        await create_invite(session, "leader", "CD-XA", now=NOW + timedelta(minutes=2))
    async with sessionmaker() as session:
        everything = await list_invites(session)
        under_kcn = await list_invites(session, "CD-KCN")
        with pytest.raises(InviteError):
            await list_invites(session, "CD-XX")
    assert [i.unit.code for i in everything] == ["CD-XA", "CDCS-MAY", "LDLD-BK"]
    assert [i.unit.code for i in under_kcn] == ["CDCS-MAY"]
