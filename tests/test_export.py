"""Exporting a campaign's registrations for officers, as CSV and as XLSX."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.campaigns import load_campaign
from storage.exporters import (
    HEADERS,
    ExportError,
    RegistrationRow,
    registration_rows,
    write_csv,
    write_xlsx,
)
from storage.importers import import_members, import_units, read_csv
from storage.models import Campaign, Person, Registration, Unit

Sessions = async_sessionmaker[AsyncSession]

ORG = (
    "code,name,parent_code\n"
    "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
    "CD-KCN,Công đoàn Khu công nghiệp,LDLD-BK\n"
    "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn,CD-KCN\n"
    "CD-XA,Công đoàn xã Đồng Tâm,LDLD-BK\n"
    "CDCS-TRUONG,Công đoàn Trường Tiểu học Đồng Tâm,CD-XA\n"
)
ROSTER = (
    "unit_code,full_name,phone,position\n"
    "CDCS-MAY,Nguyễn Thị Hoa,0912345678,Công nhân tổ Cắt\n"
    "CDCS-MAY,Trần Văn Bình,0987654321,\n"
    "CDCS-TRUONG,Lê Minh Châu,0903111222,Giáo viên\n"
)
MAY_PATH = "LĐLĐ tỉnh Bắc Kạn › Công đoàn Khu công nghiệp › Công đoàn cơ sở Công ty May Bắc Kạn"


@pytest.fixture
async def registered(sessionmaker: Sessions) -> None:
    """Three people and a collective registered for TD2027; one withdrew."""
    async with sessionmaker() as session, session.begin():
        await import_units(session, read_csv(ORG.encode())[1])
        await import_members(session, read_csv(ROSTER.encode())[1])
        campaign = await load_campaign(
            session,
            {
                "code": "TD2027",
                "name": "Phong trào thi đua năm 2027",
                "issuer": "LDLD-BK",
                "year": 2027,
                "registration_deadline": date(2027, 1, 25),
                "titles": ["LDTT", "CSTDCS", "TTLDXS"],
            },
        )
        units = {u.code: u for u in await session.scalars(select(Unit))}
        people = {p.full_name: p for p in await session.scalars(select(Person))}

        def add(
            receipt: str,
            title: str,
            unit: str,
            person: str | None,
            status: str = "submitted",
            at: datetime = datetime(2027, 1, 10, 3, 0, tzinfo=UTC),
        ) -> None:
            session.add(
                Registration(
                    receipt_no=receipt,
                    campaign_id=campaign.id,
                    title_code=title,
                    is_collective=person is None,
                    person_id=people[person].id if person else None,
                    unit_id=units[unit].id,
                    status=status,
                    source="chat" if person else "leader",
                    created_at=at,
                    updated_at=at,
                )
            )

        add("TD2027-0001", "LDTT", "CDCS-MAY", "Trần Văn Bình")
        # 20:00 UTC on the 10th is already the 11th in Vietnam.
        add(
            "TD2027-0002",
            "CSTDCS",
            "CDCS-MAY",
            "Nguyễn Thị Hoa",
            status="approved",
            at=datetime(2027, 1, 10, 20, 0, tzinfo=UTC),
        )
        add("TD2027-0003", "TTLDXS", "CDCS-MAY", None)
        add("TD2027-0004", "LDTT", "CDCS-TRUONG", "Lê Minh Châu")
        add("TD2027-0005", "LDTT", "CDCS-MAY", "Nguyễn Thị Hoa", status="withdrawn")


async def rows_for(sessions: Sessions, unit: str | None = None) -> list[RegistrationRow]:
    async with sessions() as session:
        return await registration_rows(session, "TD2027", unit)


async def test_rows_show_what_an_officer_needs(sessionmaker: Sessions, registered: None) -> None:
    rows = await rows_for(sessionmaker)
    assert [r.receipt_no for r in rows] == [
        # Ordered by place in the tree, the unit's own (collective) title first.
        "TD2027-0003",
        "TD2027-0002",
        "TD2027-0001",
        "TD2027-0004",
    ]  # the withdrawn one is not listed
    collective, hoa, binh, chau = rows
    assert hoa == RegistrationRow(
        receipt_no="TD2027-0002",
        name="Nguyễn Thị Hoa",
        phone="0912345678",
        position="Công nhân tổ Cắt",
        unit_name="Công đoàn cơ sở Công ty May Bắc Kạn",
        unit_path=MAY_PATH,
        title_code="CSTDCS",
        title_name="Chiến sĩ thi đua cơ sở",
        kind="Cá nhân",
        # Its own state, and its unit's list (nobody sent one): two columns side by side.
        status="Đã công nhận",  # approved: the title was recognised
        list_status="Chưa gửi",
        source="Tự đăng ký qua chatbot",
        created=date(2027, 1, 11),
        updated=date(2027, 1, 11),
    )
    assert collective.name == "Công đoàn cơ sở Công ty May Bắc Kạn"
    assert collective.kind == "Tập thể"
    assert collective.phone is None and collective.position is None
    assert collective.title_name == "Tập thể lao động xuất sắc"
    assert binh.status == "Đã đăng ký"
    assert binh.created == date(2027, 1, 10)
    assert chau.unit_path == (
        "LĐLĐ tỉnh Bắc Kạn › Công đoàn xã Đồng Tâm › Công đoàn Trường Tiểu học Đồng Tâm"
    )


async def test_a_unit_sees_only_its_subtree(sessionmaker: Sessions, registered: None) -> None:
    kcn = await rows_for(sessionmaker, "CD-KCN")
    assert {r.receipt_no for r in kcn} == {"TD2027-0001", "TD2027-0002", "TD2027-0003"}
    xa = await rows_for(sessionmaker, "CD-XA")
    assert [r.name for r in xa] == ["Lê Minh Châu"]
    whole = await rows_for(sessionmaker, "LDLD-BK")
    assert len(whole) == 4


async def test_unknown_campaign_or_unit(sessionmaker: Sessions, registered: None) -> None:
    async with sessionmaker() as session:
        with pytest.raises(ExportError, match="unknown campaign 'TD2099'"):
            await registration_rows(session, "TD2099")
        with pytest.raises(ExportError, match="unknown unit code 'CD-XX'"):
            await registration_rows(session, "TD2027", "CD-XX")


async def test_a_campaign_without_registrations_exports_a_header(
    sessionmaker: Sessions, registered: None
) -> None:
    async with sessionmaker() as session, session.begin():
        campaign = await session.scalar(select(Campaign))
        assert campaign is not None
        await load_campaign(
            session,
            {
                "code": "TD2028",
                "name": "Phong trào thi đua năm 2028",
                "issuer": "LDLD-BK",
                "year": 2028,
                "registration_deadline": "25/01/2028",
                "titles": ["LDTT"],
            },
        )
    async with sessionmaker() as session:
        rows = await registration_rows(session, "TD2028")
    assert rows == []
    out = io.StringIO()
    write_csv(rows, out)
    assert out.getvalue().splitlines() == [",".join(HEADERS)]


async def test_csv_has_a_header_and_vietnamese_dates(
    sessionmaker: Sessions, registered: None
) -> None:
    out = io.StringIO()
    write_csv(await rows_for(sessionmaker, "CDCS-MAY"), out)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == list(HEADERS)
    assert table[2] == [
        "TD2027-0002",
        "Nguyễn Thị Hoa",
        "0912345678",
        "Công nhân tổ Cắt",
        "Công đoàn cơ sở Công ty May Bắc Kạn",
        MAY_PATH,
        "CSTDCS",
        "Chiến sĩ thi đua cơ sở",
        "Cá nhân",
        "Đã công nhận",
        "Chưa gửi",
        "Tự đăng ký qua chatbot",
        "11/01/2027",
        "11/01/2027",
    ]
    assert table[1][2] == ""  # a collective has no phone


async def test_xlsx_reads_back_as_a_proper_spreadsheet(
    sessionmaker: Sessions, registered: None, tmp_path: Path
) -> None:
    path = tmp_path / "dang-ky.xlsx"
    write_xlsx(await rows_for(sessionmaker), path)

    sheet = load_workbook(path).active
    assert sheet is not None
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == list(HEADERS)
    assert [v[0] for v in values[1:]] == [
        "TD2027-0003",
        "TD2027-0002",
        "TD2027-0001",
        "TD2027-0004",
    ]
    hoa = values[2]
    assert hoa[1:3] == ["Nguyễn Thị Hoa", "0912345678"]  # the leading zero survives
    assert hoa[5] == MAY_PATH
    # Real dates, shown the Vietnamese way.
    assert hoa[12] == datetime(2027, 1, 11)
    assert sheet.cell(row=3, column=13).number_format == "DD/MM/YYYY"
    assert sheet.cell(row=1, column=1).font.bold
    assert sheet.freeze_panes == "A2"
    # Wide enough for the unit path, not for the whole header text of a short column.
    assert (sheet.column_dimensions["F"].width or 0) >= len(MAY_PATH)
    assert (sheet.column_dimensions["A"].width or 0) < 30
