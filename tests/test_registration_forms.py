"""The registration lists in the officers' familiar layout, read back with openpyxl."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from openpyxl.utils import column_index_from_string
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.flows.initiatives import FIELDS, field_label
from handlers.i18n import use_locale
from handlers.text import format_money
from storage.exporters import ExportError
from storage.models import Campaign, Registration, Title
from storage.registration_forms import (
    DATE_FORMAT,
    FIELD_LABELS,
    INDIVIDUAL_COLUMNS,
    MAX_TABLE_ROWS,
    MONEY_FORMAT,
    RegistrationForm,
    Sheet,
    build_form,
    export_form_xlsx,
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
        await export_form_xlsx(session, "TD2027", unit, kind, path)
    return load_workbook(path)


def table(sheet, first: int = 9) -> list[tuple]:
    """The rows of the table: from under the header to the signatures."""
    rows = []
    for r in sheet.iter_rows(min_row=first, values_only=True):
        if r[0] == "NGƯỜI LẬP BIỂU":
            break
        if any(r):
            rows.append(r)
    return rows


async def test_the_workbook_is_the_form_a_unit_files(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "dk.xlsx")
    assert workbook.sheetnames == ["Cá nhân", "Tập thể", "Sáng kiến", "Công trình"]

    people = workbook["Cá nhân"]
    merged = {str(r) for r in people.merged_cells.ranges}
    # The issuing body over the unit at the top left, the national motto at the top right,
    # the place and date under it (filled in by hand), as on every union paper.
    assert people["A1"].value == "TỔNG LIÊN ĐOÀN LAO ĐỘNG VIỆT NAM"
    assert people["A2"].value == "LĐLĐ TỈNH BẮC KẠN"  # the issuer when no --unit
    assert people["A2"].font.bold and people["A2"].alignment.horizontal == "center"
    assert people["C1"].value == "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
    assert people["C2"].value == "Độc lập – Tự do – Hạnh phúc"
    assert people["C2"].font.underline == "single"
    assert people["C3"].value == "…………, ngày …… tháng …… năm ……"
    assert {"A1:B1", "C1:F1", "C2:F2", "C3:F3"} <= merged
    # The title and the campaign over the form's width (not over the system columns).
    assert people["A5"].value == "DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM 2027"
    assert people["A5"].font.bold and people["A5"].alignment.horizontal == "center"
    assert "A5:F5" in merged
    assert people["A6"].value == "Phong trào thi đua năm 2027"
    assert people["A7"].value == "Cá nhân"
    header = next(people.iter_rows(min_row=8, max_row=8, values_only=True))
    assert header == (
        "STT",
        "Họ và tên",
        "Chức vụ – đơn vị",
        "Danh hiệu đăng ký",
        "Hình thức khen thưởng",
        "Ghi chú",
        "Mã đơn vị",
        "Số đăng ký",
        "Trạng thái",
        "Danh sách đơn vị",
    )
    assert all(cell.font.bold for cell in people[8])
    # The system columns stay right of the form, greyed, and out of the printed page.
    assert people["G8"].fill.fgColor.rgb.endswith("E7E6E6")
    assert people.print_area.startswith("'Cá nhân'!$A$1:$F$")
    # One row per person with all their titles (titles first, then awards), receipts and
    # states one per line in the same order; drafts and withdrawn ones are not listed.
    assert table(people) == [
        (
            1,
            "Nguyễn Thị Hoa",
            f"Tổ trưởng tổ may 1 – {GARMENT}",
            "Chiến sĩ thi đua cơ sở\nLao động tiên tiến",
            "Bằng khen của LĐLĐ tỉnh",
            None,
            "CDCS-MAY",
            "TD2027-000002\nTD2027-000001\nTD2027-000003",
            "Đã công nhận\nĐã đăng ký\nĐã đăng ký",  # each title's own state
            "Chưa gửi",  # beside them, the unit's list (nobody sent it)
        ),
        (
            2,
            "Trần Văn Bình",
            f"Công nhân tổ Cắt – {GARMENT}",
            "Lao động tiên tiến",
            None,
            None,
            "CDCS-MAY",
            "TD2027-000004",
            "Đã đăng ký",  # returned for completion is its list's business
            "Chưa gửi",
        ),
    ]
    assert all(isinstance(r[0], int) for r in table(people))
    # Hoa's row is tall enough for her three lines.
    assert people.row_dimensions[9].height >= 3 * 15
    # Signatures under the table: who drew it up, and the chair for the executive committee.
    rows = list(people.iter_rows(values_only=True))
    signatures = next(i for i, r in enumerate(rows) if r[0] == "NGƯỜI LẬP BIỂU")
    assert rows[signatures][2] == "TM. BAN CHẤP HÀNH"
    assert rows[signatures + 1][2] == "CHỦ TỊCH"
    assert rows[signatures + 2][0] == "(Ký, ghi rõ họ tên)"
    assert rows[signatures + 2][2] == "(Ký tên, đóng dấu)"
    # The header stays on screen and on every printed page; A4 landscape, fit to width.
    assert people.freeze_panes == "A9"
    assert people.print_title_rows == "$8:$8"
    assert people.page_setup.orientation == "landscape"
    assert int(people.page_setup.paperSize) == 9  # A4
    assert people.sheet_properties.pageSetUpPr.fitToPage
    # xlsxwriter leaves out fitToWidth="1": the default of the file format.
    assert people.page_setup.fitToWidth in (None, 1) and people.page_setup.fitToHeight == 0

    units = workbook["Tập thể"]
    assert units["A5"].value == "DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM 2027"
    assert units["A7"].value == "Tập thể"
    assert next(units.iter_rows(min_row=8, max_row=8, values_only=True))[:5] == (
        "STT",
        "Tên tập thể",
        "Danh hiệu đăng ký",
        "Hình thức khen thưởng",
        "Ghi chú",
    )
    assert [(r[1], r[2], r[3]) for r in table(units)] == [
        (GARMENT, "Tập thể lao động xuất sắc\nTập thể lao động tiên tiến", None),
        (SCHOOL, None, "Cờ thi đua của LĐLĐ tỉnh"),
    ]


async def test_initiatives_and_works_have_numbers_dates_and_totals(
    sessionmaker: Sessions, tmp_path: Path
):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "dk.xlsx")

    ideas = workbook["Sáng kiến"]
    assert ideas["A5"].value == "DANH SÁCH SÁNG KIẾN ĐĂNG KÝ NĂM 2027"
    header = next(ideas.iter_rows(min_row=8, max_row=8, values_only=True))
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
    assert ideas.cell(row=9, column=6).number_format == DATE_FORMAT
    assert ideas.cell(row=9, column=7).number_format == MONEY_FORMAT
    assert ideas.cell(row=11, column=7).number_format == MONEY_FORMAT
    assert ideas.cell(row=11, column=1).font.bold

    works = workbook["Công trình"]
    assert works["A5"].value == "DANH SÁCH CÔNG TRÌNH, SẢN PHẨM CHÀO MỪNG NĂM 2027"
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
        None,  # Ghi chú
        "CDCS-MAY",
        "TD2027-000013",
        "Đã đăng ký",
        "Chưa gửi",
    )
    assert rows[1][7] == "Không"
    # The summary's wording (domain.md §6), and the sum as a number beside it.
    assert rows[2][0] == "Tổng cộng: 02 công trình, tổng trị giá 1,65 tỷ đồng"
    assert rows[2][4] == 1_650_500_000
    assert works.cell(row=9, column=5).number_format == MONEY_FORMAT
    assert works.cell(row=9, column=6).is_date and works.cell(row=9, column=7).is_date


def width(sheet, letter: str) -> float:
    """A column's width; openpyxl reads neighbours of equal width as one range."""
    index = column_index_from_string(letter)
    for dimension in sheet.column_dimensions.values():
        if dimension.min <= index <= dimension.max:
            return dimension.width
    raise AssertionError(f"no width for column {letter}")


async def test_column_widths_fit_the_content(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "dk.xlsx")
    people = workbook["Cá nhân"]
    widths = {c: width(people, c) for c in "ABCDEFGHI"}
    assert widths["A"] < 8  # STT
    assert widths["B"] >= len("Nguyễn Thị Hoa")
    # Capped: a long "position – unit" wraps inside its cell instead of widening the page.
    assert 40 <= widths["C"] <= 50
    assert people["C9"].alignment.wrap_text
    # "Bằng khen của LĐLĐ tỉnh" fits on one line of the award column.
    assert widths["E"] >= len("Bằng khen của LĐLĐ tỉnh")
    assert widths["F"] >= 12  # room for a handwritten note
    assert widths["H"] >= len("TD2027-000001")
    works = workbook["Công trình"]
    assert width(works, "E") >= len("1,650,500,000")


async def test_one_kind_and_one_unit(sessionmaker: Sessions, tmp_path: Path):
    await make_scene(sessionmaker)
    workbook = await export(sessionmaker, tmp_path / "w.xlsx", "works", unit="CDCS-THPT")
    assert workbook.sheetnames == ["Công trình"]
    works = workbook["Công trình"]
    assert works["A2"].value == SCHOOL.upper()  # the --unit's name, under its parent's
    assert works["A1"].value == "CÔNG ĐOÀN KHU CÔNG NGHIỆP THANH BÌNH"
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


def test_a_list_longer_than_a_sheet_is_refused_not_cut(tmp_path: Path) -> None:
    # A nation's list has more people than a sheet has rows: the workbook is refused with
    # the reason, instead of a file whose last rows are silently missing.
    row = (1, "Nguyễn Văn An", "Công đoàn cơ sở", "Lao động tiên tiến", None, None, "CD", "R1",
           "Đã đăng ký", "Chưa gửi")  # fmt: skip
    form = RegistrationForm("TD2027", "Thi đua 2027", 2027, "Tổng Liên đoàn")
    form.sheets.append(
        Sheet("Cá nhân", "DANH SÁCH", None, INDIVIDUAL_COLUMNS, [row] * (MAX_TABLE_ROWS + 1))
    )
    target = tmp_path / "nation.xlsx"
    with pytest.raises(ExportError, match=r"'Cá nhân' would have 1,048,560 rows"):
        write_form_xlsx(form, target)
    assert not target.exists()


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


def _parts(path: Path) -> dict[str, bytes]:
    """A workbook's parts but its creation time."""
    with zipfile.ZipFile(path) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n != "docProps/core.xml"}


async def test_the_streamed_workbook_does_not_depend_on_the_batches(
    sessionmaker: Sessions, tmp_path: Path
):
    scene = await make_scene(sessionmaker)
    async with sessionmaker() as session, session.begin():
        campaign = await session.get(Campaign, scene.org.campaign.id)
        assert campaign is not None
        # Bình moved to the school during the campaign: a second title registered there.
        session.add(
            Registration(
                receipt_no="TD2027-000900",
                campaign_id=campaign.id,
                title_code="CO_TINH",
                is_collective=False,
                person_id=scene.binh.id,
                unit_id=scene.org.school.id,
            )
        )
    async with sessionmaker() as session:
        form = await build_form(session, "TD2027")
        # Every unit a batch of its own: rows are read and written a unit at a time.
        counts = await export_form_xlsx(
            session, "TD2027", None, "all", tmp_path / "streamed.xlsx", batch_size=1
        )
    write_form_xlsx(form, tmp_path / "held.xlsx")
    assert counts == form.counts()
    assert _parts(tmp_path / "streamed.xlsx") == _parts(tmp_path / "held.xlsx")
    # A person is one row with all their titles, wherever they registered them.
    people = table(load_workbook(tmp_path / "streamed.xlsx")["Cá nhân"])
    binh = [r for r in people if r[1] == "Trần Văn Bình"]
    assert len(binh) == 1
    assert binh[0][7] == "TD2027-000004\nTD2027-000900"
