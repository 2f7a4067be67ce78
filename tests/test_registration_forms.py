"""The registration lists in the officers' familiar layout, read back with openpyxl."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.flows.initiatives import FIELDS, field_label
from handlers.i18n import use_locale
from handlers.text import format_money
from storage.exporters import ExportError
from storage.models import Title
from storage.registration_forms import (
    DATE_FORMAT,
    FIELD_LABELS,
    MONEY_FORMAT,
    build_form,
    is_award,
    money_words,
    write_form_xlsx,
    write_sheet_csv,
)
from storage.registration_import import aliases, column_key, export_headers
from tests.registration_scene import OCCASION, make_scene

Sessions = async_sessionmaker[AsyncSession]

GARMENT = "Công đoàn cơ sở Công ty May Bắc Kạn"
SCHOOL = "Công đoàn Trường THPT Chợ Đồn"


async def export(sessions: Sessions, path: Path, kind: str = "all", unit: str | None = None):
    async with sessions() as session:
        form = await build_form(session, "TD2027", unit, kind)
    write_form_xlsx(form, path)
    return load_workbook(path)


def table(sheet, first: int = 6) -> list[tuple]:
    return [r for r in sheet.iter_rows(min_row=first, values_only=True) if any(r)]


async def test_the_workbook_has_the_familiar_layout(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "dk.xlsx")
    assert workbook.sheetnames == ["Cá nhân", "Tập thể", "Sáng kiến", "Công trình"]

    people = workbook["Cá nhân"]
    # Title, unit and campaign above the table, each merged over its width and centred.
    assert people["A1"].value == "DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM 2027"
    assert people["A1"].font.bold and people["A1"].alignment.horizontal == "center"
    assert people["A2"].value == "LĐLĐ tỉnh Bắc Kạn"  # the issuer when no --unit
    assert people["A3"].value == "Phong trào thi đua năm 2027"
    assert "A1:I1" in {str(r) for r in people.merged_cells.ranges}
    assert people["A4"].value == "Cá nhân"
    header = next(people.iter_rows(min_row=5, max_row=5, values_only=True))
    assert header == (
        "STT",
        "Họ và tên",
        "Chức vụ – đơn vị",
        "Danh hiệu đăng ký",
        "Hình thức khen thưởng",
        "Mã đơn vị",
        "Số đăng ký",
        "Trạng thái",
        "Danh sách đơn vị",
    )
    assert all(cell.font.bold for cell in people[5])
    # One row per registration; drafts and withdrawn ones are not on the list. Titles go in
    # "Danh hiệu", the Bằng khen in "Hình thức khen thưởng".
    assert table(people) == [
        (
            1,
            "Nguyễn Thị Hoa",
            f"Tổ trưởng tổ may 1 – {GARMENT}",
            "Chiến sĩ thi đua cơ sở",
            None,
            "CDCS-MAY",
            "TD2027-000002",
            "Đã công nhận",  # its own state (approved: the title recognised)
            "Chưa gửi",  # beside it, its unit's list (nobody sent it)
        ),
        (
            2,
            "Nguyễn Thị Hoa",
            f"Tổ trưởng tổ may 1 – {GARMENT}",
            "Lao động tiên tiến",
            None,
            "CDCS-MAY",
            "TD2027-000001",
            "Đã đăng ký",
            "Chưa gửi",
        ),
        (
            3,
            "Nguyễn Thị Hoa",
            f"Tổ trưởng tổ may 1 – {GARMENT}",
            None,
            "Bằng khen của LĐLĐ tỉnh",
            "CDCS-MAY",
            "TD2027-000003",
            "Đã đăng ký",
            "Chưa gửi",
        ),
        (
            4,
            "Trần Văn Bình",
            f"Công nhân tổ Cắt – {GARMENT}",
            "Lao động tiên tiến",
            None,
            "CDCS-MAY",
            "TD2027-000004",
            "Đã đăng ký",  # returned for completion is its list's business
            "Chưa gửi",
        ),
    ]
    assert all(isinstance(r[0], int) for r in table(people))
    # The header stays on screen and on every printed page; A4 landscape, fit to width.
    assert people.freeze_panes == "A6"
    assert people.print_title_rows == "$5:$5"
    assert people.page_setup.orientation == "landscape"
    assert int(people.page_setup.paperSize) == 9  # A4
    assert people.sheet_properties.pageSetUpPr.fitToPage
    assert people.page_setup.fitToWidth == 1 and people.page_setup.fitToHeight == 0

    units = workbook["Tập thể"]
    assert units["A1"].value == "DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM 2027"
    assert units["A4"].value == "Tập thể"
    assert next(units.iter_rows(min_row=5, max_row=5, values_only=True))[:4] == (
        "STT",
        "Tên tập thể",
        "Danh hiệu đăng ký",
        "Hình thức khen thưởng",
    )
    assert [(r[1], r[2], r[3]) for r in table(units)] == [
        (GARMENT, "Tập thể lao động xuất sắc", None),
        (GARMENT, "Tập thể lao động tiên tiến", None),
        (SCHOOL, None, "Cờ thi đua của LĐLĐ tỉnh"),
    ]


async def test_initiatives_and_works_have_numbers_dates_and_totals(
    sessionmaker: Sessions, tmp_path: Path
):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "dk.xlsx")

    ideas = workbook["Sáng kiến"]
    assert ideas["A1"].value == "DANH SÁCH SÁNG KIẾN ĐĂNG KÝ NĂM 2027"
    header = next(ideas.iter_rows(min_row=5, max_row=5, values_only=True))
    assert header[:7] == (
        "STT",
        "Tên sáng kiến",
        "Tác giả, đồng tác giả",
        "Đơn vị",
        "Lĩnh vực",
        "Ngày áp dụng",
        "Giá trị làm lợi (đồng)",
    )
    rows = table(ideas)
    assert rows[0][:7] == (
        1,
        "Cải tiến máy cắt vải tự động",
        "Nguyễn Thị Hoa; Trần Văn Bình; Phạm Thị Dung",
        GARMENT,
        "Kỹ thuật",
        datetime(2026, 3, 15),  # a real date cell
        120_000_000,  # a real number
    )
    assert rows[1][1:7] == (
        "Ứng dụng chuyển đổi số trong quản lý học sinh",
        "Lê Minh Châu",
        SCHOOL,
        "Chuyển đổi số, công nghệ thông tin",
        None,
        None,
    )
    assert rows[2][0] == "Tổng cộng: 02 sáng kiến, tổng giá trị làm lợi 120 triệu đồng"
    assert rows[2][6] == 120_000_000
    assert len(rows) == 3  # the withdrawn initiative is not listed
    assert ideas.cell(row=6, column=6).number_format == DATE_FORMAT
    assert ideas.cell(row=6, column=7).number_format == MONEY_FORMAT
    assert ideas.cell(row=8, column=7).number_format == MONEY_FORMAT
    assert ideas.cell(row=8, column=1).font.bold

    works = workbook["Công trình"]
    assert works["A1"].value == "DANH SÁCH CÔNG TRÌNH, SẢN PHẨM CHÀO MỪNG NĂM 2027"
    rows = table(works)
    assert rows[0] == (
        1,
        "Nhà văn hóa công nhân",
        GARMENT,
        OCCASION,
        1_200_000_000,
        datetime(2027, 3, 1),
        datetime(2027, 7, 20),
        "Có",
        "CDCS-MAY",
        "TD2027-000013",
        "Đã đăng ký",
        "Chưa gửi",
    )
    assert rows[1][7] == "Không"
    # The summary's wording (domain.md §6), and the sum as a number beside it.
    assert rows[2][0] == "Tổng cộng: 02 công trình, tổng trị giá 1,65 tỷ đồng"
    assert rows[2][4] == 1_650_500_000
    assert works.cell(row=6, column=5).number_format == MONEY_FORMAT
    assert works.cell(row=6, column=6).is_date and works.cell(row=6, column=7).is_date


async def test_column_widths_fit_the_content(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "dk.xlsx")
    people = workbook["Cá nhân"]
    widths = {c: people.column_dimensions[c].width for c in "ABCDEFGH"}
    assert widths["A"] < 8  # STT
    assert widths["B"] >= len("Nguyễn Thị Hoa")
    # Capped: a long "position – unit" wraps inside its cell instead of widening the page.
    assert 40 <= widths["C"] <= 50
    assert people["C6"].alignment.wrap_text
    assert widths["G"] >= len("TD2027-000001")
    works = workbook["Công trình"]
    assert works.column_dimensions["E"].width >= len("1,650,500,000")


async def test_one_kind_and_one_unit(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "w.xlsx", "works", unit="CDCS-THPT")
    assert workbook.sheetnames == ["Công trình"]
    works = workbook["Công trình"]
    assert works["A2"].value == SCHOOL  # the --unit's name
    rows = table(works)
    assert rows[0][1] == "Sân chơi cho con công nhân"
    assert rows[1][0] == "Tổng cộng: 01 công trình, tổng trị giá 450,5 triệu đồng"
    assert len(rows) == 2
    workbook = await export(sessionmaker, tmp_path / "t.xlsx", "titles", unit="CD-KCN")
    assert workbook.sheetnames == ["Cá nhân", "Tập thể"]


async def test_empty_lists_and_unknown_names(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    async with sessionmaker() as session:
        with pytest.raises(ExportError, match="unknown campaign 'TD2099'"):
            await build_form(session, "TD2099")
        with pytest.raises(ExportError, match="unknown unit code 'CD-XX'"):
            await build_form(session, "TD2027", "CD-XX")
        with pytest.raises(ExportError, match="unknown kind"):
            await build_form(session, "TD2027", None, "everything")
        form = await build_form(session, "TD2027", "CDCS-THPT", "initiatives")
    out = io.StringIO()
    write_sheet_csv(form.sheets[0], out)
    assert list(csv.reader(io.StringIO(out.getvalue())))[1][1:7] == [
        "Ứng dụng chuyển đổi số trong quản lý học sinh",
        "Lê Minh Châu",
        SCHOOL,
        "Chuyển đổi số, công nghệ thông tin",
        "",
        "",
    ]


async def test_csv_of_works_has_plain_numbers_and_vietnamese_dates(sessionmaker: Sessions):
    await make_scene(sessionmaker)
    async with sessionmaker() as session:
        form = await build_form(session, "TD2027", None, "works")
    out = io.StringIO()
    write_sheet_csv(form.sheets[0], out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][:5] == [
        "STT",
        "Tên công trình, sản phẩm",
        "Đơn vị thực hiện",
        "Chào mừng",
        "Giá trị (đồng)",
    ]
    assert rows[1][4:8] == ["1200000000", "01/03/2027", "20/07/2027", "Có"]
    assert len(rows) == 3  # no total row in a CSV: it would be read as a work


# --- the catalogue and the words, kept in line with the chat ---------------------------------


async def test_awards_and_titles_from_the_catalogue(sessionmaker: Sessions) -> None:
    async with sessionmaker() as session:
        catalogue = {t.code: t for t in await session.scalars(select(Title))}
    awards = {code for code, title in catalogue.items() if is_award(title)}
    assert awards == {"BK_TINH", "BK_TLD", "GK", "LDST", "CO_TINH", "CO_TLD", "CO_CP"}
    # An officer can say otherwise in the catalogue row.
    ldtt = catalogue["LDTT"]
    ldtt.rules = {"form": "award"}
    assert is_award(ldtt)


def test_field_labels_are_the_chats() -> None:
    with use_locale("vi"):
        assert {f: field_label(f) for f in FIELDS} == FIELD_LABELS


@pytest.mark.parametrize("amount", [0, 950_000, 80_000_000, 1_650_500_000, 44_900_000_000])
def test_money_words_are_the_chats(amount: int) -> None:
    assert money_words(amount) == format_money(amount, "vi")


@pytest.mark.parametrize("kind", ["titles", "initiatives", "works"])
def test_every_exported_column_is_read_back(kind: str) -> None:
    known = aliases(kind)
    assert [h for h in export_headers(kind) if column_key(h) not in known] == []
