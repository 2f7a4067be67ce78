"""Importing the lists units still send in Excel: checked like the chat, all rows or none."""

from __future__ import annotations

import asyncio
import csv
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.cli import main
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage.counts import registration_state, unit_progress
from storage.db import make_engine, make_sessionmaker
from storage.exporters import registration_rows, write_csv
from storage.importers import BATCH, MAX_LISTED, ImportFailed
from storage.models import (
    AuditEntry,
    Campaign,
    Initiative,
    Person,
    Registration,
    SubmissionStatus,
    Unit,
    UnitRole,
    UnitSubmission,
    Work,
)
from storage.registration_forms import build_form, write_form_xlsx, write_sheet_csv
from storage.registration_import import (
    CampaignChoiceError,
    RegistrationImportSummary,
    choose_campaign,
    import_registrations_file,
)
from storage.seed import prepare_database
from tests.chat import Chat
from tests.conftest import PG_ADMIN_URL, _pg_dsn
from tests.factories import add_unit, make_org
from tests.registration_scene import TITLES, Scene, make_scene

Sessions = async_sessionmaker[AsyncSession]

JAN_10 = date(2027, 1, 10)
LISTED = ("submitted", "approved", "returned")


@pytest.fixture
async def scene(sessionmaker: Sessions) -> Scene:
    return await make_scene(sessionmaker)


@pytest.fixture
async def fresh(backend: str, tmp_path: Path) -> AsyncIterator[Sessions]:
    """A second, empty database on the same back-end: where an exported list is taken to."""
    name = f"thidua_t_{uuid.uuid4().hex[:12]}"
    if backend == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    else:
        admin = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL))
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        url = f"{PG_ADMIN_URL.rpartition('/')[0]}/{name}"
    engine = make_engine(url)
    try:
        await prepare_database(engine)
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
        if backend != "sqlite":
            admin = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL))
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


async def run_import(
    sessions: Sessions,
    path: Path,
    kind: str,
    *,
    today: date = JAN_10,
    allow_late: bool = False,
    lists: str | None = None,
) -> RegistrationImportSummary:
    async with sessions() as session, session.begin():
        campaign = await choose_campaign(session, "TD2027", today)
        return await import_registrations_file(
            session, path, kind, campaign, today=today, allow_late=allow_late, lists=lists
        )


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def count(sessions: Sessions, model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def counts(sessions: Sessions) -> dict[str, int]:
    found = {
        m.__name__: await count(sessions, m)
        for m in (Registration, Initiative, Work, Person, UnitRole, AuditEntry)
    }
    async with sessions() as session:
        found["receipt_seq"] = int(await session.scalar(select(Campaign.receipt_seq)) or 0)
    return found


async def snapshot(sessions: Sessions) -> dict[str, list[Any]]:
    """What an officer's list says, independent of ids and receipt numbers."""
    async with sessions() as session:
        units = {u.id: u.code for u in await session.scalars(select(Unit))}
        people = {p.id: p for p in await session.scalars(select(Person))}
        registrations = [
            (
                people[r.person_id].full_name if r.person_id else None,
                people[r.person_id].position if r.person_id else None,
                units[r.unit_id],
                r.title_code,
                r.is_collective,
                # The file carries the row's own state (a returned one is registered;
                # returning is its list's business, storage.counts).
                registration_state(r.status),
            )
            for r in await session.scalars(
                select(Registration).where(Registration.status.in_(LISTED))
            )
        ]
        initiatives = [
            (
                people[i.person_id].full_name if i.person_id else None,
                units[i.unit_id],
                i.name,
                i.field,
                i.applied_on,
                i.benefit,
                tuple(a.name for a in i.authors),
                tuple(a.person_id is not None for a in i.authors),
                registration_state(i.status),
            )
            for i in await session.scalars(
                select(Initiative)
                .where(Initiative.status.in_(LISTED))
                .options(selectinload(Initiative.authors))
            )
        ]
        works = [
            (
                units[w.unit_id],
                w.name,
                w.occasion,
                w.value,
                w.starts_on,
                w.ends_on,
                w.plaque_requested,
                registration_state(w.status),
            )
            for w in await session.scalars(select(Work).where(Work.status.in_(LISTED)))
        ]
    # repr: None and text side by side (a collective has no person) still sort.
    return {
        "registrations": sorted(registrations, key=repr),
        "initiatives": sorted(initiatives, key=repr),
        "works": sorted(works, key=repr),
    }


# --- the round trip --------------------------------------------------------------------------


async def test_an_exported_workbook_imports_into_a_fresh_database(
    sessionmaker: Sessions, scene: Scene, fresh: Sessions, tmp_path: Path
) -> None:
    path = tmp_path / "dang-ky.xlsx"
    async with sessionmaker() as session:
        write_form_xlsx(await build_form(session, "TD2027"), path)
    # The other database knows the units, the campaign and one member (Nguyễn Thị Hoa).
    await make_org(fresh, titles=TITLES)

    titles = await run_import(fresh, path, "titles")
    assert (titles.individuals, titles.collectives) == (4, 3)
    assert titles.new_people == ["Trần Văn Bình (CDCS-MAY)"]
    assert titles.receipts[0] == "TD2027-000001" and titles.receipts[-1] == "TD2027-000007"
    ideas = await run_import(fresh, path, "initiatives")
    assert ideas.initiatives == 2 and ideas.new_people == ["Lê Minh Châu (CDCS-THPT)"]
    works = await run_import(fresh, path, "works")
    assert works.works == 2 and works.receipts == ["TD2027-000010", "TD2027-000011"]

    assert await snapshot(fresh) == await snapshot(sessionmaker)
    async with fresh() as session:
        sources = set(await session.scalars(select(Registration.source)))
        sources |= set(await session.scalars(select(Initiative.source)))
        sources |= set(await session.scalars(select(Work.source)))
        assert sources == {"import"}
        audit = list(await session.scalars(select(AuditEntry).where(AuditEntry.via == "import")))
    actions = sorted(a.action for a in audit)
    assert actions.count("registration.import") == 7
    assert actions.count("initiative.import") == 2 and actions.count("work.import") == 2
    assert actions.count("person.import") == 2
    first = next(a for a in audit if a.action == "registration.import")
    assert first.details["imported"] is True and first.details["file"] == "dang-ky.xlsx"
    assert first.details["file_receipt_no"].startswith("TD2027-")

    # The same file again: every row is already there, and nothing changes.
    before = await counts(fresh)
    with pytest.raises(ImportFailed) as failed:
        await run_import(fresh, path, "works")
    assert failed.value.problems == [
        "row 9: the work 'Nhà văn hóa công nhân' of Công đoàn cơ sở Công ty May Bắc Kạn is "
        "already registered (receipt TD2027-000010)",
        "row 10: the work 'Sân chơi cho con công nhân' of Công đoàn Trường THPT Chợ Đồn is "
        "already registered (receipt TD2027-000011)",
    ]
    with pytest.raises(ImportFailed) as failed:
        await run_import(fresh, path, "titles")
    assert failed.value.problems[0] == (
        # One row per person on the form: all of Hoa's titles are on row 9.
        "row 9 of sheet Cá nhân: Nguyễn Thị Hoa – Chiến sĩ thi đua cơ sở is already registered "
        "(receipt TD2027-000001)"
    )
    assert failed.value.problems[-1].startswith("row 10 of sheet Tập thể: Công đoàn Trường THPT")
    assert await counts(fresh) == before


async def test_the_csv_exports_import_too(
    sessionmaker: Sessions, scene: Scene, fresh: Sessions, tmp_path: Path
) -> None:
    async with sessionmaker() as session:
        rows = await registration_rows(session, "TD2027")
    path = tmp_path / "dang-ky.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as stream:
        write_csv(rows, stream)
    await make_org(fresh, titles=TITLES)
    summary = await run_import(fresh, path, "titles")
    assert (summary.individuals, summary.collectives) == (4, 3)
    # The flat file has the phone: Bình is added with it.
    async with fresh() as session:
        binh = await session.scalar(select(Person).where(Person.full_name == "Trần Văn Bình"))
    assert binh is not None and binh.phone == "0987654321"
    # The CSV of works (the form's columns, plain numbers) comes back the same too.
    async with sessionmaker() as session:
        works = await build_form(session, "TD2027", None, "works")
    works_csv = tmp_path / "cong-trinh.csv"
    with works_csv.open("w", encoding="utf-8-sig", newline="") as stream:
        write_sheet_csv(works.sheets[0], stream)
    assert (await run_import(fresh, works_csv, "works")).works == 2
    here, there = await snapshot(fresh), await snapshot(sessionmaker)
    assert here["registrations"] == there["registrations"]
    assert here["works"] == there["works"]


# --- bad files -------------------------------------------------------------------------------


async def test_a_bad_titles_file_names_every_row_and_writes_nothing(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "bad.csv",
        "unit_code,full_name,phone,title\n"
        "CDCS-MAY,Nguyễn Thị Hoa,0912345678,LDXX\n"
        "CDCS-XX,Lê Văn Tám,,LĐTT\n"
        "CDCS-MAY,Lê Văn Tám,,CSTĐTQ\n"
        "CDCS-MAY,Lê Văn Tám,,TTLĐXS\n"
        "CDCS-MAY,Nguyễn Thị Hoa,0912345678,LĐTT\n"
        "CDCS-MAY,Lê Văn Tám,,Lao động tiên tiến\n"
        "CDCS-MAY,le van tam,,LDTT\n"
        "CDCS-MAY,Phan Văn Út,0123,LDTT\n"
        "CDCS-MAY,Trần Văn Bình,0912345678,LDTT\n"
        "CDCS-THPT,Trần Văn Bình,0987654321,LDTT\n"
        "CDCS-MAY,Trần Văn Bình,,CSTDCS\n"
        "CDCS-MAY,,,LDTT\n",
    )
    before = await counts(sessionmaker)
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, path, "titles")
    assert failed.value.problems == [
        "row 2: unknown title 'LDXX'",
        "row 3: unknown unit code 'CDCS-XX'",
        "row 4: title 'CSTĐTQ' is not open in campaign TD2027 (it has LDTT, CSTDCS, BK_TINH, "
        "TTLDTT, TTLDXS, CO_TINH)",
        "row 5: 'Tập thể lao động xuất sắc' is a collective title; register it on a Tập thể row "
        "(the unit's name in Tên tập thể)",
        "row 6: Nguyễn Thị Hoa – Lao động tiên tiến is already registered (receipt TD2027-000001)",
        "row 8: Lê Văn Tám – Lao động tiên tiến already appears in row 7",
        "row 9: phone '0123' is not a valid Vietnamese phone number",
        "row 10: phone 0912345678 belongs to Nguyễn Thị Hoa, not to Trần Văn Bình",
        "row 11: Trần Văn Bình (0987654321) is on the roster of another unit",
        # A draft counts: it would be sent later, and the chat refuses a second one too.
        "row 12: Trần Văn Bình – Chiến sĩ thi đua cơ sở is already registered "
        "(receipt TD2027-000005)",
        "row 13: name is empty",
    ]
    assert await counts(sessionmaker) == before


async def test_bad_initiatives_and_works(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    ideas = write(
        tmp_path,
        "ideas.csv",
        "name;author;unit_code;field;applied_on;benefit\n"
        "Máy cắt mới;Nguyễn Thị Hoa;CDCS-MAY;kỹ thuật;32/13/2026;abc\n"
        "Cải tiến máy cắt vải tự động;Nguyễn Thị Hoa;CDCS-MAY;;;\n"
        "Sổ tay điện tử;Lê Minh Châu;CDCS-THPT;phong thủy;01/06/2027;\n"
        "X;Lê Minh Châu;CDCS-THPT;;;\n",
    )
    before = await counts(sessionmaker)
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, ideas, "initiatives")
    assert failed.value.problems == [
        "row 2: applied date '32/13/2026' is not a date",
        "row 2: benefit 'abc' is not an amount",
        "row 3: the initiative 'Cải tiến máy cắt vải tự động' of Nguyễn Thị Hoa is already "
        "registered (receipt TD2027-000010)",
        "row 4: unknown field 'phong thủy' (one of: Kỹ thuật, Quản lý, Tiết kiệm, chống lãng "
        "phí, An toàn vệ sinh lao động, Chuyển đổi số, công nghệ thông tin, Khác)",
        "row 4: applied date 01/06/2027 is in the future",
        "row 5: the initiative's name is too short",
    ]
    works = write(
        tmp_path,
        "works.csv",
        "name,unit_code,occasion,value,start,finish,plaque\n"
        "Cầu nối,CDCS-MAY,Tháng Công nhân,500 triệu,01/05/2027,01/04/2027,có\n"
        "Đường điện,CDCS-MAY,Tháng Công nhân,nhiều tiền,01/05/2027,30/05/2027,có\n"
        'Nhà xe,CDCS-THPT,Tháng Công nhân,"1,2 tỷ",01/02/2028,01/03/2028,maybe\n'
        "Nhà văn hóa công nhân,CDCS-MAY,Tháng Công nhân,1 tỷ,01/03/2027,01/04/2027,\n"
        "Vườn cây,CDCS-MAY,,0,,31/12/2026,\n",
    )
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, works, "works")
    assert failed.value.problems == [
        "row 2: finish 01/04/2027 is before start 01/05/2027",
        "row 3: value 'nhiều tiền' is not an amount",
        "row 4: start 01/02/2028 is after the campaign ends (31/12/2027)",
        "row 4: plaque 'maybe' is neither có nor không",
        "row 5: the work 'Nhà văn hóa công nhân' of Công đoàn cơ sở Công ty May Bắc Kạn is "
        "already registered (receipt TD2027-000013)",
        "row 6: the occasion is empty",
        "row 6: value must be above zero",
        "row 6: start date is empty",
        "row 6: finish 31/12/2026 is before the campaign starts (01/01/2027); a work counts "
        "only if it is finished during or after it",
    ]
    assert await counts(sessionmaker) == before


async def test_columns_that_are_missing_or_unknown(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    cases = {
        "a,b\n1,2\n": "no sheet has the columns of a titles list; expected at least: unit_code "
        "or unit_name, full_name (or Tên tập thể), title, [phone], [position] (or the columns "
        "`thidua export registrations` writes)",
        "unit_code,full_name,title,năm sinh\nCDCS-MAY,Lê Văn Tám,LDTT,1990\n": "the header "
        "(row 1) has unknown column(s) 'năm sinh'; expected: unit_code or unit_name, full_name "
        "(or Tên tập thể), title, [phone], [position] (or the columns of the export)",
        "full_name,title\nLê Văn Tám,LDTT\n": "the header (row 1) lacks a column unit_code or "
        "unit_name or position_unit or collective_name or name_or_unit",
        "unit_code,full_name,title\n": "the file has a header but no data rows",
    }
    for text, problem in cases.items():
        with pytest.raises(ImportFailed) as failed:
            await run_import(sessionmaker, write(tmp_path, "f.csv", text), "titles")
        assert failed.value.problems == [problem]
    with pytest.raises(ImportFailed, match=r"unsupported file type '\.pdf'"):
        await run_import(sessionmaker, write(tmp_path, "f.pdf", "x"), "titles")


# --- long files ------------------------------------------------------------------------------

_SYLLABLES = ["An", "Bảo", "Cát", "Dũng", "Giang", "Hòa", "Khôi", "Lộc", "Minh", "Ngọc", "Phát",
              "Quý", "Sang", "Thịnh", "Uy", "Vĩnh"]  # fmt: skip


def someone(n: int) -> str:
    """A person's name of its own for each n below 4,096."""
    return "Nguyễn " + " ".join(_SYLLABLES[(n >> shift) & 15] for shift in (0, 4, 8))


async def test_a_long_file_is_checked_a_batch_at_a_time(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    """More rows than are checked at once: someone new early in the file is the same person
    at its end, the same registration twice far apart is found, and past the first 100
    problems the rest are counted."""
    await make_org(sessionmaker, titles=TITLES)
    people = BATCH // 2 + 100
    header = "unit_code,full_name,phone,title\n"
    rows = [f"CDCS-MAY,{someone(n)},09{n:08d},LĐTT\n" for n in range(people)]
    rows += [f"CDCS-THPT,{someone(n)},,LĐTT\n" for n in range(people)]
    assert len(rows) > BATCH
    # At the end: the first person again, by phone, for another title.
    last = f"CDCS-MAY,{someone(0)},0900000000,CSTĐCS\n"
    before = await counts(sessionmaker)
    summary = await run_import(
        sessionmaker, write(tmp_path, "a.csv", header + "".join(rows) + last), "titles"
    )
    assert (summary.individuals, summary.collectives) == (2 * people + 1, 0)
    assert len(summary.receipts) == 2 * people + 1
    assert summary.receipts[-1] == f"TD2027-{2 * people + 1:06d}"
    assert summary.new_people_count == 2 * people
    assert summary.new_people[:2] == [f"{someone(0)} (CDCS-MAY)", f"{someone(1)} (CDCS-MAY)"]
    assert summary.lines()[1].endswith(
        f"and {2 * people - MAX_LISTED:,} more (each in the audit log, person.import)"
    )
    after = await counts(sessionmaker)
    assert after["Person"] - before["Person"] == 2 * people
    assert after["Registration"] - before["Registration"] == 2 * people + 1
    async with sessionmaker() as session:
        first = await session.scalar(select(Person).where(Person.phone == "0900000000"))
        assert first is not None
        titles = set(
            await session.scalars(
                select(Registration.title_code).where(Registration.person_id == first.id)
            )
        )
    assert titles == {"LDTT", "CSTDCS"}

    # The other title for everyone, the first person twice: found across the batches.
    again = [r.replace("LĐTT", "CSTĐCS") for r in rows]
    with pytest.raises(ImportFailed) as failed:
        await run_import(
            sessionmaker, write(tmp_path, "b.csv", header + "".join(again) + last), "titles"
        )
    already = (
        f"{someone(0)} – Chiến sĩ thi đua cơ sở is already registered "
        f"(receipt TD2027-{2 * people + 1:06d})"
    )
    assert failed.value.problems == [
        f"row 2: {already}",
        f"row {2 * people + 2}: {someone(0)} – Chiến sĩ thi đua cơ sở already appears in row 2",
        f"row {2 * people + 2}: {already}",
    ]

    # The first file again: every row is a problem; the first 100 are listed.
    before = await counts(sessionmaker)
    with pytest.raises(ImportFailed) as failed:
        await run_import(
            sessionmaker, write(tmp_path, "c.csv", header + "".join(rows) + last), "titles"
        )
    listed = failed.value.problems
    assert len(listed) == MAX_LISTED + 1
    assert listed[0] == (
        f"row 2: {someone(0)} – Lao động tiên tiến is already registered (receipt TD2027-000001)"
    )
    assert listed[MAX_LISTED - 1].startswith(f"row {MAX_LISTED + 1}: ")
    assert listed[-1] == (
        f"… and {2 * people + 1 - MAX_LISTED:,} more problem(s); the first {MAX_LISTED} are "
        "listed above"
    )
    assert failed.value.total == 2 * people + 1
    assert await counts(sessionmaker) == before


async def test_a_malformed_csv_is_refused_at_its_row(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    """Read a row at a time, the file's own damage is still named by its row, and nothing
    of the rows above it is written."""
    path = write(
        tmp_path,
        "q.csv",
        'unit_code,full_name,title\nCDCS-MAY,Lê Văn Tám,LĐTT\nCDCS-MAY,"Hà Văn Sáu,LĐTT\n',
    )
    before = await counts(sessionmaker)
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, path, "titles")
    assert failed.value.problems == [
        "row 3: the CSV is malformed: a quote opened on line 3 is never closed; fix the "
        "quotes in this row"
    ]
    assert await counts(sessionmaker) == before


# --- the chat's rules: deadline, approved lists ----------------------------------------------


async def test_after_the_deadline_only_when_asked(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    path = write(
        tmp_path, "late.csv", "unit_code,full_name,title\nCDCS-MAY,Lê Văn Tám,Lao động tiên tiến\n"
    )
    february = date(2027, 2, 1)
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, path, "titles", today=february)
    assert failed.value.problems == [
        "registration for TD2027 closed on 25/01/2027, as in the chat; to record lists the "
        "units handed in before that day, run the import again with --allow-late"
    ]
    summary = await run_import(sessionmaker, path, "titles", today=february, allow_late=True)
    assert summary.late and summary.lines()[-1] == (
        "Warning: registration closed on 25/01/2027; imported anyway (--allow-late)"
    )
    async with sessionmaker() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "registration.import")
        )
    assert entry is not None and entry.details["late"] is True


async def test_an_approved_list_is_not_changed_by_an_import(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    async with sessionmaker() as session, session.begin():
        session.add(
            UnitSubmission(
                campaign_id=scene.org.campaign.id,
                unit_id=scene.org.garment.id,
                status=SubmissionStatus.APPROVED,
            )
        )
    path = write(tmp_path, "l.csv", "unit_code,full_name,title\nCDCS-MAY,Lê Văn Tám,LĐTT\n")
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, path, "titles")
    assert failed.value.problems == [
        "row 2: the list of Công đoàn cơ sở Công ty May Bắc Kạn has already been approved by "
        "the upper level; an officer must reopen it before registrations are added"
    ]


# --- people, collectives, hand-made files ----------------------------------------------------


async def test_people_are_found_by_phone_or_name_and_otherwise_added(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    # A hand-made sheet: a title above the header, a phone kept as a number, Vietnamese
    # headers in other words, a collective marked in a kind column, "Chức vụ – đơn vị" only.
    sheet.append(["Danh sách đăng ký của Công đoàn Trường THPT Chợ Đồn"])
    sheet.append([])
    sheet.append(["TT", "Họ tên", "Chức vụ - Đơn vị", "SĐT", "Đối tượng", "Danh hiệu"])
    sheet.append(
        [1, "LÊ MINH CHÂU", "Giáo viên – Công đoàn Trường THPT Chợ Đồn", 903111222, "", "LĐTT"]
    )
    sheet.append(
        [2, "Nguyễn Văn Mới", "Kế toán, Công đoàn Trường THPT Chợ Đồn", None, None, "ldtt"]
    )
    sheet.append([3, "", "Công đoàn Trường THPT Chợ Đồn", None, "Tập thể", "TTLĐTT"])
    sheet.append([4, "Trần Văn Bình", "Công đoàn cơ sở Công ty May Bắc Kạn", None, None, "BK_TINH"])
    sheet.append(["Người lập biểu"])  # under the table, in the STT column: not a row
    path = tmp_path / "thpt.xlsx"
    workbook.save(path)
    summary = await run_import(sessionmaker, path, "titles")
    assert (summary.individuals, summary.collectives) == (3, 1)
    assert summary.new_people == ["Nguyễn Văn Mới (CDCS-THPT)"]
    assert summary.lines()[0].startswith(
        "Imported 4 registration(s) into TD2027 «Phong trào thi đua năm 2027»: 3 individual, "
        "1 collective; receipt numbers TD2027-000015 to TD2027-000018"
    )
    async with sessionmaker() as session:
        new = await session.scalar(select(Person).where(Person.full_name == "Nguyễn Văn Mới"))
        assert new is not None
        assert (new.position, new.source, new.phone) == ("Kế toán", "roster", None)
        role = await session.scalar(select(UnitRole).where(UnitRole.person_id == new.id))
        assert role is not None and role.unit_id == scene.org.school.id and role.role == "member"
        chau = await session.scalar(
            select(Registration).where(
                Registration.person_id == scene.chau.id, Registration.status == "submitted"
            )
        )
        assert chau is not None and chau.title_code == "LDTT"
        binh = await session.scalar(
            select(Registration).where(
                Registration.person_id == scene.binh.id, Registration.title_code == "BK_TINH"
            )
        )
        assert binh is not None and binh.unit_id == scene.org.garment.id
        collective = await session.scalar(
            select(Registration).where(
                Registration.is_collective.is_(True),
                Registration.title_code == "TTLDTT",
                Registration.unit_id == scene.org.school.id,
            )
        )
        assert collective is not None and collective.person_id is None


async def test_works_are_imported_through_the_year_with_their_occasion_day(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    """As in the chat, works are taken until their phase ends, not only until 25/01."""
    async with sessionmaker() as session, session.begin():
        campaign = await session.scalar(select(Campaign).where(Campaign.code == "TD2027"))
        assert campaign is not None
        campaign.settings = {
            **campaign.settings,
            "occasions": [{"name": "Ngày Quốc khánh", "date": "2027-09-02"}],
        }
    works = write(
        tmp_path,
        "w.csv",
        "Tên công trình;Đơn vị thực hiện;Chào mừng;Giá trị;Bắt đầu;Hoàn thành;Đề nghị gắn biển\n"
        "Vườn hoa công nhân;Công đoàn cơ sở Công ty May Bắc Kạn;Ngày Quốc khánh;300 triệu;"
        "1/8/2027;2027-08-30;x\n",
    )
    summary = await run_import(sessionmaker, works, "works", today=date(2027, 8, 10))
    assert not summary.late
    async with sessionmaker() as session:
        work = await session.scalar(select(Work).where(Work.name == "Vườn hoa công nhân"))
    assert work is not None and work.occasion_on == date(2027, 9, 2)
    with pytest.raises(ImportFailed) as failed:
        await run_import(sessionmaker, works, "works", today=date(2028, 1, 5))
    assert "closed on 31/12/2027" in failed.value.problems[0]


async def test_works_and_initiatives_from_hand_made_files(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    works = write(
        tmp_path,
        "w.csv",
        "Tên công trình;Đơn vị thực hiện;Chào mừng;Giá trị;Bắt đầu;Hoàn thành;Đề nghị gắn biển\n"
        "Nhà xe công nhân;Công đoàn cơ sở Công ty May Bắc Kạn;Tháng Công nhân;1,2 tỷ;"
        "1/3/2027;2027-05-01;x\n",
    )
    summary = await run_import(sessionmaker, works, "works")
    assert summary.lines() == [
        "Imported 1 work(s) into TD2027 «Phong trào thi đua năm 2027»; receipt numbers "
        "TD2027-000015",
        "The lists of the 1 unit(s) were left as they were (--lists sent|approved marks them "
        "as sent to the upper level or approved)",
    ]
    ideas = write(
        tmp_path,
        "i.csv",
        "Tên sáng kiến,Tác giả,Mã đơn vị,Lĩnh vực,Giá trị làm lợi,Ngày áp dụng\n"
        '"Quy trình kiểm hàng mới","Trần Văn Bình; Nguyễn Thị Hoa; Ông Ba",CDCS-MAY,ATVSLĐ,'
        '"80.000.000",15/12/2026\n',
    )
    await run_import(sessionmaker, ideas, "initiatives")
    async with sessionmaker() as session:
        work = await session.scalar(select(Work).where(Work.name == "Nhà xe công nhân"))
        assert work is not None
        assert (work.value, work.starts_on, work.ends_on, work.plaque_requested) == (
            1_200_000_000,
            date(2027, 3, 1),
            date(2027, 5, 1),
            True,
        )
        idea = await session.scalar(
            select(Initiative)
            .where(Initiative.name == "Quy trình kiểm hàng mới")
            .options(selectinload(Initiative.authors))
        )
        assert idea is not None
        assert (idea.person_id, idea.field, idea.benefit) == (scene.binh.id, "safety", 80_000_000)
        # Hoa is on the roster: linked, so she sees it as a co-author; "Ông Ba" stays a name.
        assert [(a.name, a.person_id) for a in idea.authors] == [
            ("Nguyễn Thị Hoa", scene.org.rostered.id),
            ("Ông Ba", None),
        ]


async def test_the_campaign_is_chosen_when_only_one_is_open(
    sessionmaker: Sessions, scene: Scene
) -> None:
    async with sessionmaker() as session:
        assert (await choose_campaign(session, None, JAN_10)).code == "TD2027"
        with pytest.raises(CampaignChoiceError, match="unknown campaign 'TD2099'"):
            await choose_campaign(session, "TD2099", JAN_10)


# --- imported registrations are ordinary registrations ---------------------------------------


async def test_an_imported_registration_shows_in_the_members_list(
    sessionmaker: Sessions, scene: Scene, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "c.csv",
        "unit_code,full_name,phone,title\nCDCS-THPT,Lê Minh Châu,0903111222,LĐTT\n",
    )
    summary = await run_import(sessionmaker, path, "titles")
    receipt = summary.receipts[0]

    engine = build_engine(
        sessionmaker, EngineConfig(now=lambda: datetime(2027, 1, 10, 2, 0, tzinfo=UTC))
    )
    chau = Chat(engine, "chau")
    await chau.say("/start")
    await chau.contact("+84903111222")
    assert "Lê Minh Châu" in chau.text()
    await chau.tap("là tôi")
    await chau.say("/cuatoi")
    # Listed like a registration made in the chat (dated the day it was imported).
    assert (
        f"• Lao động tiên tiến (LĐTT): đã đăng ký; danh sách đơn vị: chưa gửi, số {receipt}, ngày "
        in chau.text()
    )
    # The leader's unit progress counts her as registered.
    async with sessionmaker() as session:
        progress = await unit_progress(session, scene.org.campaign.id, scene.org.school)
    assert scene.chau.id in progress.registered_ids and progress.counts["LDTT"] == 1


# --- the units' lists ------------------------------------------------------------------------


async def list_statuses(sessions: Sessions) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.execute(
            select(Unit.code, UnitSubmission.status).join(Unit, Unit.id == UnitSubmission.unit_id)
        )
        return {str(code): str(status) for code, status in rows}


async def test_lists_are_marked_only_when_asked(sessionmaker: Sessions, tmp_path: Path) -> None:
    """A province moving from Excel: its units' lists become "Chờ duyệt" or "Đã duyệt" with
    the rows (each unit's grassroots union, a person found in a team below it included);
    an approved list is never put back to waiting; without the option nothing changes."""
    org = await make_org(sessionmaker, titles=TITLES)
    async with sessionmaker() as session, session.begin():
        garment = await session.get(Unit, org.garment.id)
        assert garment is not None
        team = await add_unit(session, "TO-CAT", "Tổ Cắt", "team", garment)
        session.add(Person(full_name="Đặng Văn Cường", unit_id=team.id, source="roster"))
    plain = write(tmp_path, "a.csv", "unit_code,full_name,title\nCDCS-MAY,Lê Văn Tám,LĐTT\n")
    summary = await run_import(sessionmaker, plain, "titles")
    assert await list_statuses(sessionmaker) == {}
    assert summary.lines()[-1].startswith("The lists of the 1 unit(s) were left as they were")

    sent = write(
        tmp_path,
        "b.csv",
        "unit_code,full_name,title\nCDCS-MAY,Đặng Văn Cường,LĐTT\nCDCS-THPT,Hà Văn Sáu,LĐTT\n",
    )
    summary = await run_import(sessionmaker, sent, "titles", lists="sent")
    assert summary.lines()[-1] == "Marked the lists of 2 unit(s) as «Chờ duyệt»"
    assert await list_statuses(sessionmaker) == {"CDCS-MAY": "pending", "CDCS-THPT": "pending"}

    approved = write(tmp_path, "c.csv", "unit_code,full_name,title\nCDCS-THPT,Hà Văn Sáu,CSTĐCS\n")
    summary = await run_import(sessionmaker, approved, "titles", lists="approved")
    assert summary.lines()[-1] == "Marked the lists of 1 unit(s) as «Đã duyệt»"
    assert await list_statuses(sessionmaker) == {"CDCS-MAY": "pending", "CDCS-THPT": "approved"}
    async with sessionmaker() as session:
        entries = list(
            await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "submission.import")
            )
        )
    assert [(e.details["from"], e.details["to"]) for e in entries] == [
        ("not_sent", "pending"),
        ("not_sent", "pending"),
        ("pending", "approved"),
    ]
    # The rows themselves are registered, never turned into achieved titles by the list.
    async with sessionmaker() as session:
        statuses = set(await session.scalars(select(Registration.status)))
    assert statuses == {"submitted"}


async def test_list_words_in_the_status_column_are_not_achieved_titles(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    """ "Đã duyệt" in an old file's Trạng thái is the list's state: the row is registered,
    the summary says how to mark the list; "Đã công nhận" is a recognised title."""
    await make_org(sessionmaker, titles=TITLES)
    path = write(
        tmp_path,
        "d.csv",
        "unit_code,full_name,title,Trạng thái\n"
        "CDCS-MAY,Lê Văn Tám,LĐTT,Đã duyệt\n"
        "CDCS-MAY,Lê Văn Tám,CSTĐCS,Đã duyệt\n"
        "CDCS-MAY,Hà Văn Sáu,LĐTT,Đã công nhận\n"
        "CDCS-MAY,Trần Thị Bảy,LĐTT,Chờ duyệt\n",
    )
    summary = await run_import(sessionmaker, path, "titles")
    assert summary.lines()[-1] == (
        "The file's status column speaks of lists («Đã duyệt» 2 row(s), «Chờ duyệt» 1 row(s)): "
        "the rows were imported as registered; to mark their units' lists, run the import "
        "with --lists sent or --lists approved"
    )
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Person.full_name, Registration.title_code, Registration.status)
            .join(Person, Person.id == Registration.person_id)
            .order_by(Registration.id)
        )
        assert [tuple(r) for r in rows] == [
            ("Lê Văn Tám", "LDTT", "submitted"),
            ("Lê Văn Tám", "CSTDCS", "submitted"),
            ("Hà Văn Sáu", "LDTT", "approved"),
            ("Trần Thị Bảy", "LDTT", "submitted"),
        ]
    assert await list_statuses(sessionmaker) == {}


# --- the command ------------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    for name in ("TELEGRAM_BOT_USERNAME", "TELEGRAM_BOT_TOKEN", "THIDUA_LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)
    return url


def test_the_import_command(
    cli_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async def setup() -> None:
        engine = make_engine(cli_db)
        try:
            await prepare_database(engine)
            sessions = make_sessionmaker(engine)
            # Deadline far ahead: the command uses today's date.
            await make_org(sessions, deadline=date(2099, 1, 25), titles=TITLES)
        finally:
            await engine.dispose()

    asyncio.run(setup())
    bad = write(tmp_path, "bad.csv", "unit_code,full_name,title\nCDCS-MAY,Lê Văn Tám,LDXX\n")
    assert main(["import", "registrations", str(bad), "--kind", "titles"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "row 2: unknown title 'LDXX'",
        "Nothing was imported; fix the file and run the command again.",
    ]
    good = write(tmp_path, "ok.csv", "unit_code,full_name,title\nCDCS-MAY,Lê Văn Tám,LĐTT\n")
    assert main(["import", "registrations", str(good), "--kind", "titles"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Imported 1 registration(s) into TD2027 «Phong trào thi đua năm 2027»: 1 individual, "
        "0 collective; receipt numbers TD2027-000001",
        "Added 1 person(s) to the roster (not found by phone, nor by name in their unit): "
        "Lê Văn Tám (CDCS-MAY)",
        "The lists of the 1 unit(s) were left as they were (--lists sent|approved marks them "
        "as sent to the upper level or approved)",
    ]
    args = ["import", "registrations", str(good), "--kind", "titles", "--campaign", "TD2099"]
    assert main(args) == 1
    assert capsys.readouterr().err == "error: unknown campaign 'TD2099'\n"
    out = tmp_path / "out.xlsx"
    assert main(["export", "registrations", "--campaign", "TD2027", "-o", str(out)]) == 0
    assert "Exported 1 registration(s) (1 individual, 0 collective)" in capsys.readouterr().out
    assert out.read_bytes()[:2] == b"PK"
    # A province moving from Excel: the imported units' lists are marked as sent, said so.
    more = write(tmp_path, "more.csv", "unit_code,full_name,title\nCDCS-THPT,Lê Văn Sáu,LĐTT\n")
    assert main(["import", "registrations", str(more), "--kind", "titles", "--lists", "sent"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "Marked the lists of 1 unit(s) as «Chờ duyệt»"
    )
    flat = tmp_path / "flat.csv"
    assert main(["export", "registrations", "--campaign", "TD2027", "-o", str(flat)]) == 0
    with flat.open(encoding="utf-8-sig") as stream:
        states = {(r["Họ và tên / Tập thể"], r["Danh sách đơn vị"]) for r in csv.DictReader(stream)}
    # The school's list now waits for approval; the garment union's was never sent.
    assert states == {("Lê Văn Tám", "Chưa gửi"), ("Lê Văn Sáu", "Chờ duyệt")}
