"""The flat CSV export streams (a batch of units at a time) and writes exactly the file the
whole-list export wrote: same rows, same order, same list states, same quoting."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.campaigns import load_campaign
from storage.counts import (
    LIST_STATE_LABELS,
    REGISTRATION_STATE_LABELS,
    list_states,
    registration_state,
)
from storage.exporters import (
    LISTED_STATUSES,
    PATH_SEPARATOR,
    SOURCE_LABELS,
    RegistrationRow,
    _local_date,
    _zone,
    stream_csv,
    stream_registration_rows,
    write_csv,
)
from storage.importers import import_members, import_units, read_csv
from storage.models import Campaign, Person, Registration, Title, Unit, UnitSubmission

Sessions = async_sessionmaker[AsyncSession]

# Two teams with the same name under one union (their rows sort together), a union above
# any grassroots one with registrations of its own, names that need quoting and guarding.
ORG = (
    "code,name,parent_code,kind\n"
    "LDLD,LĐLĐ tỉnh Bắc Kạn,,upper\n"
    "CD-KCN,Công đoàn Khu công nghiệp,LDLD,upper\n"
    "CDCS-MAY,Công đoàn cơ sở Công ty May,CD-KCN,grassroots\n"
    "TO-1A,Tổ Cắt,CDCS-MAY,team\n"
    "TO-1B,Tổ Cắt,CDCS-MAY,team\n"
    'CDCS-DET,"Công đoàn Dệt; Nhuộm",CD-KCN,grassroots\n'
    "CDCS-TRUONG,Công đoàn Trường Đồng Tâm,LDLD,grassroots\n"
)
PEOPLE = [
    ("CDCS-MAY", "Nguyễn Thị Hoa", "0912345678", "Công nhân"),
    ("CDCS-MAY", "an Văn Bình", "0987654321", ""),
    ("TO-1A", "Đỗ Thu Trang", "0903000001", "Tổ trưởng"),
    ("TO-1B", "Bùi Văn Lâm", "0903000002", ""),
    ("TO-1B", "Vũ Thị Mai", "0903000003", "=1+1"),
    ("CDCS-DET", "Phạm Hữu Đức", "0903000004", "Kỹ sư, trưởng ca"),
    ("CDCS-TRUONG", "Lê Minh Châu", "0903111222", "Giáo viên"),
    ("CD-KCN", "Hoàng Văn Nam", "0903000005", "Chủ tịch"),
]


@pytest.fixture
async def organisation(sessionmaker: Sessions) -> None:
    roster = "unit_code,full_name,phone,position\n" + "".join(
        f'{u},"{n}",{p},"{pos}"\n' for u, n, p, pos in PEOPLE
    )
    async with sessionmaker() as session, session.begin():
        await import_units(session, read_csv(ORG.encode())[1])
        await import_members(session, read_csv(roster.encode())[1])
        campaign = await load_campaign(
            session,
            {
                "code": "TD2027",
                "name": "Phong trào thi đua năm 2027",
                "issuer": "LDLD",
                "year": 2027,
                "registration_deadline": date(2027, 1, 25),
                "titles": ["LDTT", "CSTDCS", "TTLDXS"],
            },
        )
        units = {u.code: u for u in await session.scalars(select(Unit))}
        people = list(await session.scalars(select(Person).order_by(Person.id)))
        statuses = ["submitted", "approved", "withdrawn", "draft"]
        number = 0
        start = datetime(2027, 1, 10, 16, 30, tzinfo=UTC)
        for round_ in range(2):
            for index, person in enumerate(people):
                number += 1
                at = start + timedelta(hours=7 * number)
                session.add(
                    Registration(
                        receipt_no=f"TD2027-{number:04d}",
                        campaign_id=campaign.id,
                        title_code=["LDTT", "CSTDCS"][(index + round_) % 2],
                        is_collective=False,
                        person_id=person.id,
                        unit_id=person.unit_id,
                        status=statuses[(index + round_) % len(statuses)],
                        source=["chat", "leader", "import"][index % 3],
                        created_at=at,
                        updated_at=at + timedelta(days=round_),
                    )
                )
        for code, name in [("TO-1A", ""), ("TO-1B", "Tổ Cắt, ca 2"), ("CDCS-DET", "")]:
            number += 1
            session.add(
                Registration(
                    receipt_no=f"TD2027-{number:04d}",
                    campaign_id=campaign.id,
                    title_code="TTLDXS",
                    is_collective=True,
                    collective_name=name,
                    unit_id=units[code].id,
                    status="submitted",
                    source="leader",
                    created_at=start,
                    updated_at=start,
                )
            )
        # Each list state shows: the garment union's list returned (its teams go with it),
        # the dyeing union's approved, the school's pending, the upper union's own not sent.
        for code, state in [("CDCS-MAY", "returned"), ("CDCS-DET", "approved")]:
            session.add(
                UnitSubmission(campaign_id=campaign.id, unit_id=units[code].id, status=state)
            )
        session.add(
            UnitSubmission(
                campaign_id=campaign.id, unit_id=units["CDCS-TRUONG"].id, status="pending"
            )
        )


async def whole_list_rows(
    session: AsyncSession, unit_code: str | None, statuses: Any = LISTED_STATUSES
) -> list[RegistrationRow]:
    """The export as it was made before it streamed: every registration loaded as an
    entity, the whole list sorted in memory (kept here as the reference)."""
    campaign = await session.scalar(select(Campaign).where(Campaign.code == "TD2027"))
    assert campaign is not None
    query = (
        select(Registration)
        .join(Registration.unit)
        .where(
            Registration.campaign_id == campaign.id,
            Registration.status.in_([str(s) for s in statuses]),
        )
        .options(selectinload(Registration.person), selectinload(Registration.unit))
    )
    if unit_code is not None:
        root = await session.scalar(select(Unit).where(Unit.code == unit_code))
        assert root is not None
        query = query.where(Unit.path.startswith(root.path, autoescape=True))
    registrations = list(await session.scalars(query))
    names = {u.id: u.name for u in await session.scalars(select(Unit))}
    titles = {t.code: t.name for t in await session.scalars(select(Title))}
    lists = await list_states(session, campaign.id, {reg.unit for reg in registrations})
    zone = _zone("Asia/Ho_Chi_Minh")
    keyed = []
    for reg in registrations:
        path_names = [names[int(p)] for p in reg.unit.path.strip("/").split("/") if p]
        person = None if reg.is_collective else reg.person
        row = RegistrationRow(
            receipt_no=reg.receipt_no,
            name=person.full_name if person else (reg.collective_name or reg.unit.name),
            phone=person.phone if person else None,
            position=person.position if person else None,
            unit_name=reg.unit.name,
            unit_path=PATH_SEPARATOR.join(path_names),
            title_code=reg.title_code,
            title_name=titles.get(reg.title_code, reg.title_code),
            kind="Tập thể" if person is None else "Cá nhân",
            status=REGISTRATION_STATE_LABELS[registration_state(reg.status)],
            list_status=LIST_STATE_LABELS[lists[reg.unit.id]],
            source=SOURCE_LABELS.get(reg.source, reg.source),
            created=_local_date(reg.created_at, zone),
            updated=_local_date(reg.updated_at, zone),
        )
        key = (
            [n.casefold() for n in path_names],
            person is not None,
            row.name.casefold(),
            row.title_code,
            row.receipt_no,
        )
        keyed.append((tuple(key), row))
    keyed.sort(key=lambda pair: pair[0])
    return [row for _key, row in keyed]


@pytest.mark.parametrize("batch_size", [1, 3, 2000])
@pytest.mark.parametrize("unit_code", [None, "CD-KCN", "CDCS-MAY"])
async def test_streamed_csv_is_the_whole_list_csv(
    sessionmaker: Sessions, organisation: None, batch_size: int, unit_code: str | None
) -> None:
    async with sessionmaker() as session:
        expected = io.StringIO()
        write_csv(await whole_list_rows(session, unit_code), expected)
        streamed = io.StringIO()
        totals: list[int] = []
        advanced: list[int] = []
        written = await stream_csv(
            stream_registration_rows(
                session, "TD2027", unit_code, batch_size=batch_size, on_total=totals.append
            ),
            streamed,
            advanced.append,
        )
    lines = expected.getvalue().split("\r\n")
    assert streamed.getvalue() == expected.getvalue()
    # Header, rows, and the empty string after the last CRLF; drafts and withdrawn are out.
    assert written == len(lines) - 2 > 3
    assert totals == [written] and sum(advanced) == written
    # The collective rows (always listed) carry a returned and an approved list, and a
    # unit name that must be quoted.
    text = streamed.getvalue()
    if unit_code is None:
        assert {"Trả lại (bổ sung)", "Đã duyệt"} <= set(text.split(","))
    if unit_code != "CDCS-MAY":
        assert '"Công đoàn Dệt; Nhuộm"' in text


async def test_every_status_streams_like_the_whole_list(
    sessionmaker: Sessions, organisation: None
) -> None:
    every = ["submitted", "approved", "withdrawn", "draft"]
    async with sessionmaker() as session:
        expected = io.StringIO()
        write_csv(await whole_list_rows(session, None, every), expected)
        streamed = io.StringIO()
        await stream_csv(
            stream_registration_rows(session, "TD2027", statuses=every, batch_size=2), streamed
        )
    assert streamed.getvalue() == expected.getvalue()
