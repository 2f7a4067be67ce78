"""The registration lists in the layout officers know (domain.md §6), as XLSX or CSV.

"DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM 2027", the unit and the campaign above a table
STT, Họ và tên, Chức vụ – đơn vị, Danh hiệu đăng ký, Hình thức khen thưởng; one sheet each
for individuals, collectives, initiatives and commemorative works, the last two with a total
row. Cells hold real numbers and dates (an officer sums and sorts them); only the display is
Vietnamese. The same columns are read back by :mod:`storage.registration_import`, so a list
exported here, edited in Excel and imported elsewhere keeps its meaning.

Drafts and withdrawn registrations are left out; chat ids and phone numbers are not on the
form and stay out.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, BinaryIO

from babel.numbers import format_decimal
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.counts import (
    LIST_STATE_LABELS,
    REGISTRATION_STATE_LABELS,
    initiatives_total,
    list_states,
    registration_state,
    works_total,
)
from storage.exporters import LISTED_STATUSES, ExportError, write_csv_row
from storage.models import (
    Campaign,
    Initiative,
    Person,
    Registration,
    Title,
    Unit,
    Work,
)
from storage.normalize import fold

TITLES, INITIATIVES, WORKS, ALL = "titles", "initiatives", "works", "all"
KINDS = (TITLES, INITIATIVES, WORKS)

# Number formats are stored in the file in en-US syntax ("," groups thousands) and shown with
# the separators of a locale. The [$-42A] tag makes that locale Vietnamese for the cell:
# LibreOffice then shows 1.234.567 whatever its own language; Excel shows the separators of
# the computer's regional settings (1.234.567 on a Vietnamese Windows). "#.##0" would be a
# decimal format, not Vietnamese grouping. Checked with LibreOffice in en-US and vi-VN.
MONEY_FORMAT = "[$-42A]#,##0"
DATE_FORMAT = "DD/MM/YYYY"
FONT_NAME = "Times New Roman"  # the font of Vietnamese administrative documents
FONT_SIZE = 12

# The initiative fields in the words of the form; the chat shows the same ones
# (handlers.flows.initiatives.field_label in Vietnamese; a test keeps them equal).
FIELD_LABELS: dict[str, str] = {
    "tech": "Kỹ thuật",
    "mgmt": "Quản lý",
    "saving": "Tiết kiệm, chống lãng phí",
    "safety": "An toàn vệ sinh lao động",
    "digital": "Chuyển đổi số, công nghệ thông tin",
    "other": "Khác",
}
YES, NO = "Có", "Không"

# Catalogue names that are forms of award (hình thức khen thưởng: conferred by a level)
# rather than emulation titles (danh hiệu thi đua: earned). domain.md §3 counts the flags
# (Cờ thi đua) among the awards, as the officers' summaries do.
_AWARD_PREFIXES = ("bang khen", "giay khen", "co thi dua", "bang lao dong sang tao")


def is_award(title: Title) -> bool:
    """Whether the catalogue entry goes in "Hình thức khen thưởng" rather than "Danh hiệu".

    Decided from the catalogue itself: ``rules: {form: award}`` (or ``title``) when an officer
    set it, else the name: Bằng khen…, Giấy khen…, Cờ thi đua…, Bằng Lao động sáng tạo… are
    awards; LĐTT, CSTĐ, TTLĐXS, GVN-ĐVN, CĐCS vững mạnh… are titles. The name, not the
    code, because officers add catalogue rows with codes of their own.
    """
    form = (title.rules or {}).get("form")
    if form in ("award", "title"):
        return form == "award"
    return fold(title.name).startswith(_AWARD_PREFIXES)


# --- the columns (also the names the import reads back) --------------------------------------

STT = "STT"
UNIT_CODE = "Mã đơn vị"
RECEIPT = "Số đăng ký"
STATUS = "Trạng thái"  # the row's own state (storage.counts): Đã đăng ký
LIST_STATUS = "Danh sách đơn vị"  # its unit list's: Chưa gửi / Chờ duyệt / Trả lại / Đã duyệt
TOTAL_LABEL = "Tổng cộng"


@dataclass(frozen=True)
class Column:
    header: str
    kind: str = "text"  # "text" (wraps), "short" (centred), "int", "money", "date"
    # Longer text wraps inside the cell instead of widening the page.
    max_width: int = 40


INDIVIDUAL_COLUMNS = (
    Column(STT, "int"),
    Column("Họ và tên", max_width=28),
    Column("Chức vụ – đơn vị", max_width=48),
    Column("Danh hiệu đăng ký", max_width=26),
    Column("Hình thức khen thưởng", max_width=26),
    Column(UNIT_CODE, "short", 16),
    Column(RECEIPT, "short", 16),
    Column(STATUS, max_width=15),
    Column(LIST_STATUS, max_width=15),
)
COLLECTIVE_COLUMNS = (
    Column(STT, "int"),
    Column("Tên tập thể", max_width=50),
    Column("Danh hiệu đăng ký", max_width=30),
    Column("Hình thức khen thưởng", max_width=30),
    Column(UNIT_CODE, "short", 16),
    Column(RECEIPT, "short", 16),
    Column(STATUS, max_width=15),
    Column(LIST_STATUS, max_width=15),
)
INITIATIVE_COLUMNS = (
    Column(STT, "int"),
    Column("Tên sáng kiến", max_width=40),
    Column("Tác giả, đồng tác giả", max_width=28),
    Column("Đơn vị", max_width=30),
    Column("Lĩnh vực", max_width=18),
    Column("Ngày áp dụng", "date"),
    Column("Giá trị làm lợi (đồng)", "money"),
    Column(UNIT_CODE, "short", 16),
    Column(RECEIPT, "short", 16),
    Column(STATUS, max_width=15),
    Column(LIST_STATUS, max_width=15),
)
WORK_COLUMNS = (
    Column(STT, "int"),
    Column("Tên công trình, sản phẩm", max_width=40),
    Column("Đơn vị thực hiện", max_width=30),
    Column("Chào mừng", max_width=30),
    Column("Giá trị (đồng)", "money"),
    Column("Bắt đầu", "date"),
    Column("Hoàn thành", "date"),
    Column("Gắn biển", "short", 9),
    Column(UNIT_CODE, "short", 16),
    Column(RECEIPT, "short", 16),
    Column(STATUS, max_width=15),
    Column(LIST_STATUS, max_width=15),
)

# Authors in one cell; names never contain ";" (nor ","), so either splits them back.
AUTHOR_SEPARATOR = "; "
POSITION_SEPARATOR = " – "


# --- the data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """One table of the form: what goes above it, its columns, rows and total."""

    name: str  # the sheet tab
    title: str
    section: str | None
    columns: tuple[Column, ...]
    rows: list[tuple[Any, ...]]
    # (label, money column index, amount) under the table, or None.
    total: tuple[str, int, int] | None = None


@dataclass
class RegistrationForm:
    campaign_code: str
    campaign_name: str
    year: int
    unit_name: str
    sheets: list[Sheet] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Rows per sheet name, for the command's one-line report."""
        return {sheet.name: len(sheet.rows) for sheet in self.sheets}


INDIVIDUAL_SHEET, COLLECTIVE_SHEET = "Cá nhân", "Tập thể"
INITIATIVE_SHEET, WORK_SHEET = "Sáng kiến", "Công trình"


def _titles_heading(year: int) -> str:
    return f"DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM {year}"


def money_words(amount: int) -> str:
    """44_900_000_000 -> "44,9 tỷ đồng" (as handlers.text.format_money says it in Vietnamese;
    storage cannot import handlers, a test keeps the two equal)."""
    for size, word in ((Decimal(1_000_000_000), "tỷ đồng"), (Decimal(1_000_000), "triệu đồng")):
        if amount >= size:
            value = (Decimal(amount) / size).quantize(Decimal("0.01")).normalize()
            return f"{format_decimal(value, format='#,##0.##', locale='vi')} {word}"
    return f"{format_decimal(amount, locale='vi')} đồng"


async def _root(session: AsyncSession, campaign: Campaign, unit_code: str | None) -> Unit:
    if unit_code is None:
        issuer = await session.get(Unit, campaign.issuer_unit_id)
        assert issuer is not None  # a foreign key
        return issuer
    root = await session.scalar(select(Unit).where(Unit.code == unit_code))
    if root is None:
        raise ExportError(f"unknown unit code {unit_code!r}")
    return root


class UnitNames:
    """Names of units and their ancestors, for sorting rows by their place in the tree."""

    def __init__(self) -> None:
        self.names: dict[int, str] = {}

    async def load(self, session: AsyncSession, units: Iterable[Unit]) -> None:
        wanted = {int(p) for u in units for p in u.path.strip("/").split("/") if p}
        ids = sorted(wanted - set(self.names))
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            rows = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(chunk)))
            self.names.update((uid, name) for uid, name in rows)

    def key(self, unit: Unit) -> list[str]:
        return [fold(self.names.get(int(p), "")) for p in unit.path.strip("/").split("/") if p]


def _state(status: str) -> str:
    """The row's own state in the form's words (its list's state is the next column)."""
    return REGISTRATION_STATE_LABELS[registration_state(status)]


def _listed(column: Any) -> Any:
    return column.in_([str(s) for s in LISTED_STATUSES])


async def build_form(
    session: AsyncSession, campaign_code: str, unit_code: str | None = None, kind: str = ALL
) -> RegistrationForm:
    """The form of a campaign for the whole tree (the issuer) or one unit's subtree.

    ``kind`` is ``titles`` (individuals and collectives), ``initiatives``, ``works`` or
    ``all``. Raises :class:`ExportError` for an unknown campaign, unit or kind.
    """
    if kind not in (*KINDS, ALL):
        raise ExportError(f"unknown kind {kind!r}; use one of {', '.join((*KINDS, ALL))}")
    campaign = await session.scalar(select(Campaign).where(Campaign.code == campaign_code))
    if campaign is None:
        raise ExportError(f"unknown campaign {campaign_code!r}")
    root = await _root(session, campaign, unit_code)
    form = RegistrationForm(campaign.code, campaign.name, campaign.year, root.name)
    tree = UnitNames()
    if kind in (TITLES, ALL):
        form.sheets.extend(await _title_sheets(session, campaign, root, tree))
    if kind in (INITIATIVES, ALL):
        form.sheets.append(await _initiative_sheet(session, campaign, root, tree))
    if kind in (WORKS, ALL):
        form.sheets.append(await _work_sheet(session, campaign, root, tree))
    return form


async def _title_sheets(
    session: AsyncSession, campaign: Campaign, root: Unit, tree: UnitNames
) -> list[Sheet]:
    registrations = list(
        await session.scalars(
            select(Registration)
            .join(Unit, Registration.unit_id == Unit.id)
            .where(
                Registration.campaign_id == campaign.id,
                _listed(Registration.status),
                Unit.path.startswith(root.path, autoescape=True),
            )
            .options(selectinload(Registration.person), selectinload(Registration.unit))
        )
    )
    await tree.load(session, (r.unit for r in registrations))
    codes = {r.title_code for r in registrations}
    titles = {t.code: t for t in await session.scalars(select(Title).where(Title.code.in_(codes)))}

    def cells(reg: Registration) -> tuple[str | None, str | None, tuple[bool, int]]:
        """(danh hiệu, hình thức khen thưởng, order) of the registration's title: a person's
        titles first, then awards, each from the highest level down (catalogue rank)."""
        title = titles.get(reg.title_code)
        if title is None:  # a code removed from the catalogue: still listed, as its code
            return reg.title_code, None, (False, 1000)
        if is_award(title):
            return None, title.name, (True, title.rank)
        return title.name, None, (False, title.rank)

    individuals: list[tuple[Any, tuple[Any, ...]]] = []
    collectives: list[tuple[Any, tuple[Any, ...]]] = []
    lists = await list_states(session, campaign.id, {r.unit for r in registrations})
    for reg in registrations:
        title, award, order = cells(reg)
        status = _state(reg.status)
        list_status = LIST_STATE_LABELS[lists[reg.unit.id]]
        person = None if reg.is_collective else reg.person
        if person is None:
            unit_row = (
                reg.unit.name,
                title,
                award,
                reg.unit.code,
                reg.receipt_no,
                status,
                list_status,
            )
            collectives.append(
                ((tree.key(reg.unit), order, reg.title_code, reg.receipt_no), unit_row)
            )
            continue
        where = (
            f"{person.position}{POSITION_SEPARATOR}{reg.unit.name}"
            if person.position
            else reg.unit.name
        )
        person_row = (
            person.full_name,
            where,
            title,
            award,
            reg.unit.code,
            reg.receipt_no,
            status,
            list_status,
        )
        key = (tree.key(reg.unit), fold(person.full_name), person.id, order, reg.receipt_no)
        individuals.append((key, person_row))
    heading = _titles_heading(campaign.year)
    return [
        Sheet(
            INDIVIDUAL_SHEET,
            heading,
            "Cá nhân",
            INDIVIDUAL_COLUMNS,
            _numbered(individuals),
        ),
        Sheet(
            COLLECTIVE_SHEET,
            heading,
            "Tập thể",
            COLLECTIVE_COLUMNS,
            _numbered(collectives),
        ),
    ]


def _numbered(keyed: list[tuple[Any, tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    keyed.sort(key=lambda pair: pair[0])
    return [(number, *row) for number, (_key, row) in enumerate(keyed, start=1)]


async def _units(session: AsyncSession, ids: Iterable[int]) -> dict[int, Unit]:
    wanted = sorted(set(ids))
    found: dict[int, Unit] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        found.update(
            (u.id, u) for u in await session.scalars(select(Unit).where(Unit.id.in_(chunk)))
        )
    return found


async def _initiative_sheet(
    session: AsyncSession, campaign: Campaign, root: Unit, tree: UnitNames
) -> Sheet:
    initiatives = list(
        await session.scalars(
            select(Initiative)
            .join(Unit, Initiative.unit_id == Unit.id)
            .where(
                Initiative.campaign_id == campaign.id,
                _listed(Initiative.status),
                Unit.path.startswith(root.path, autoescape=True),
            )
            .options(selectinload(Initiative.authors))
        )
    )
    units = await _units(session, (i.unit_id for i in initiatives))
    await tree.load(session, units.values())
    lists = await list_states(session, campaign.id, units.values())
    person_ids = [i.person_id for i in initiatives if i.person_id is not None]
    people = {
        p.id: p for p in await session.scalars(select(Person).where(Person.id.in_(person_ids)))
    }
    keyed: list[tuple[Any, tuple[Any, ...]]] = []
    for item in initiatives:
        unit = units[item.unit_id]
        registrant = people.get(item.person_id) if item.person_id is not None else None
        names = [registrant.full_name] if registrant else []
        names += [a.name for a in item.authors]
        row = (
            item.name,
            AUTHOR_SEPARATOR.join(names),
            unit.name,
            FIELD_LABELS.get(item.field, item.field),
            item.applied_on,
            item.benefit,
            unit.code,
            item.receipt_no,
            _state(item.status),
            LIST_STATE_LABELS[lists[unit.id]],
        )
        keyed.append(((tree.key(unit), fold(item.name), item.receipt_no), row))
    rows = _numbered(keyed)
    # The total row says what every count says (storage.counts), not a sum of its own.
    count, total = await initiatives_total(session, campaign.id, root.path)
    return Sheet(
        INITIATIVE_SHEET,
        f"DANH SÁCH SÁNG KIẾN ĐĂNG KÝ NĂM {campaign.year}",
        None,
        INITIATIVE_COLUMNS,
        rows,
        (
            f"{TOTAL_LABEL}: {_count(count)} sáng kiến, tổng giá trị làm lợi {money_words(total)}",
            _money_column(INITIATIVE_COLUMNS),
            total,
        ),
    )


async def _work_sheet(
    session: AsyncSession, campaign: Campaign, root: Unit, tree: UnitNames
) -> Sheet:
    works = list(
        await session.scalars(
            select(Work)
            .join(Unit, Work.unit_id == Unit.id)
            .where(
                Work.campaign_id == campaign.id,
                _listed(Work.status),
                Unit.path.startswith(root.path, autoescape=True),
            )
            .options(selectinload(Work.unit))
        )
    )
    await tree.load(session, (w.unit for w in works))
    lists = await list_states(session, campaign.id, {w.unit for w in works})
    keyed: list[tuple[Any, tuple[Any, ...]]] = []
    for work in works:
        row = (
            work.name,
            work.unit.name,
            work.occasion,
            work.value,
            work.starts_on,
            work.ends_on,
            YES if work.plaque_requested else NO,
            work.unit.code,
            work.receipt_no,
            _state(work.status),
            LIST_STATE_LABELS[lists[work.unit.id]],
        )
        keyed.append(((tree.key(work.unit), work.starts_on, fold(work.name), work.receipt_no), row))
    rows = _numbered(keyed)
    count, total = await works_total(session, campaign.id, root.path)
    label = f"{TOTAL_LABEL}: {_count(count)} công trình, tổng trị giá {money_words(total)}"
    return Sheet(
        WORK_SHEET,
        f"DANH SÁCH CÔNG TRÌNH, SẢN PHẨM CHÀO MỪNG NĂM {campaign.year}",
        None,
        WORK_COLUMNS,
        rows,
        (label, _money_column(WORK_COLUMNS), total),
    )


def _money_column(columns: Sequence[Column]) -> int:
    """The 1-based index of the (only) money column: where the total goes."""
    return next(i for i, c in enumerate(columns, start=1) if c.kind == "money")


def _count(value: int) -> str:
    """Counts the way the summaries write them: "02", "17", "1.445"."""
    return f"0{value}" if 0 <= value < 10 else format_decimal(value, locale="vi")


# --- writing -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


def write_sheet_csv(sheet: Sheet, stream: IO[str]) -> None:
    """One table as CSV: the header and the rows (no heading, no total), amounts as plain
    whole numbers and dates as dd/mm/yyyy, which every spreadsheet and the import read back.

    Open files with ``encoding="utf-8-sig"`` so that Excel reads the Vietnamese letters.
    """
    write_csv_row(stream, [c.header for c in sheet.columns])
    for row in sheet.rows:
        # A name typed as "=..." stays text in a spreadsheet (the import removes the guard).
        write_csv_row(stream, [_text(v) for v in row])


LINE_HEIGHT = 15.75  # points per line of 12 pt text, as Excel sizes rows
BOLD = 1.1  # bold letters are about a tenth wider
_SPACE = 0.55
_NARROW = frozenset("iljtfr.,;:'!|()[]")
_WIDE = frozenset("mwMW")


def _char_width(ch: str) -> float:
    """A character of Times New Roman 12 pt in Excel's width unit (the "0" of Calibri 11).

    Measured roughly on LibreOffice's rendering: Vietnamese text runs about 1.2 characters
    per unit, capitals and m/w wider, i/l/t narrower; accents do not change the width.
    """
    if ch.isspace():
        return _SPACE
    base = unicodedata.normalize("NFD", ch)[0]
    if base in _NARROW:
        return 0.6
    if base in _WIDE:
        return 1.4
    if base.isupper():
        return 1.25
    if base.isdigit():
        return 0.95
    return 0.85


def text_width(text: str, *, bold: bool = False) -> float:
    return sum(_char_width(ch) for ch in text) * (BOLD if bold else 1)


def _lines(text: str, width: float, *, bold: bool = False) -> int:
    """How many lines ``text`` takes when wrapped in a column ``width`` units wide.

    LibreOffice keeps the row heights a file gives (it does not re-measure rows on opening
    an XLSX), so wrapped cells need their height written or the lines overlap.
    """
    room = max(1.0, width - 1.5)  # the cell's inner padding
    lines, used = 1, 0.0
    for word in text.split():
        size = text_width(word, bold=bold)
        if used and used + _SPACE + size <= room:
            used += _SPACE + size
            continue
        if used:
            lines += 1
        # From the start of a line; a word longer than the line is broken over several.
        extra = int((size - 1e-9) // room)
        lines += extra
        used = size - extra * room
    return lines


def _width(column: Column, values: Sequence[Any]) -> float:
    # Headers wrap, so only their longest word must fit; content up to the column's cap.
    longest_word = max(text_width(word, bold=True) for word in column.header.split())
    content = max((text_width(_text(v)) for v in values), default=0.0)
    if column.kind == "money":
        content = max((text_width(f"{v:,}") for v in values if isinstance(v, int)), default=0.0)
    elif column.kind == "date":
        content = text_width("00/00/0000")
    return round(min(max(content, longest_word, 4) + 2, column.max_width + 2), 1)


def write_form_xlsx(form: RegistrationForm, target: str | Path | BinaryIO) -> None:
    """The form as a workbook, one sheet per table, ready to print on A4 landscape."""
    # Imported here: openpyxl costs memory the running bot should not pay for.
    from openpyxl import Workbook

    workbook = Workbook()
    default = workbook.active
    if default is not None:
        workbook.remove(default)
    for sheet in form.sheets:
        _write_sheet(workbook, form, sheet)
    workbook.save(target)


HEADER_ROW = 5  # title, unit, campaign, section label, then the header


def _write_sheet(workbook: Any, form: RegistrationForm, spec: Sheet) -> None:
    from openpyxl.styles import Alignment, Border, Font, Side
    from openpyxl.utils import get_column_letter
    from openpyxl.worksheet.properties import PageSetupProperties

    sheet = workbook.create_sheet(spec.name)
    last = len(spec.columns)
    last_letter = get_column_letter(last)

    def font(**kwargs: Any) -> Any:
        return Font(name=FONT_NAME, size=kwargs.pop("size", FONT_SIZE), **kwargs)

    centre = Alignment(horizontal="center", vertical="center", wrap_text=True)
    heading = (
        (spec.title, font(bold=True, size=14)),
        (form.unit_name, font(bold=True)),
        (form.campaign_name, font(italic=True)),
    )
    for row, (text, style) in enumerate(heading, start=1):
        sheet.merge_cells(f"A{row}:{last_letter}{row}")
        cell = sheet.cell(row=row, column=1, value=text)
        cell.font = style
        cell.alignment = centre
    if spec.section:
        cell = sheet.cell(row=4, column=1, value=spec.section)
        cell.font = font(bold=True)

    widths: list[float] = []
    for index, column in enumerate(spec.columns, start=1):
        shown = [r[index - 1] for r in spec.rows]
        if spec.total is not None and index == spec.total[1]:
            shown.append(spec.total[2])
        widths.append(_width(column, shown))
        sheet.column_dimensions[get_column_letter(index)].width = widths[-1]

    def height(texts: Sequence[tuple[Any, float]], *, bold: bool = False) -> float:
        return LINE_HEIGHT * max(
            _lines(v, w, bold=bold) if isinstance(v, str) else 1 for v, w in texts
        )

    thin = Side(style="thin")
    border = Border(left=thin, right=thin, top=thin, bottom=thin)
    for index, column in enumerate(spec.columns, start=1):
        cell = sheet.cell(row=HEADER_ROW, column=index, value=column.header)
        cell.font = font(bold=True)
        cell.alignment = centre
        cell.border = border
    header = [(c.header, w) for c, w in zip(spec.columns, widths, strict=True)]
    sheet.row_dimensions[HEADER_ROW].height = height(header, bold=True)

    alignments = {
        "int": Alignment(horizontal="center", vertical="top"),
        "short": Alignment(horizontal="center", vertical="top"),
        "date": Alignment(horizontal="center", vertical="top"),
        "money": Alignment(horizontal="right", vertical="top"),
        "text": Alignment(horizontal="left", vertical="top", wrap_text=True),
    }
    body = font()
    for offset, values in enumerate(spec.rows, start=1):
        row = HEADER_ROW + offset
        for index, (column, value) in enumerate(zip(spec.columns, values, strict=True), start=1):
            cell = sheet.cell(row=row, column=index, value=value)
            if isinstance(value, str):
                cell.data_type = "s"  # "=..." typed in a chat is text, not a formula
            cell.font = body
            cell.border = border
            cell.alignment = alignments[column.kind]
            if column.kind == "money":
                cell.number_format = MONEY_FORMAT
            elif column.kind == "date":
                cell.number_format = DATE_FORMAT
        sheet.row_dimensions[row].height = height(list(zip(values, widths, strict=True)))

    if spec.total is not None:
        label, money_index, amount = spec.total
        row = HEADER_ROW + len(spec.rows) + 1
        # The label spans the columns left of the amount, so the long sentence fits.
        sheet.merge_cells(start_row=row, start_column=1, end_row=row, end_column=money_index - 1)
        cell = sheet.cell(row=row, column=1, value=label)
        cell.font = font(bold=True)
        cell.alignment = Alignment(horizontal="left", vertical="center", wrap_text=True)
        money = sheet.cell(row=row, column=money_index, value=amount)
        money.font = font(bold=True)
        money.number_format = MONEY_FORMAT
        money.alignment = alignments["money"]
        for index in range(1, last + 1):
            sheet.cell(row=row, column=index).border = border
        span = sum(widths[: money_index - 1])
        sheet.row_dimensions[row].height = height([(label, span)], bold=True)

    # The header stays in view while scrolling and is printed on every page.
    sheet.freeze_panes = f"A{HEADER_ROW + 1}"
    sheet.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    sheet.page_setup.orientation = "landscape"
    sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    # Fit every column on the page width; as many pages down as the rows need.
    sheet.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    sheet.page_setup.fitToWidth = 1
    sheet.page_setup.fitToHeight = 0
    sheet.print_options.horizontalCentered = True
    sheet.page_margins.left = sheet.page_margins.right = 0.4
    # Room under the table for the page number: LibreOffice clips a footer squeezed into the
    # default 0.3" between the footer line and the bottom margin.
    sheet.page_margins.top = 0.6
    sheet.page_margins.bottom = 0.8
    sheet.page_margins.footer = 0.3
    sheet.oddFooter.center.text = "Trang &P/&N"
    sheet.oddFooter.center.font = f"{FONT_NAME},Regular"
    sheet.oddFooter.center.size = 10
