"""Importing the unit tree and member rosters from the files officers keep (CSV and XLSX)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.importers import (
    REBUILD_INDEXES_FROM,
    ImportFailed,
    import_members_file,
    import_units_file,
    read_table,
)
from storage.models import AuditEntry, Person, Unit, UnitRole

Sessions = async_sessionmaker[AsyncSession]

ORG_CSV = (
    # Children first, semicolons and a BOM: how Vietnamese Excel saves "CSV UTF-8".
    "\ufeffcode;name;parent_code;kind\n"
    "CDCS-MAY;Công đoàn cơ sở Công ty May Bắc Kạn;CD-KCN;CĐCS\n"
    "TO-CAT;Tổ công đoàn Cắt;CDCS-MAY;tổ công đoàn\n"
    "CD-KCN;Công đoàn Khu công nghiệp;LDLD-BK;Công đoàn cấp trên cơ sở\n"
    "LDLD-BK;LĐLĐ tỉnh Bắc Kạn;;LĐLĐ tỉnh\n"
    "CD-XA;Công đoàn xã Đồng Tâm;LDLD-BK;upper\n"
)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def write_xlsx(tmp_path: Path, name: str, rows: list[list[object]]) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    path = tmp_path / name
    workbook.save(path)
    return path


async def units_by_code(sessions: Sessions) -> dict[str, Unit]:
    async with sessions() as session:
        return {u.code: u for u in await session.scalars(select(Unit))}


async def count(sessions: Sessions, model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def import_org(sessions: Sessions, path: Path) -> str:
    async with sessions() as session, session.begin():
        return (await import_units_file(session, path)).describe()


async def import_roster(sessions: Sessions, path: Path) -> str:
    async with sessions() as session, session.begin():
        return (await import_members_file(session, path)).describe()


async def test_org_csv_builds_the_tree_whatever_the_row_order(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    summary = await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_CSV))
    assert summary == "Imported 5 units (5 new, 0 updated)"

    units = await units_by_code(sessionmaker)
    bk, kcn, may, cat = units["LDLD-BK"], units["CD-KCN"], units["CDCS-MAY"], units["TO-CAT"]
    assert bk.parent_id is None and bk.path == f"/{bk.id}/"
    assert kcn.parent_id == bk.id and kcn.path == f"/{bk.id}/{kcn.id}/"
    assert may.path == f"/{bk.id}/{kcn.id}/{may.id}/"
    assert cat.path == f"{may.path}{cat.id}/"
    assert {u.code: u.kind for u in units.values()} == {
        "LDLD-BK": "province",
        "CD-KCN": "upper",
        "CDCS-MAY": "grassroots",
        "TO-CAT": "team",
        "CD-XA": "upper",
    }
    assert may.name == "Công đoàn cơ sở Công ty May Bắc Kạn"
    assert may.search_name == "cong doan co so cong ty may bac kan"

    async with sessionmaker() as session:
        audit = list(await session.scalars(select(AuditEntry)))
    assert len(audit) == 5
    assert {(a.via, a.action, a.entity) for a in audit} == {("import", "unit.import", "unit")}
    assert {a.details["row"] for a in audit} == {2, 3, 4, 5, 6}


async def test_org_xlsx_with_kind_guessed_from_the_name(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    path = write_xlsx(
        tmp_path,
        "org.xlsx",
        [
            ["Code", "Name", "Parent code"],
            ["LDLD-BK", "LĐLĐ tỉnh Bắc Kạn", None],
            ["CD-KCN", "Công đoàn Khu công nghiệp", "LDLD-BK"],
            ["CDCS-MAY", "Công đoàn cơ sở Công ty May Bắc Kạn", "CD-KCN"],
        ],
    )
    assert await import_org(sessionmaker, path) == "Imported 3 units (3 new, 0 updated)"
    units = await units_by_code(sessionmaker)
    assert units["CDCS-MAY"].path == (
        f"/{units['LDLD-BK'].id}/{units['CD-KCN'].id}/{units['CDCS-MAY'].id}/"
    )
    assert units["LDLD-BK"].kind == "province"
    assert units["CD-KCN"].kind == "upper"
    assert units["CDCS-MAY"].kind == "grassroots"


async def test_reorganisation_moves_the_whole_subtree(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_CSV))
    # The company's union moves from the industrial zone to the commune, and is renamed;
    # the parent (CD-XA) is already in the database, not in this file.
    moved = write(
        tmp_path,
        "reorg.csv",
        "code,name,parent_code\nCDCS-MAY,Công đoàn cơ sở Công ty CP May Bắc Kạn,CD-XA\n",
    )
    assert await import_org(sessionmaker, moved) == "Imported 1 units (0 new, 1 updated)"

    units = await units_by_code(sessionmaker)
    xa, may, cat = units["CD-XA"], units["CDCS-MAY"], units["TO-CAT"]
    assert may.parent_id == xa.id
    assert may.path == f"{xa.path}{may.id}/"
    assert cat.path == f"{xa.path}{may.id}/{cat.id}/"  # the team came along
    assert may.kind == "grassroots"  # no kind column: the kind is kept
    assert may.search_name == "cong doan co so cong ty cp may bac kan"
    async with sessionmaker() as session:
        under_kcn = list(
            await session.scalars(
                select(Unit.code).where(Unit.path.startswith(units["CD-KCN"].path))
            )
        )
        last = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert under_kcn == ["CD-KCN"]
    assert last is not None
    assert last.details["changes"]["parent_code"] == ["CD-KCN", "CD-XA"]
    assert last.details["changes"]["name"][1] == "Công đoàn cơ sở Công ty CP May Bắc Kạn"
    assert last.details["changes"]["path"] == [f"{units['CD-KCN'].path}{may.id}/", may.path]
    assert last.details["changes"]["descendants_moved"] == [None, 1]  # the team


async def test_a_unit_moves_under_a_new_unit_listed_after_it(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_CSV))
    # Communes merged in 2025: a new commune union takes over the company's union.
    text = (
        "code,name,parent_code\n"
        "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn,CD-PHUONG\n"
        "CD-PHUONG,Công đoàn phường Đức Xuân,LDLD-BK\n"
    )
    summary = await import_org(sessionmaker, write(tmp_path, "merge.csv", text))
    assert summary == "Imported 2 units (1 new, 1 updated)"
    units = await units_by_code(sessionmaker)
    phuong, may, cat = units["CD-PHUONG"], units["CDCS-MAY"], units["TO-CAT"]
    assert phuong.path == f"{units['LDLD-BK'].path}{phuong.id}/"
    assert phuong.kind == "upper"  # "Công đoàn phường ..." says so
    assert may.path == f"{phuong.path}{may.id}/"
    assert cat.path == f"{may.path}{cat.id}/"


async def test_moving_a_unit_under_its_own_descendant_is_a_cycle(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_CSV))
    before = {c: u.path for c, u in (await units_by_code(sessionmaker)).items()}
    bad = write(
        tmp_path, "cycle.csv", "code,name,parent_code\nCD-KCN,Công đoàn Khu công nghiệp,TO-CAT\n"
    )
    with pytest.raises(ImportFailed) as failed:
        await import_org(sessionmaker, bad)
    assert len(failed.value.problems) == 1
    assert failed.value.problems[0].startswith("row 2: ")
    assert "cycle" in failed.value.problems[0]
    assert "CD-KCN → TO-CAT → CDCS-MAY → CD-KCN" in failed.value.problems[0]
    after = {c: u.path for c, u in (await units_by_code(sessionmaker)).items()}
    assert after == before


async def test_a_cycle_inside_the_file_is_reported(sessionmaker: Sessions, tmp_path: Path) -> None:
    bad = write(tmp_path, "cycle.csv", "code,name,parent_code\nA,Tổ A,B\nB,Tổ B,A\n")
    with pytest.raises(ImportFailed) as failed:
        await import_org(sessionmaker, bad)
    assert failed.value.problems == ["row 2: parent_code 'B' makes a cycle (A → B → A)"]
    assert await count(sessionmaker, Unit) == 0


async def test_bad_rows_are_all_named_and_nothing_is_written(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    text = (
        "code,name,parent_code,kind\n"
        "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,,province\n"
        "CD-KCN,Công đoàn Khu công nghiệp,LDLD-XX,upper\n"
        "\n"  # a blank line still counts as a row in the spreadsheet
        "CDCS-MAY,,CD-KCN,grassroots\n"
        "LDLD-BK,LĐLĐ tỉnh Bắc Kạn (trùng),,province\n"
        "TO-1,Tổ 1,CDCS-MAY,phòng ban\n"
    )
    with pytest.raises(ImportFailed) as failed:
        await import_org(sessionmaker, write(tmp_path, "bad.csv", text))
    problems = failed.value.problems
    assert problems[0] == (
        "row 3: unknown parent_code 'LDLD-XX' (not in this file nor in the database)"
    )
    assert problems[1] == "row 5: name is empty"
    assert problems[2] == "row 6: code 'LDLD-BK' already appears in row 2"
    assert problems[3].startswith("row 7: unknown kind 'phòng ban'")
    assert len(problems) == 4
    assert await count(sessionmaker, Unit) == 0
    assert await count(sessionmaker, AuditEntry) == 0


async def test_a_tree_of_many_levels_is_read_in_batches_with_progress(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    # Deeper than wide and listed leaves first: every parent comes after its children.
    lines = ["code,name,parent_code"]
    lines += [f"T-{n},Tổ công đoàn {n},CD-{n % 40}" for n in range(12_000)]
    lines += [f"CD-{n},Công đoàn cơ sở {n},KCN" for n in range(40)]
    lines += ["KCN,Công đoàn Khu công nghiệp,LDLD", "LDLD,LĐLĐ tỉnh Bắc Kạn,"]
    seen: list[int] = []
    async with sessionmaker() as session, session.begin():
        summary = await import_units_file(
            session, write(tmp_path, "org.csv", "\n".join(lines) + "\n"), progress=seen.append
        )
    assert summary.describe() == "Imported 12042 units (12042 new, 0 updated)"
    assert seen == [5000, 5000, 2042]  # rows read, after each batch
    units = await units_by_code(sessionmaker)
    ldld, kcn, cd7, team = units["LDLD"], units["KCN"], units["CD-7"], units["T-47"]
    assert team.path == f"/{ldld.id}/{kcn.id}/{cd7.id}/{team.id}/"
    assert (ldld.kind, kcn.kind, cd7.kind, team.kind) == ("province", "upper", "grassroots", "team")

    # The same file again changes nothing; moving one union takes its 300 teams along.
    async with sessionmaker() as session, session.begin():
        again = await import_units_file(session, write(tmp_path, "org.csv", "\n".join(lines)))
    assert again.describe() == "Imported 12042 units (0 new, 0 updated, 12042 unchanged)"
    moved = "code,name,parent_code\nCD-7,Công đoàn cơ sở 7,LDLD\n"
    assert await import_org(sessionmaker, write(tmp_path, "m.csv", moved)) == (
        "Imported 1 units (0 new, 1 updated)"
    )
    units = await units_by_code(sessionmaker)
    assert units["T-47"].path == f"/{ldld.id}/{cd7.id}/{team.id}/"
    async with sessionmaker() as session:
        last = await session.scalar(select(AuditEntry).order_by(AuditEntry.id.desc()))
    assert last is not None and last.details["changes"]["descendants_moved"] == [None, 300]


async def test_two_imports_in_one_transaction(sessionmaker: Sessions, tmp_path: Path) -> None:
    # The demo imports its tree and roster in one transaction; a second file in the same
    # transaction finds the first one's units.
    more = "code,name,parent_code\nTO-MOI,Tổ công đoàn Mới,CDCS-MAY\n"
    async with sessionmaker() as session, session.begin():
        first = await import_units_file(session, write(tmp_path, "org.csv", ORG_CSV))
        second = await import_units_file(session, write(tmp_path, "more.csv", more))
        roster = "unit_code,full_name,phone\nTO-MOI,Lê Văn Bình,0912345678\n"
        members = await import_members_file(session, write(tmp_path, "m.csv", roster))
        again = await import_members_file(session, write(tmp_path, "m.csv", roster))
    assert first.describe() == "Imported 5 units (5 new, 0 updated)"
    assert second.describe() == "Imported 1 units (1 new, 0 updated)"
    assert members.describe() == "Imported 1 members (1 new, 0 updated)"
    assert again.describe() == "Imported 1 members (0 new, 0 updated, 1 unchanged)"
    units = await units_by_code(sessionmaker)
    assert units["TO-MOI"].path == f"{units['CDCS-MAY'].path}{units['TO-MOI'].id}/"


async def test_many_bad_units_are_counted_after_the_first_hundred(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    lines = ["code,name,parent_code", "LDLD,LĐLĐ tỉnh Bắc Kạn,"]
    lines += [f"CD-{n},Công đoàn {n},NOWHERE" for n in range(150)]
    with pytest.raises(ImportFailed) as failed:
        await import_org(sessionmaker, write(tmp_path, "org.csv", "\n".join(lines) + "\n"))
    problems = failed.value.problems
    assert problems[0] == (
        "row 3: unknown parent_code 'NOWHERE' (not in this file nor in the database)"
    )
    assert problems[99].startswith("row 102: ")
    assert problems[100] == "… and 50 more problem(s); the first 100 are listed above"
    assert failed.value.total == 150
    assert await count(sessionmaker, Unit) == 0


async def test_wrong_columns_name_the_expected_ones(sessionmaker: Sessions, tmp_path: Path) -> None:
    path = write(tmp_path, "org.csv", "ma,ten,cap_tren\nLDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n")
    with pytest.raises(ImportFailed) as failed:
        await import_org(sessionmaker, path)
    assert failed.value.problems == [
        "missing column(s) code, name, parent_code; expected columns: "
        "code, name, parent_code, [kind]",
        "unknown column(s) ma, ten, cap_tren; expected columns: code, name, parent_code, [kind]",
    ]


async def test_a_utf16_file_is_read(sessionmaker: Sessions, tmp_path: Path) -> None:
    path = tmp_path / "org.csv"
    # Excel's "Unicode Text" format is UTF-16 (tab-separated).
    path.write_bytes("code\tname\tparent_code\nLDLD-BK\tLĐLĐ tỉnh Bắc Kạn\t\n".encode("utf-16"))
    assert await import_org(sessionmaker, path) == "Imported 1 units (1 new, 0 updated)"
    assert (await units_by_code(sessionmaker))["LDLD-BK"].name == "LĐLĐ tỉnh Bắc Kạn"


def test_rows_keep_spreadsheet_numbers(tmp_path: Path) -> None:
    header, rows = read_table(
        write(tmp_path, "org.csv", "code,name,parent_code\n\nA,Tổ A,\n,,\nB,Tổ B,A\n")
    )
    assert header == ["code", "name", "parent_code"]
    assert [(r.number, r.values["code"]) for r in rows] == [(3, "A"), (5, "B")]


# --- members -----------------------------------------------------------------------------

ORG_SMALL = (
    "code,name,parent_code\n"
    "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
    "CD-KCN,Công đoàn Khu công nghiệp,LDLD-BK\n"
    "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn,CD-KCN\n"
)


async def people(sessions: Sessions) -> dict[str, Person]:
    async with sessions() as session:
        return {p.phone or "": p for p in await session.scalars(select(Person))}


async def member_units(sessions: Sessions, person_id: int) -> list[int]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(UnitRole.unit_id).where(
                    UnitRole.person_id == person_id, UnitRole.role == "member"
                )
            )
        )


async def test_roster_xlsx_creates_members_with_clean_phones(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_SMALL))
    path = write_xlsx(
        tmp_path,
        "members.xlsx",
        [
            ["unit_code", "full_name", "phone", "position"],
            ["CDCS-MAY", "nguyễn thị hoa", "0912 345 678", "Công nhân tổ Cắt"],
            # Typed into a number cell, Excel dropped the leading zero.
            ["CDCS-MAY", "Trần Văn Bình", 987654321, None],
            ["CD-KCN", "Lê Minh Châu", "+84 903 111 222", "Chủ tịch"],
        ],
    )
    assert await import_roster(sessionmaker, path) == "Imported 3 members (3 new, 0 updated)"

    units = await units_by_code(sessionmaker)
    found = await people(sessionmaker)
    assert set(found) == {"0912345678", "0987654321", "0903111222"}
    hoa = found["0912345678"]
    assert hoa.full_name == "Nguyễn Thị Hoa"
    assert hoa.position == "Công nhân tổ Cắt"
    assert hoa.source == "roster"
    assert hoa.unit_id == units["CDCS-MAY"].id
    assert await member_units(sessionmaker, hoa.id) == [units["CDCS-MAY"].id]
    assert found["0987654321"].position is None
    async with sessionmaker() as session:
        actions = list(await session.scalars(select(AuditEntry.action)))
    assert actions.count("person.import") == 3


async def test_reimport_updates_the_person_with_the_same_phone(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_SMALL))
    async with sessionmaker() as session, session.begin():
        # Someone who already onboarded in the chat, before the roster arrived.
        session.add(Person(full_name="Hoa", phone="0912345678", source="chat"))
    first = "unit_code,full_name,phone\nCDCS-MAY,Nguyễn Thị Hoa,0912.345.678\n"
    assert await import_roster(sessionmaker, write(tmp_path, "m1.csv", first)) == (
        "Imported 1 members (0 new, 1 updated)"
    )
    moved = "unit_code,full_name,phone,position\nCD-KCN,Nguyễn Thị Hoa,84912345678,Phó chủ tịch\n"
    assert await import_roster(sessionmaker, write(tmp_path, "m2.csv", moved)) == (
        "Imported 1 members (0 new, 1 updated)"
    )
    again = await import_roster(sessionmaker, write(tmp_path, "m3.csv", moved))
    assert again == "Imported 1 members (0 new, 0 updated, 1 unchanged)"

    units = await units_by_code(sessionmaker)
    found = await people(sessionmaker)
    assert len(found) == 1
    hoa = found["0912345678"]
    assert hoa.full_name == "Nguyễn Thị Hoa"
    assert hoa.position == "Phó chủ tịch"
    assert hoa.unit_id == units["CD-KCN"].id
    assert hoa.source == "chat"  # where the person first came from is kept
    assert await member_units(sessionmaker, hoa.id) == [units["CD-KCN"].id]


async def test_bad_roster_rows_are_named_and_nothing_is_written(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_SMALL))
    text = (
        "unit_code,full_name,phone\n"
        "CDCS-MAY,Nguyễn Thị Hoa,0912345678\n"
        "CDCS-MAY,Trần Văn Bình,0912 345 678\n"
        "CDCS-XX,Lê Minh Châu,0903111222\n"
        "CDCS-MAY,Phạm Đức,12345\n"
        "CDCS-MAY,,0903111333\n"
    )
    with pytest.raises(ImportFailed) as failed:
        await import_roster(sessionmaker, write(tmp_path, "members.csv", text))
    assert failed.value.problems == [
        "row 3: phone 0912345678 already appears in row 2",
        "row 4: unknown unit_code 'CDCS-XX'",
        "row 5: phone '12345' is not a valid Vietnamese phone number (0xxxxxxxxx)",
        "row 6: full_name is empty",
    ]
    assert await count(sessionmaker, Person) == 0
    assert await count(sessionmaker, UnitRole) == 0


async def test_roster_with_wrong_columns(sessionmaker: Sessions, tmp_path: Path) -> None:
    path = write(tmp_path, "m.csv", "unit_code,name,phone\nCDCS-MAY,Nguyễn Thị Hoa,0912345678\n")
    with pytest.raises(ImportFailed) as failed:
        await import_roster(sessionmaker, path)
    assert "expected columns: unit_code, full_name, phone, [position]" in failed.value.problems[0]


async def test_a_long_roster_is_imported_in_batches_with_progress(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_SMALL))
    lines = ["unit_code,full_name,phone"]
    lines += [f"CDCS-MAY,Nguyễn Văn An,09{n:08d}" for n in range(12_000)]
    seen: list[int] = []
    async with sessionmaker() as session, session.begin():
        summary = await import_members_file(
            session, write(tmp_path, "m.csv", "\n".join(lines) + "\n"), progress=seen.append
        )
    assert summary.describe() == "Imported 12000 members (12000 new, 0 updated)"
    # Advanced by each batch of rows read (a progress bar adds them up), the last one
    # once the import is done.
    assert seen == [5000, 5000, 2000]
    assert await count(sessionmaker, Person) == 12_000
    assert await count(sessionmaker, UnitRole) == 12_000


def _schema_of(sync: Any, tables: Sequence[str]) -> dict[str, Any]:
    inspector = inspect(sync)
    schema: dict[str, Any] = {}
    for table in tables:
        indexes = inspector.get_indexes(table)
        uniques = inspector.get_unique_constraints(table)
        keys = inspector.get_foreign_keys(table)
        schema[table] = (
            sorted((i["name"], tuple(i["column_names"]), i["unique"]) for i in indexes),
            sorted((u["name"], tuple(u["column_names"])) for u in uniques),
            sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"]) for f in keys),
        )
    return schema


async def test_a_first_load_larger_than_the_database_keeps_its_indexes_and_constraints(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    # A province's first roster: many more people than the database holds, so on
    # PostgreSQL the indexes and foreign keys are set aside and rebuilt in the same
    # transaction. One person is already known (and renamed by the file).
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG_SMALL))
    known = "unit_code,full_name,phone\nCDCS-MAY,Lê An,0900000007\n"
    await import_roster(sessionmaker, write(tmp_path, "one.csv", known))
    tables = ["people", "unit_roles"]
    async with sessionmaker() as session:
        connection = await session.connection()
        before = await connection.run_sync(_schema_of, tables)
    size = REBUILD_INDEXES_FROM + 10
    lines = ["unit_code,full_name,phone"]
    lines += [f"CDCS-MAY,Nguyễn Văn An,09{n:08d}" for n in range(size)]
    summary = await import_roster(sessionmaker, write(tmp_path, "m.csv", "\n".join(lines) + "\n"))
    assert summary == f"Imported {size} members ({size - 1} new, 1 updated)"

    async with sessionmaker() as session:
        connection = await session.connection()
        assert await connection.run_sync(_schema_of, tables) == before
        assert await count(sessionmaker, Person) == size
        assert await count(sessionmaker, UnitRole) == size
        renamed = await session.scalar(select(Person).where(Person.phone == "0900000007"))
        assert renamed is not None and renamed.full_name == "Nguyễn Văn An"
        created = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "person.import")
                .order_by(AuditEntry.id.desc())
                .limit(1)
            )
        )
        last = await session.get(Person, created[0].entity_id)
    assert last is not None and last.phone == f"09{size - 1:08d}"
    assert created[0].details == {
        "row": size + 1,
        "created": True,
        "full_name": "Nguyễn Văn An",
        "phone": f"09{size - 1:08d}",
        "unit_code": "CDCS-MAY",
    }
    # The unique member role still holds: the same phone again changes nothing.
    same = f"unit_code,full_name,phone\nCDCS-MAY,Nguyễn Văn An,09{size - 1:08d}\n"
    again = await import_roster(sessionmaker, write(tmp_path, "again.csv", same))
    assert again == "Imported 1 members (0 new, 0 updated, 1 unchanged)"
    assert await count(sessionmaker, UnitRole) == size
