"""Files an officer (or an attacker) may send to the imports: refused early, cheaply and in
words that name the row, or read correctly when they are merely old-fashioned."""

from __future__ import annotations

import unicodedata
import zipfile
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.importers import ImportFailed, import_members_file, import_units_file
from storage.models import Person, Unit
from storage.tables import Limits

Sessions = async_sessionmaker[AsyncSession]

ORG = (
    "code,name,parent_code\n"
    "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
    "CD-KCN,Công đoàn Khu công nghiệp,LDLD-BK\n"
    "CDCS-MAY,Công đoàn cơ sở Công ty May Bắc Kạn,CD-KCN\n"
)


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    return path


def roster_xlsx(tmp_path: Path, name: str = "members.xlsx", rows: int = 3) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["unit_code", "full_name", "phone"])
    for n in range(rows):
        sheet.append(["CDCS-MAY", f"Nguyễn Văn {chr(65 + n)}", f"091234{n:04d}"])
    path = tmp_path / name
    workbook.save(path)
    return path


def replace_part(path: Path, part: str, data: bytes) -> None:
    """Rewrite one part of a workbook (what a hand-made hostile file looks like)."""
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    parts[part] = data
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in parts.items():
            target.writestr(name, content)


async def import_org(sessions: Sessions, path: Path) -> str:
    async with sessions() as session, session.begin():
        return (await import_units_file(session, path)).describe()


async def import_roster(sessions: Sessions, path: Path, limits: Limits | None = None) -> str:
    async with sessions() as session, session.begin():
        if limits is None:
            return (await import_members_file(session, path)).describe()
        return (await import_members_file(session, path, limits=limits)).describe()


async def count(sessions: Sessions, model: type) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def refused(coroutine: Any) -> list[str]:
    with pytest.raises(ImportFailed) as failed:
        await coroutine
    return failed.value.problems


# --- workbooks ---------------------------------------------------------------------------


async def test_a_zip_bomb_is_refused_before_it_is_unpacked(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG))
    path = roster_xlsx(tmp_path)
    # One cell of 60 MB of text: about 60 KB once compressed.
    bomb = (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
        + b"A" * 60_000_000
        + b"</t></is></c></row></sheetData></worksheet>"
    )
    replace_part(path, "xl/worksheets/sheet1.xml", bomb)
    assert path.stat().st_size < 1_000_000
    problems = await refused(import_roster(sessionmaker, path))
    assert len(problems) == 1
    assert "xl/worksheets/sheet1.xml unpacks to 60 MB" in problems[0]
    assert "refused" in problems[0]
    assert await count(sessionmaker, Person) == 0


async def test_a_sheet_filled_to_the_last_excel_row_is_refused_from_its_size(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["unit_code", "full_name", "phone"])
    # Excel's last row: the sheet declares 1,048,576 rows (its error is in the last one).
    sheet.cell(row=1_048_576, column=1, value="CDCS-XX")
    path = tmp_path / "huge.xlsx"
    workbook.save(path)
    problems = await refused(import_roster(sessionmaker, path))
    assert problems == [
        "the file has 1,048,575 rows; at most 1,000,000 are read in one import (split the "
        "file, e.g. by district, or raise the limit with --max-rows)"
    ]


async def test_the_row_cap_counts_rows_as_they_are_read(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG))
    lines = ["unit_code,full_name,phone"] + [
        f"CDCS-MAY,Nguyễn Văn An,09123450{n:02d}" for n in range(5)
    ]
    path = write(tmp_path, "m.csv", "\n".join(lines) + "\n")
    problems = await refused(import_roster(sessionmaker, path, Limits(max_rows=4)))
    assert problems[0].startswith("the file has 5 rows; at most 4 are read in one import")
    assert await count(sessionmaker, Person) == 0
    assert await import_roster(sessionmaker, path, Limits(max_rows=5)) == (
        "Imported 5 members (5 new, 0 updated)"
    )


async def test_malformed_sheet_xml_is_named_by_row(sessionmaker: Sessions, tmp_path: Path) -> None:
    path = roster_xlsx(tmp_path)
    with zipfile.ZipFile(path) as source:
        xml = source.read("xl/worksheets/sheet1.xml")
    # Cut inside the third row: the rows before it were readable.
    cut = xml.index(b'<row r="3"') + 20
    replace_part(path, "xl/worksheets/sheet1.xml", xml[:cut])
    problems = await refused(import_roster(sessionmaker, path))
    assert len(problems) == 1
    assert problems[0].startswith("row 3: the sheet 'Sheet' is damaged after row 2")
    assert problems[0].endswith("open it in Excel and save it again")


# --- CSV ---------------------------------------------------------------------------------


async def test_a_quote_that_swallows_the_next_row_is_named(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    text = (
        "code,name,parent_code\n"
        "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
        'CD-KCN,"Công đoàn Khu công nghiệp,LDLD-BK\n'
        'CD-XA,Công đoàn xã Đồng Tâm",LDLD-BK\n'
        "CDCS-MAY,Công đoàn cơ sở Công ty May,CD-KCN\n"
    )
    problems = await refused(import_org(sessionmaker, write(tmp_path, "org.csv", text)))
    assert problems == [
        "row 3: the quote that opens column 2 is closed only on line 4, so the following "
        "line(s) were read into this one cell; close the quote on its own line or remove it"
    ]
    assert await count(sessionmaker, Unit) == 0


async def test_a_quote_never_closed_is_named(sessionmaker: Sessions, tmp_path: Path) -> None:
    text = (
        "code,name,parent_code\n"
        "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
        'CD-KCN,"Công đoàn Khu công nghiệp,LDLD-BK\n'
        "CD-XA,Công đoàn xã Đồng Tâm,LDLD-BK\n"
    )
    problems = await refused(import_org(sessionmaker, write(tmp_path, "org.csv", text)))
    assert problems == [
        "row 3: the CSV is malformed: a quote opened on line 3 is never closed; fix the "
        "quotes in this row"
    ]
    assert await count(sessionmaker, Unit) == 0


async def test_ragged_rows_are_named(sessionmaker: Sessions, tmp_path: Path) -> None:
    text = (
        "code;name;parent_code\n"
        "LDLD-BK;LĐLĐ tỉnh Bắc Kạn;\n"
        "CD-XA;Công đoàn xã Đồng Tâm\n"  # the parent's cell is missing: not a new root
        "CD-KCN;Công đoàn Khu công nghiệp;LDLD-BK\n"
    )
    problems = await refused(import_org(sessionmaker, write(tmp_path, "org.csv", text)))
    assert problems == [
        "row 3: 2 cell(s) where the header has 3; a delimiter is missing, or a quote joined "
        "cells together"
    ]
    assert await count(sessionmaker, Unit) == 0


def windows_1258(text: str) -> bytes:
    """Text as Windows-1258 writes it: a base letter, then the tone as a combining mark."""
    tones = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}
    out = bytearray()
    for ch in text:
        try:
            out += ch.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        parts = unicodedata.normalize("NFD", ch)
        base = unicodedata.normalize("NFC", "".join(p for p in parts if p not in tones))
        out += (base + "".join(p for p in parts if p in tones)).encode("cp1258")
    return bytes(out)


async def test_windows_1258_and_1252_files_are_read(sessionmaker: Sessions, tmp_path: Path) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG))
    text = "unit_code,full_name,phone\nCDCS-MAY,Nguyễn Thị Hoa,0912345678\n"
    path = write(tmp_path, "m1258.csv", windows_1258(text))
    assert await import_roster(sessionmaker, path) == "Imported 1 members (1 new, 0 updated)"
    latin = "unit_code,full_name,phone\nCDCS-MAY,José Müller,0912345679\n".encode("cp1252")
    assert await import_roster(sessionmaker, write(tmp_path, "m1252.csv", latin)) == (
        "Imported 1 members (1 new, 0 updated)"
    )
    async with sessionmaker() as session:
        names = set(await session.scalars(select(Person.full_name)))
    assert "Nguyễn Thị Hoa" in names  # composed again (NFC), as typed in the chat


async def test_a_file_no_encoding_fits_is_named_by_row(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    data = (
        b"unit_code,full_name,phone\n"
        b"CDCS-MAY,Nguyen Van An,0912345678\n"
        b"CDCS-MAY,Tr\x81n V\x8dn B,0912345679\n"  # bytes no Windows code page has
    )
    problems = await refused(import_roster(sessionmaker, write(tmp_path, "m.csv", data)))
    assert len(problems) == 1
    assert problems[0].startswith(
        "row 3: the file is not text in UTF-8, UTF-16, Windows-1258 or Windows-1252"
    )
    assert "CSV UTF-8" in problems[0]


async def test_the_first_hundred_problems_are_listed_then_counted(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await import_org(sessionmaker, write(tmp_path, "org.csv", ORG))
    lines = ["unit_code,full_name,phone"]
    for n in range(150):
        lines.append(f"CDCS-MAY,Nguyễn Văn An,09123{n:05d}")
        lines.append(f"CDCS-XX,Nguyễn Văn Bình,08123{n:05d}")  # an unknown unit
    path = write(tmp_path, "m.csv", "\n".join(lines) + "\n")
    problems = await refused(import_roster(sessionmaker, path))
    assert len(problems) == 101
    assert problems[0] == "row 3: unknown unit_code 'CDCS-XX'"
    assert problems[99] == "row 201: unknown unit_code 'CDCS-XX'"
    assert problems[100] == "… and 50 more problem(s); the first 100 are listed above"
    assert await count(sessionmaker, Person) == 0
