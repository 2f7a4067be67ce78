"""Import registrations made outside the bot: the Excel (or CSV) lists units still send.

Reads the columns ``thidua export registrations`` writes (the familiar form, with its title
rows and total row, or the flat CSV), and smaller hand-made files. Minimal columns (header
names in Vietnamese as on the form, or these English names; case and accents do not matter):

* titles: ``unit_code`` or ``unit_name`` (or "Chức vụ – đơn vị"), ``full_name``, ``title``
  (code, short name or full name; a "Hình thức khen thưởng" column is read too), optional
  ``phone``, ``position``, ``status``, ``commitment``. A collective registration is a row
  of a sheet with "Tên tập thể" (the unit's name) instead of "Họ và tên", or a row whose
  ``kind`` column says "Tập thể".
* initiatives: ``name``, ``author`` (the registering author first, co-authors after it,
  separated by ";" or ","), ``unit_code`` or ``unit_name``, optional ``field`` (empty:
  Khác), ``applied_on``, ``benefit``, ``description``, ``phone``, ``status``.
* works: ``name``, ``unit_code`` or ``unit_name``, ``occasion``, ``value``, ``start``,
  ``finish``, optional ``plaque`` (có/không; empty: không), ``status``.

Every row is checked with the rules the chat applies, and the file is imported whole or not
at all: :class:`~storage.importers.ImportFailed` names each bad row and why (the first
:data:`~storage.importers.MAX_LISTED`, then a count). Decisions:

* After the registration deadline the import is refused, as the chat refuses; an officer
  recording lists received on paper before the deadline passes ``allow_late`` and the
  import goes through with a warning (and ``late`` in the audit log).
* People are matched by phone, else by name within the row's unit (and the units below it);
  someone not found is added to the roster and named in the summary.
* The same registration twice (in the file, or already in the database, drafts included)
  is refused: a person's title, a unit's collective title, an author's initiative of the
  same name, a unit's work of the same name. Importing the same file twice is thus harmless.
* The "Trạng thái" column is the row's own state: Đã đăng ký (or empty), or Đã công nhận (a
  title recognised, status ``approved``). Chờ duyệt, Đã duyệt and Trả lại name a unit
  *list's* state (storage.counts): such rows are imported as registered, never as achieved
  titles. Drafts and withdrawn rows cannot be imported. The lists themselves (and the
  export's "Danh sách đơn vị" column) are marked only when asked (``lists="sent"``: waiting
  for approval, ``"approved"``), so a province moving from Excel is not shown every unit
  "Chưa gửi" while the upper level holds its lists; the summary says what was done.
* Imported rows get new receipt numbers of the campaign; the file's own number, if any, is
  kept in the audit entry.

Eligibility notes (CSTĐCS needs LĐTT…) are advice in the chat, not refusals, and are not
checked here. No commits: the caller owns the transaction.

Streams, as the roster import does (storage.importers, storage.bulk): the file is read a row
at a time through storage.tables (every hostile-file refusal applies), :data:`BATCH` rows
are checked at a time against what the database holds for them (units, the people with
their phones, the rosters of their units, a few at a time), and the rows that pass are
copied into a temporary staging table (``COPY`` on PostgreSQL, ``executemany`` on SQLite).
The checks that need the whole file (the same registration twice, in the file or already
in the database) are statements over that table, and the writing reads it back a page at a
time. Memory does not grow with the number of rows, only with the units named and the
people the file adds to the roster.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import json
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, overload

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    Integer,
    MetaData,
    Text,
    func,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import Table as SqlTable
from sqlalchemy.ext.asyncio import AsyncSession

from storage.bulk import create_stage, insert_rows, is_postgresql
from storage.campaigns import campaign_occasions, works_close
from storage.counts import LIST_STATE_LABELS, list_units
from storage.exporters import unguard_formula
from storage.importers import (
    _MOBILE_STARTS,
    BATCH,
    MAX_LISTED,
    VIA_IMPORT,
    ImportFailed,
    audit_entry,
)
from storage.models import (
    AuditEntry,
    Campaign,
    Initiative,
    InitiativeAuthor,
    Person,
    Registration,
    RegistrationStatus,
    Role,
    SubmissionStatus,
    Title,
    TitleTarget,
    Unit,
    UnitRole,
    UnitSubmission,
    Work,
)
from storage.normalize import Invalid, clean, fold, parse_date, parse_money, parse_name, parse_phone
from storage.registration_forms import (
    COLLECTIVE_COLUMNS,
    FIELD_LABELS,
    INDIVIDUAL_COLUMNS,
    INITIATIVE_COLUMNS,
    INITIATIVES,
    KINDS,
    PREPARER,
    SIGNER_FOR,
    TITLES,
    TOTAL_LABEL,
    WORK_COLUMNS,
    WORKS,
    UnitNames,
)
from storage.repo import LIVE_STATUSES, ancestor_ids, campaign_by_id, campaign_end
from storage.tables import (
    DEFAULT_LIMITS,
    Limits,
    TableError,
    iter_csv,
    iter_sheet,
    open_workbook,
    table_kind,
)
from storage.types import Progress, utcnow

SOURCE_IMPORT = "import"

# The chat's limits (handlers/flows): the same bounds for what a file brings in.
MAX_NAME = 300
MIN_NAME = 3
MAX_DESCRIPTION = 1000
MAX_COMMITMENT = 500
MAX_COAUTHORS = 10
MAX_POSITION = 200
# How far down the title rows of a form the header may be.
HEADER_SEARCH_ROWS = 30
_CHUNK = 1000
# People of the rosters read for matching by name, kept at most (the least recently used
# units' rosters are read again when needed): about 25 MB.
ROSTER_CACHE = 100_000
# New people listed by name in the summary; the rest are counted (all are in the audit log).
NEW_PEOPLE_LISTED = MAX_LISTED
# What ``lists`` may ask of the imported units' lists (``thidua import registrations --lists``).
LISTS_SENT, LISTS_APPROVED = "sent", "approved"
LIST_MARKS = {LISTS_SENT: SubmissionStatus.PENDING, LISTS_APPROVED: SubmissionStatus.APPROVED}

# Folded once per distinct text: unit names, titles, states and people's names repeat.
_fold = functools.lru_cache(maxsize=1 << 16)(fold)
_parse_name = functools.lru_cache(maxsize=1 << 16)(parse_name)


class CampaignChoiceError(ValueError):
    """No campaign given and none can be chosen; the message says which ones exist."""


# --- columns -------------------------------------------------------------------------------


def column_key(text: str) -> str:
    """ "Chức vụ – đơn vị" / "chuc_vu_don_vi" / "Chức vụ - Đơn vị" -> "chuc_vu_don_vi"."""
    return re.sub(r"[^a-z0-9]+", "_", fold(text)).strip("_")


_UNIT_ALIASES = {
    "unit_code": ("ma_don_vi", "unit_code", "ma_dv"),
    "unit_name": ("don_vi", "unit", "unit_name", "ten_don_vi"),
    "unit_path": ("thuoc_duong_dan_don_vi", "unit_path"),
    "position_unit": ("chuc_vu_don_vi", "position_unit"),
    "position": ("chuc_vu", "position"),
    "phone": ("dien_thoai", "so_dien_thoai", "phone", "sdt"),
    "receipt": ("so_dang_ky", "receipt", "receipt_no", "ma_bien_nhan", "so_dang_ky_ma_bien_nhan"),
    "status": ("trang_thai", "status"),
    # Read and ignored: the row number, notes, and what the bot sets itself.
    "ignored": (
        "stt",
        "tt",
        "so_tt",
        "ghi_chu",
        "note",
        "notes",
        "nguon",
        "source",
        "ngay_dang_ky",
        "ngay_cap_nhat",
        "created",
        "updated",
        # The unit list's state (Chờ duyệt, Đã duyệt…): an import marks lists only when
        # asked to (``lists``), not from what a file says about another database.
        "danh_sach_don_vi",
        "list_status",
    ),
}
_KIND_ALIASES: dict[str, dict[str, tuple[str, ...]]] = {
    TITLES: {
        "full_name": ("ho_va_ten", "ho_ten", "full_name", "ten_ca_nhan"),
        # The flat CSV export: a person's name, or the unit's for a collective row.
        "name_or_unit": ("ho_va_ten_tap_the",),
        "collective_name": ("ten_tap_the", "tap_the", "collective"),
        "kind": ("ca_nhan_tap_the", "doi_tuong", "kind", "loai"),
        "title": (
            "danh_hieu_dang_ky",
            "danh_hieu",
            "danh_hieu_thi_dua",
            "title",
            "title_name",
            "danh_hieu_hinh_thuc_khen_thuong",
        ),
        "title_code": ("ma_danh_hieu", "title_code"),
        "award": ("hinh_thuc_khen_thuong", "khen_thuong", "award"),
        "commitment": ("cam_ket", "noi_dung_cam_ket", "commitment"),
    },
    INITIATIVES: {
        "name": ("ten_sang_kien", "ten_sang_kien_kinh_nghiem", "sang_kien", "name"),
        "authors": (
            "tac_gia_dong_tac_gia",
            "tac_gia",
            "author",
            "authors",
            "ho_va_ten",
            "full_name",
        ),
        "coauthors": ("dong_tac_gia", "coauthors"),
        "field": ("linh_vuc", "field"),
        "description": ("mo_ta", "mo_ta_tom_tat", "noi_dung_tom_tat", "description"),
        "applied": ("ngay_ap_dung", "ngay_ap_dung_lan_dau", "applied", "applied_on"),
        "benefit": ("gia_tri_lam_loi_dong", "gia_tri_lam_loi", "benefit"),
    },
    WORKS: {
        "name": ("ten_cong_trinh_san_pham", "ten_cong_trinh", "cong_trinh", "name"),
        "unit_name": ("don_vi_thuc_hien",),
        "occasion": ("chao_mung", "occasion", "dip"),
        "value": ("gia_tri_dong", "gia_tri", "tri_gia", "value"),
        "start": ("bat_dau", "ngay_bat_dau", "khoi_cong", "start"),
        "finish": ("hoan_thanh", "ngay_hoan_thanh", "ket_thuc", "finish"),
        "plaque": ("gan_bien", "de_nghi_gan_bien", "plaque"),
    },
}
_UNIT_FIELDS = ("unit_code", "unit_name", "position_unit")
# Columns a header must have to be read as a list of that kind (any one of each group).
_REQUIRED: dict[str, tuple[tuple[str, ...], ...]] = {
    TITLES: (
        ("title", "title_code", "award"),
        (*_UNIT_FIELDS, "collective_name", "name_or_unit"),
        ("full_name", "name_or_unit", "collective_name"),
    ),
    INITIATIVES: (("name",), ("authors",), _UNIT_FIELDS),
    WORKS: (("name",), _UNIT_FIELDS, ("occasion",), ("value",), ("start",), ("finish",)),
}
# What identifies a sheet as that kind (one of each group): a workbook of all kinds has one
# sheet each, and "Họ và tên" alone (the authors' column) must not make the individuals'
# sheet a list of initiatives.
_IDENTIFYING: dict[str, tuple[tuple[str, ...], ...]] = {
    TITLES: (("title", "title_code", "award"),),
    INITIATIVES: (("name",), ("authors", "field", "benefit", "applied")),
    WORKS: (("name",), ("occasion", "value", "plaque")),
}
MINIMAL_COLUMNS = {
    TITLES: "unit_code or unit_name, full_name (or Tên tập thể), title, [phone], [position]",
    INITIATIVES: (
        "name, author, unit_code or unit_name, [field], [applied_on], [benefit], [description]"
    ),
    WORKS: "name, unit_code or unit_name, occasion, value, start, finish, [plaque]",
}


def aliases(kind: str) -> dict[str, str]:
    """Header key -> field for one kind of list."""
    table: dict[str, str] = {}
    for name, keys in (*_UNIT_ALIASES.items(), *_KIND_ALIASES[kind].items()):
        for key in keys:
            table[key] = name
    return table


def export_headers(kind: str) -> list[str]:
    """The column headers the export writes for ``kind`` (all must be readable)."""
    columns = {
        TITLES: (*INDIVIDUAL_COLUMNS, *COLLECTIVE_COLUMNS),
        INITIATIVES: INITIATIVE_COLUMNS,
        WORKS: WORK_COLUMNS,
    }[kind]
    return [c.header for c in columns]


# --- reading -------------------------------------------------------------------------------

Rows = Iterable[tuple[int, Sequence[Any]]]


@dataclass
class Table:
    """The raw cells of one sheet (or of a CSV file), each row with its number as shown."""

    sheet: str | None
    rows: Sequence[tuple[int, Sequence[Any]]]


@dataclass(frozen=True)
class _Source:
    """One table of a file: its sheet's name, and its rows read from the top at each call
    (the header is looked for first, then the rows under it are read as they are checked)."""

    sheet: str | None
    rows: Callable[[], Rows]


@contextmanager
def _opened(path: Path, limits: Limits) -> Iterator[list[_Source]]:
    """Every sheet of an XLSX workbook, or the one table of a CSV file, read a row at a time
    through storage.tables: the same early refusals as the roster import (zip sizes, row
    cap, malformed CSV or XML, encodings), raised as TableError while reading."""
    if table_kind(path) == "csv":
        yield [_Source(None, lambda: iter_csv(path, limits))]
        return
    workbook = open_workbook(path, limits)
    try:
        yield [
            _Source(sheet.title, functools.partial(iter_sheet, sheet, limits))
            for sheet in workbook.worksheets
        ]
    finally:
        workbook.close()


def _close(rows: Any) -> None:
    # A generator left half-read (the header search, a table ended by its total row) lets
    # go of its file now, not when it is collected.
    close = getattr(rows, "close", None)
    if close is not None:
        close()


def _text(value: Any) -> str:
    """A cell as the text an officer sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        return unguard_formula(clean(value))
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    # Our CSV exports guard "=..." with an apostrophe so spreadsheets keep it as text.
    return unguard_formula(clean(str(value)))


@dataclass(slots=True)
class _Line:
    """One data row: its place in the file and its cells by field (raw, and as text)."""

    table: int
    sheet: str | None
    number: int
    values: dict[str, Any]
    texts: dict[str, str]
    columns: frozenset[str]

    def text(self, name: str) -> str:
        return self.texts.get(name, "")

    def parts(self, name: str) -> list[str]:
        """A cell holding one value per line (the form lists all of a person's titles, their
        receipts and states in one row), or several separated by ";"."""
        raw = self.values.get(name)
        if not isinstance(raw, str):
            return [self.text(name)] if self.text(name) else []
        if "\n" not in raw and ";" not in raw:
            return [self.text(name)] if self.text(name) else []
        return [t for t in (_text(p) for p in re.split(r"[\n;]", raw)) if t]


class _Problems:
    """Problems in file order, (table, row) then as found; a general problem has row 0.
    Only the first :data:`MAX_LISTED` are kept, and all are counted: memory does not grow
    with a file that has a problem on every one of its million rows."""

    def __init__(self) -> None:
        self.items: list[tuple[int, int, int, str]] = []
        self.total = 0
        self.several_tables = False

    def add(self, line: _Line | None, text: str) -> None:
        if line is None:
            self._keep(-1, 0, text)
        else:
            self.add_at(line.table, line.number, line.sheet, text)

    def add_at(self, table: int, number: int, sheet: str | None, text: str) -> None:
        """A problem of row ``number`` of table ``table`` (of sheet ``sheet``)."""
        where = f"row {number}"
        if self.several_tables and sheet:
            where += f" of sheet {sheet}"
        self._keep(table, number, f"{where}: {text}")

    def _keep(self, table: int, number: int, text: str) -> None:
        self.total += 1
        self.items.append((table, number, self.total, text))
        if len(self.items) > 4 * MAX_LISTED:
            self.items.sort()
            del self.items[MAX_LISTED:]

    def __len__(self) -> int:
        return self.total

    def raise_if_any(self) -> None:
        if not self.total:
            return
        failed = ImportFailed([])
        # Sheet by sheet, then top down: the officer fixes the file in reading order.
        self.items.sort()
        listed = [text for *_key, text in self.items[:MAX_LISTED]]
        if self.total > len(listed):
            more = self.total - len(listed)
            listed.append(
                f"… and {more:,} more problem(s); the first {MAX_LISTED} are listed above"
            )
        failed.problems = listed
        failed.total = self.total
        failed.args = ("; ".join(failed.problems),)
        raise failed


def _header(cells: Sequence[Any], known: dict[str, str]) -> list[str | None]:
    return [known.get(column_key(_text(c))) if _text(c) else None for c in cells]


@dataclass(frozen=True)
class _Found:
    """A table that holds a list of the kind: where its header is and what its columns are."""

    index: int
    source: _Source
    position: int  # rows above the data (the header's index among the rows read)
    fields: list[str | None]
    present: frozenset[str]


def _headers(sources: Sequence[_Source], kind: str, problems: _Problems) -> list[_Found]:
    """The tables that hold a list of ``kind``, found among the first rows of each, with the
    problems of their headers."""
    known = aliases(kind)
    found: list[tuple[int, _Source, int, int, Sequence[Any]]] = []
    for index, source in enumerate(sources):
        rows = iter(source.rows())
        try:
            for position, (number, cells) in enumerate(itertools.islice(rows, HEADER_SEARCH_ROWS)):
                recognised = {f for f in _header(cells, known) if f}
                groups = _IDENTIFYING[kind]
                if all(recognised & set(g) for g in groups) and len(recognised) >= 2:
                    found.append((index, source, position, number, cells))
                    break
        finally:
            _close(rows)
    if not found:
        problems.add(
            None,
            f"no sheet has the columns of a {kind} list; expected at least: "
            f"{MINIMAL_COLUMNS[kind]} (or the columns `thidua export registrations` writes)",
        )
        return []
    problems.several_tables = len(found) > 1
    tables: list[_Found] = []
    for index, source, position, header_number, cells in found:
        where = f"the header (row {header_number}"
        where += f" of sheet {source.sheet})" if problems.several_tables and source.sheet else ")"
        keys = [column_key(_text(c)) if _text(c) else "" for c in cells]
        fields = _header(cells, known)
        unknown = [_text(c) for c, k, f in zip(cells, keys, fields, strict=True) if k and not f]
        if unknown:
            problems.add(
                None,
                f"{where} has unknown column(s) {', '.join(repr(u) for u in unknown)}; "
                f"expected: {MINIMAL_COLUMNS[kind]} (or the columns of the export)",
            )
        named = [f for f in fields if f and f != "ignored"]
        twice = sorted({f for f in named if named.count(f) > 1})
        if twice:
            problems.add(None, f"{where} has more than one column for {', '.join(twice)}")
        present = frozenset(named)
        for group in _REQUIRED[kind]:
            if not present & set(group):
                problems.add(None, f"{where} lacks a column {' or '.join(group)}")
        tables.append(_Found(index, source, position, fields, present))
    return tables


def _lines(tables: Sequence[_Found]) -> Generator[_Line, None, None]:
    """The data rows of the tables, read as they are consumed."""
    for table in tables:
        rows = iter(table.source.rows())
        fields = table.fields
        sheet = table.source.sheet
        try:
            for number, row in itertools.islice(rows, table.position + 1, None):
                texts = [_text(c) for c in row]
                if not any(texts):
                    continue
                # The form's total row ends the table; anything below it is not a
                # registration. So do the signatures under a list without a total.
                if any(_ends_table(t) for t in texts if t):
                    break
                values: dict[str, Any] = {}
                shown: dict[str, str] = {}
                for name, cell, shown_text in zip(fields, row, texts, strict=False):
                    if name and name != "ignored":
                        values[name] = cell
                        shown[name] = shown_text
                # Text only in STT or Ghi chú (a signature line under the table): not a row.
                if not any(shown.values()):
                    continue
                yield _Line(table.index, sheet, number, values, shown, table.present)
        finally:
            _close(rows)


_TABLE_ENDS = (fold(TOTAL_LABEL), fold(PREPARER), fold(SIGNER_FOR))
_TABLE_END_WORDS = frozenset(end.split(" ", 1)[0] for end in _TABLE_ENDS)


def _ends_table(text: str) -> bool:
    """The total row or a signature ("Tổng cộng", "NGƯỜI LẬP BIỂU"…): only a cell whose
    first word is theirs is folded whole (names and phones, most cells, are not)."""
    first = text.split(" ", 1)[0]
    return (
        first[:1].isalpha()
        and _fold(first) in _TABLE_END_WORDS
        and _fold(text).startswith(_TABLE_ENDS)
    )


# --- values ----------------------------------------------------------------------------------


def _money(value: Any) -> int:
    if isinstance(value, bool):
        raise Invalid("not_money")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return round(value)
    return parse_money(_text(value))


def _date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return parse_date(_text(value))


def _phone(raw: str) -> str:
    # Most phones are "0xxxxxxxxx" already: what parse_phone returns, at a fraction of its
    # cost (storage.importers reads rosters the same way).
    if len(raw) == 10 and raw.isascii() and raw.isdigit() and raw[:2] in _MOBILE_STARTS:
        return raw
    digits = re.sub(r"\D", "", raw)
    # A phone kept in a number cell loses its leading zero ("912345678"); put it back.
    if raw.isdigit() and len(digits) == 9 and digits[0] != "0":
        raw = "0" + digits
    return parse_phone(raw)


def _show(value: date) -> str:
    return value.strftime("%d/%m/%Y")


# The "Trạng thái" column: the row's own state (storage.counts). Chờ duyệt, Đã duyệt and Trả lại
# are what the officers' software says of a unit's *list* (and what files of earlier versions
# said of every row): such a row is imported as registered, and never as an achieved title
# (only "Đã công nhận" is one, which the CSTĐ history rules count). Its list is marked only
# by ``lists``; the summary points at it when the file spoke of lists.
_STATUS_WORDS: dict[str, str] = {
    "": RegistrationStatus.SUBMITTED,
    "submitted": RegistrationStatus.SUBMITTED,
    "registered": RegistrationStatus.SUBMITTED,
    "da dang ky": RegistrationStatus.SUBMITTED,
    "recognised": RegistrationStatus.APPROVED,
    "da cong nhan": RegistrationStatus.APPROVED,
}
# List words -> the list state they name (read as a registered row).
_LIST_WORDS: dict[str, str] = {
    "pending": SubmissionStatus.PENDING,
    "approved": SubmissionStatus.APPROVED,
    "returned": SubmissionStatus.RETURNED,
    "tra lai": SubmissionStatus.RETURNED,
}
for _state, _label in LIST_STATE_LABELS.items():
    if _state != SubmissionStatus.NOT_SENT:
        _LIST_WORDS[fold(_label)] = _state
for _word in _LIST_WORDS:
    _STATUS_WORDS[_word] = RegistrationStatus.SUBMITTED

_YES = {"co", "x", "yes", "true", "1", "de nghi", "co gan bien"}
_NO = {"", "khong", "no", "false", "0", "-"}

_FIELD_WORDS: dict[str, str] = {}
for _id, _label in FIELD_LABELS.items():
    _FIELD_WORDS[fold(_label)] = _id
    _FIELD_WORDS[_id] = _id
_FIELD_WORDS.update(
    {
        "ky thuat": "tech",
        "technical": "tech",
        "management": "mgmt",
        "tiet kiem": "saving",
        "saving": "saving",
        "atvsld": "safety",
        "an toan": "safety",
        "an toan lao dong": "safety",
        "safety": "safety",
        "cntt": "digital",
        "it": "digital",
        "chuyen doi so": "digital",
        "digital": "digital",
        "other": "other",
    }
)


# --- the import ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Known:
    """A person the database has, as far as matching a row needs."""

    id: int
    full_name: str
    phone: str | None
    unit_id: int | None
    path: str | None = None  # their unit's (read with the phone; rosters need no path)


@dataclass(slots=True)
class _NewPerson:
    """Someone the file names who is not known yet: added to the roster on import."""

    index: int
    full_name: str
    phone: str | None
    position: str | None
    unit: Unit


@dataclass(slots=True)
class _Who:
    """A person a row is about: known (``person``) or to be added (``new``)."""

    person: _Known | None = None
    new: _NewPerson | None = None

    @property
    def key(self) -> str:
        if self.person is not None:
            return f"p{self.person.id}"
        assert self.new is not None
        return f"n{self.new.index}"

    @property
    def name(self) -> str:
        if self.person is not None:
            return self.person.full_name
        assert self.new is not None
        return self.new.full_name

    @property
    def unit_id(self) -> int:
        if self.person is not None and self.person.unit_id is not None:
            return self.person.unit_id
        assert self.new is not None
        return self.new.unit.id


@dataclass(slots=True)
class _Planned:
    """One registration, initiative or work to write, with the row it came from."""

    line: _Line
    kind: str  # "individual", "collective", "initiative", "work"
    status: str
    unit: Unit
    who: _Who | None = None
    title: Title | None = None
    data: dict[str, Any] = field(default_factory=dict)


class _Receipts(Sequence[str]):
    """The receipt numbers an import handed out, in row order: consecutive numbers of the
    campaign, held as a range (a million of them are not kept as text)."""

    def __init__(self, code: str, first: int, count: int) -> None:
        self.code = code
        self.numbers = range(first, first + count)

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        if isinstance(index, slice):
            return [f"{self.code}-{n:06d}" for n in self.numbers[index]]
        return f"{self.code}-{self.numbers[index]:06d}"

    def __len__(self) -> int:
        return len(self.numbers)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence) and not isinstance(other, str):
            return len(other) == len(self) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return repr(list(self)) if len(self) <= 10 else f"<receipts {self[0]} to {self[-1]}>"


@dataclass
class RegistrationImportSummary:
    """What an import did, for the command's report."""

    kind: str
    campaign_code: str
    campaign_name: str
    deadline: date
    individuals: int = 0
    collectives: int = 0
    initiatives: int = 0
    works: int = 0
    # The first NEW_PEOPLE_LISTED people added to the roster, "name (unit code)"; how many
    # were added in all.
    new_people: list[str] = field(default_factory=list)
    new_people_count: int = 0
    receipts: Sequence[str] = field(default_factory=list)
    late: bool = False
    # The lists of the units the rows went to: how ``lists`` left them.
    lists: str | None = None
    list_units: int = 0
    lists_marked: int = 0
    lists_already_approved: int = 0
    # Rows whose "Trạng thái" named a list state (Chờ duyệt, Đã duyệt, Trả lại), by state.
    file_list_states: dict[str, int] = field(default_factory=dict)

    def lines(self) -> list[str]:
        where = f"into {self.campaign_code} «{self.campaign_name}»"
        if self.kind == TITLES:
            total = self.individuals + self.collectives
            head = (
                f"Imported {total} registration(s) {where}: {self.individuals} individual, "
                f"{self.collectives} collective"
            )
        elif self.kind == INITIATIVES:
            head = f"Imported {self.initiatives} initiative(s) {where}"
        else:
            head = f"Imported {self.works} work(s) {where}"
        if self.receipts:
            first, last = self.receipts[0], self.receipts[-1]
            head += f"; receipt numbers {first}" + (f" to {last}" if last != first else "")
        out = [head]
        added = max(self.new_people_count, len(self.new_people))
        if added:
            names = ", ".join(self.new_people)
            if added > len(self.new_people):
                names += (
                    f" and {added - len(self.new_people):,} more (each in the audit log, "
                    "person.import)"
                )
            out.append(
                f"Added {added} person(s) to the roster (not found by phone, nor "
                f"by name in their unit): {names}"
            )
        if self.lists is None:
            out.append(
                f"The lists of the {self.list_units} unit(s) were left as they were "
                "(--lists sent|approved marks them as sent to the upper level or approved)"
            )
            said = ", ".join(
                f"«{LIST_STATE_LABELS[state]}» {n} row(s)"
                for state, n in sorted(self.file_list_states.items())
            )
            if said:
                out.append(
                    f"The file's status column speaks of lists ({said}): the rows were "
                    "imported as registered; to mark their units' lists, run the import "
                    "with --lists sent or --lists approved"
                )
        else:
            state = LIST_STATE_LABELS[LIST_MARKS[self.lists]]
            line = f"Marked the lists of {self.lists_marked} unit(s) as «{state}»"
            if self.lists_already_approved:
                line += (
                    f"; {self.lists_already_approved} list(s) already approved were left approved"
                )
            out.append(line)
        if self.late:
            out.append(
                f"Warning: registration closed on {_show(self.deadline)}; imported anyway "
                "(--allow-late)"
            )
        return out


async def choose_campaign(session: AsyncSession, code: str | None, today: date) -> Campaign:
    """The campaign named, or the only one still open for registration (or the only one)."""
    if code:
        campaign = await session.scalar(select(Campaign).where(Campaign.code == code))
        if campaign is None:
            raise CampaignChoiceError(f"unknown campaign {code!r}")
        return campaign
    campaigns = list(await session.scalars(select(Campaign).order_by(Campaign.code)))
    open_ = [c for c in campaigns if c.registration_deadline >= today]
    for candidates in (open_, campaigns):
        if len(candidates) == 1:
            return candidates[0]
    if not campaigns:
        raise CampaignChoiceError("there is no campaign yet; load one with `thidua campaign load`")
    shown = ", ".join(c.code for c in (open_ or campaigns))
    raise CampaignChoiceError(f"several campaigns ({shown}); choose one with --campaign CODE")


async def import_registrations_file(
    session: AsyncSession,
    path: str | Path,
    kind: str,
    campaign: Campaign,
    *,
    today: date,
    allow_late: bool = False,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
    lists: str | None = None,
) -> RegistrationImportSummary:
    """Read ``path`` (CSV or XLSX) a row at a time and import its registrations of ``kind``;
    ``progress`` hears the number of rows checked after each batch."""
    path = Path(path)
    try:
        with _opened(path, limits) as sources:
            return await _import(
                session,
                sources,
                kind,
                campaign,
                today=today,
                allow_late=allow_late,
                file_name=path.name,
                progress=progress,
                lists=lists,
            )
    except TableError as exc:
        raise ImportFailed([exc.problem]) from exc


async def import_registrations(
    session: AsyncSession,
    tables: Sequence[Table],
    kind: str,
    campaign: Campaign,
    *,
    today: date,
    allow_late: bool = False,
    file_name: str | None = None,
    progress: Progress | None = None,
    lists: str | None = None,
) -> RegistrationImportSummary:
    """Check every row, then write all of them, or raise ImportFailed and write nothing.

    ``lists`` marks the lists of the units the rows went to: ``"sent"`` (waiting for the
    upper level's approval; an approved list stays approved) or ``"approved"``; None leaves
    them as they are.
    """
    sources = [_Source(t.sheet, functools.partial(iter, t.rows)) for t in tables]
    return await _import(
        session,
        sources,
        kind,
        campaign,
        today=today,
        allow_late=allow_late,
        file_name=file_name,
        progress=progress,
        lists=lists,
    )


def _batches(lines: Iterator[_Line], size: int) -> Iterator[list[_Line]]:
    while batch := list(itertools.islice(lines, size)):
        yield batch


async def _import(
    session: AsyncSession,
    sources: Sequence[_Source],
    kind: str,
    campaign: Campaign,
    *,
    today: date,
    allow_late: bool,
    file_name: str | None,
    progress: Progress | None,
    lists: str | None,
) -> RegistrationImportSummary:
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if lists is not None and lists not in LIST_MARKS:
        raise ValueError(f"unknown lists {lists!r}; use {' or '.join(LIST_MARKS)}")
    # With its phases: the works' date rules need the campaign's first and last day.
    loaded = await campaign_by_id(session, campaign.id)
    assert loaded is not None
    campaign = loaded
    problems = _Problems()
    tables = _headers(sources, kind, problems)
    problems.raise_if_any()
    lines = _lines(tables)
    try:
        first = next(lines, None)
        if first is None:
            raise ImportFailed(["the file has a header but no data rows"])
        # Works are registered through the year, until their phase ends (as in the chat).
        closes = works_close(campaign) if kind == WORKS else campaign.registration_deadline
        late = today > closes
        if late and not allow_late:
            problems.add(
                None,
                f"registration for {campaign.code} closed on "
                f"{_show(closes)}, as in the chat; to record lists the "
                "units handed in before that day, run the import again with --allow-late",
            )
        summary = RegistrationImportSummary(kind, campaign.code, campaign.name, closes, late=late)
        checker = _Checker(session, campaign, today, problems, kind, summary)
        await checker.start()
        await create_stage(session, _STAGE)
        try:
            for batch in _batches(itertools.chain([first], lines), BATCH):
                await checker.check(batch)
                if progress is not None:
                    progress(len(batch))
            await _index_stage(session)
            await _duplicates(session, campaign, problems)
            problems.raise_if_any()
            summary.file_list_states = dict(checker.list_words)
            await _write(session, campaign, checker, summary, late=late, file_name=file_name)
            await _mark_lists(session, campaign, summary, lists, file_name)
        except (ImportFailed, TableError):
            # Refused, the transaction still usable: the caller may go on with it.
            await _drop_stage(session)
            raise
        await _drop_stage(session)
        return summary
    finally:
        lines.close()


async def _mark_lists(
    session: AsyncSession,
    campaign: Campaign,
    summary: RegistrationImportSummary,
    lists: str | None,
    file_name: str | None,
) -> None:
    """Mark the lists carrying the imported rows (each unit's grassroots union, which sends
    the list: storage.counts.list_units) as ``lists`` asks, with an audit entry each."""
    # The units the rows were written to (a person found in a department: that department).
    row_units = list(
        await session.scalars(select(_STAGE.c.reg_unit_id).distinct().order_by("reg_unit_id"))
    )
    by_unit: dict[int, Unit] = {}
    for start in range(0, len(row_units), _CHUNK):
        chunk = row_units[start : start + _CHUNK]
        by_unit.update(
            await list_units(session, await session.scalars(select(Unit).where(Unit.id.in_(chunk))))
        )
    units = {u.id: u for u in by_unit.values()}
    summary.lists = lists
    summary.list_units = len(units)
    if lists is None or not units:
        return
    wanted = LIST_MARKS[lists]
    existing: dict[int, UnitSubmission] = {}
    ids = sorted(units)
    for start in range(0, len(ids), _CHUNK):
        existing.update(
            (s.unit_id, s)
            for s in await session.scalars(
                select(UnitSubmission).where(
                    UnitSubmission.campaign_id == campaign.id,
                    UnitSubmission.unit_id.in_(ids[start : start + _CHUNK]),
                )
            )
        )
    now = utcnow()
    for unit_id in ids:
        submission = existing.get(unit_id)
        if submission is None:
            submission = UnitSubmission(
                campaign_id=campaign.id,
                unit_id=unit_id,
                status=SubmissionStatus.NOT_SENT,
                round=0,
            )
            session.add(submission)
        before = submission.status
        if before == SubmissionStatus.APPROVED:
            # Never taken back to waiting (rows under it are refused above anyway).
            summary.lists_already_approved += 1
            continue
        summary.lists_marked += 1
        if before == wanted:
            continue
        if before != SubmissionStatus.PENDING:
            # Sent (again): a new round, as when a leader sends it with /guilen.
            submission.round = (submission.round or 0) + 1
            submission.submitted_at = now
        submission.status = wanted
        if wanted == SubmissionStatus.APPROVED:
            submission.decided_at = now
        await session.flush()
        session.add(
            AuditEntry(
                via=VIA_IMPORT,
                action="submission.import",
                entity="unit_submission",
                entity_id=submission.id,
                details={
                    "unit_id": unit_id,
                    "campaign_id": campaign.id,
                    "from": str(before),
                    "to": str(submission.status),
                    "file": file_name,
                },
            )
        )
    await session.flush()


class _Checker:
    """Resolves the rows against the database and checks them, collecting every problem;
    what it keeps grows with the units the file names and the people it adds, not with
    its rows."""

    def __init__(
        self,
        session: AsyncSession,
        campaign: Campaign,
        today: date,
        problems: _Problems,
        kind: str,
        summary: RegistrationImportSummary,
    ) -> None:
        self.session = session
        self.campaign = campaign
        self.today = today
        self.problems = problems
        self.kind = kind
        self.summary = summary
        self.issuer: Unit | None = None
        self.by_code: dict[str, Unit] = {}
        self.by_name: dict[str, list[Unit]] = {}
        # Codes and names already looked for (found or not): each is read once.
        self.asked_codes: set[str] = set()
        self.asked_names: set[str] = set()
        self.names = UnitNames()
        self.titles: dict[str, Title] = {}
        # The people with the phones of the batch being checked (the oldest of each phone).
        self.by_phone: dict[str, _Known] = {}
        # Rosters read for matching by name, the least recently used first.
        self.rosters: OrderedDict[int, dict[str, list[_Known]]] = OrderedDict()
        self.roster_sizes: dict[int, int] = {}
        self.rostered = 0
        self.new_people: list[_NewPerson] = []
        # List states the file's "Trạng thái" named (row counts), for the summary's hint.
        self.list_words: Counter[str] = Counter()
        # Someone new is one person however many rows name them: by (unit, name), by phone.
        self.new_by_name: dict[tuple[int, str], list[_NewPerson]] = {}
        self.new_by_phone: dict[str, _NewPerson] = {}
        # Units whose list the upper level approved in this campaign, and what covers each
        # unit asked about.
        self.approved: set[int] = set()
        self.locks: dict[int, Unit | None] = {}
        self.seq = 0  # registrations staged

    # -- loading ---------------------------------------------------------------------------

    async def start(self) -> None:
        if is_postgresql(self.session):
            # The batches look people up by phone and by unit a thousand at a time; right
            # after a roster import the tables have no statistics yet and PostgreSQL scans
            # all the people for every lookup (a million rows: 0.4 s each, 750 of them).
            # ANALYZE reads a sample of fixed size, under a second whatever the roster.
            connection = await self.session.connection()
            for table in ("people", "units"):
                await connection.execute(text(f"ANALYZE {table}"))
        self.issuer = await self.session.get(Unit, self.campaign.issuer_unit_id)
        for title in await self.session.scalars(select(Title).where(Title.active)):
            for word in (title.code, title.abbreviation, title.name):
                if word:
                    self.titles.setdefault(fold(word), title)
            if title.abbreviation:
                self.titles.setdefault(fold(f"{title.name} ({title.abbreviation})"), title)
        self.approved = set(
            await self.session.scalars(
                select(UnitSubmission.unit_id).where(
                    UnitSubmission.campaign_id == self.campaign.id,
                    UnitSubmission.status == SubmissionStatus.APPROVED,
                )
            )
        )

    async def prepare(self, lines: Sequence[_Line]) -> None:
        """Read what the batch's rows name: their units (once per import) and the people
        with their phones."""
        codes: set[str] = set()
        names: set[str] = set()
        phones: set[str] = set()
        for line in lines:
            code = line.text("unit_code")
            if code:
                # Codes are kept as the org file wrote them; "cdcs-may" typed by hand is found.
                codes.update((code, code.upper()))
            for name in ("unit_name", "collective_name", "name_or_unit"):
                if line.text(name):
                    names.add(_fold(line.text(name)))
            position_unit = line.text("position_unit")
            if position_unit:
                names.update(_fold(unit) for _pos, unit in _position_splits(position_unit))
            raw = line.text("phone")
            if raw:
                with contextlib.suppress(Invalid):  # a bad phone is reported by the row check
                    phones.add(_phone(raw))
        codes -= self.asked_codes
        names -= self.asked_names
        if len(self.asked_names) > 4 * ROSTER_CACHE:
            # Positions written before unit names make many names; they are looked for again.
            self.asked_names.clear()
        self.asked_codes |= codes
        self.asked_names |= names
        found: list[Unit] = []
        for unit in await self._by(Unit.code, codes):
            self.by_code[unit.code] = unit
            found.append(unit)
        for unit in await self._by(Unit.search_name, names):
            same = self.by_name.setdefault(unit.search_name, [])
            if unit not in same:
                same.append(unit)
            found.append(unit)
        await self.names.load(self.session, found)
        self.by_phone = {}
        known: list[_Known] = []
        phone_list = sorted(phones)
        for start in range(0, len(phone_list), _CHUNK):
            rows = await self.session.execute(
                select(Person.id, Person.full_name, Person.phone, Person.unit_id, Unit.path)
                .outerjoin(Unit, Unit.id == Person.unit_id)
                .where(Person.phone.in_(phone_list[start : start + _CHUNK]))
            )
            known.extend(_Known(*row) for row in rows)
        # Several people with one phone can exist (made before an import); the oldest wins.
        for person in sorted(known, key=lambda p: -p.id):
            if person.phone:
                self.by_phone[person.phone] = person

    async def _by(self, column: Any, keys: Iterable[Any]) -> list[Any]:
        keys = sorted(set(keys))
        found: list[Any] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            found.extend(await self.session.scalars(select(column.class_).where(column.in_(chunk))))
        return found

    async def _roster(self, unit: Unit) -> dict[str, list[_Known]]:
        """The people of the unit and of the units below it, by folded name."""
        roster = self.rosters.get(unit.id)
        if roster is not None:
            self.rosters.move_to_end(unit.id)
            return roster
        roster = {}
        size = 0
        # The subtree's units first, then their people by the unit index: one statement
        # joining them is planned by SQLite as a scan of all the people, for every unit.
        units = list(
            await self.session.scalars(
                select(Unit.id).where(Unit.path.startswith(unit.path, autoescape=True))
            )
        )
        people: list[Any] = []
        for start in range(0, len(units), _CHUNK):
            people.extend(
                await self.session.execute(
                    select(Person.id, Person.full_name, Person.phone, Person.unit_id).where(
                        Person.unit_id.in_(units[start : start + _CHUNK])
                    )
                )
            )
        for pid, full_name, phone, unit_id in sorted(people):
            roster.setdefault(_fold(full_name), []).append(_Known(pid, full_name, phone, unit_id))
            size += 1
        self.rosters[unit.id] = roster
        self.roster_sizes[unit.id] = size
        self.rostered += size
        while self.rostered > ROSTER_CACHE and len(self.rosters) > 1:
            oldest, _roster = self.rosters.popitem(last=False)
            self.rostered -= self.roster_sizes.pop(oldest)
        return roster

    # -- units, titles, people -------------------------------------------------------------

    def _in_campaign(self, unit: Unit) -> bool:
        assert self.issuer is not None
        return unit.path.startswith(self.issuer.path)

    def _unit_by_name(self, line: _Line, name: str) -> Unit | None:
        found = self.by_name.get(_fold(name), [])
        inside = [u for u in found if self._in_campaign(u)] or found
        path = line.text("unit_path")
        if path and len(inside) > 1:
            wanted = [fold(p) for p in re.split(r"\s*[›>/]\s*", path) if p.strip()]
            inside = [u for u in inside if self.names.key(u)[-len(wanted) :] == wanted] or inside
        if len(inside) > 1:
            codes = ", ".join(sorted(u.code for u in inside))
            self.problems.add(
                line,
                f"unit name {name!r} matches {len(inside)} units ({codes}); "
                "add a Mã đơn vị (unit_code) column",
            )
            return None
        return inside[0] if inside else None

    def unit(self, line: _Line, collective: bool) -> tuple[Unit | None, str | None]:
        """The row's unit and, from "Chức vụ – đơn vị", the position written before it."""
        unit: Unit | None = None
        position: str | None = None
        code = line.text("unit_code")
        name = line.text("unit_name")
        if not name and collective:
            name = line.text("collective_name") or line.text("name_or_unit")
        if code:
            unit = self.by_code.get(code) or self.by_code.get(code.upper())
            if unit is None:
                self.problems.add(line, f"unknown unit code {code!r}")
                return None, None
        elif name:
            unit = self._unit_by_name(line, name)
            if unit is None:
                if _fold(name) not in self.by_name:
                    self.problems.add(line, f"unknown unit {name!r}")
                return None, None
        elif line.text("position_unit"):
            for before, unit_name in _position_splits(line.text("position_unit")):
                if _fold(unit_name) in self.by_name:
                    unit = self._unit_by_name(line, unit_name)
                    if unit is None:
                        return None, None
                    position = before or None
                    break
            if unit is None:
                self.problems.add(
                    line,
                    f"no known unit in {line.text('position_unit')!r}; write it as "
                    "'position – unit name', or add a Mã đơn vị (unit_code) column",
                )
                return None, None
        else:
            self.problems.add(line, "the unit is empty")
            return None, None
        if position is None and line.text("position_unit"):
            # "Chức vụ – đơn vị" beside a unit code: the position is what precedes the name.
            for before, unit_name in _position_splits(line.text("position_unit")):
                if before and _fold(unit_name) == unit.search_name:
                    position = before
        if not self._in_campaign(unit):
            assert self.issuer is not None
            self.problems.add(
                line,
                f"unit {unit.code} ({unit.name}) is not under {self.issuer.name}, which runs "
                f"campaign {self.campaign.code}",
            )
            return None, None
        return unit, position

    def title(self, line: _Line, text: str, collective: bool) -> Title | None:
        title = self.titles.get(_fold(text))
        if title is None:
            self.problems.add(line, f"unknown title {text!r}")
            return None
        if title.code not in self.campaign.title_codes:
            allowed = ", ".join(self.campaign.title_codes)
            self.problems.add(
                line,
                f"title {text!r} is not open in campaign {self.campaign.code} (it has {allowed})",
            )
            return None
        if collective and title.target == TitleTarget.INDIVIDUAL:
            self.problems.add(line, f"{title.name!r} is a title for individuals, not for a unit")
            return None
        if not collective and title.target == TitleTarget.COLLECTIVE:
            self.problems.add(
                line,
                f"{title.name!r} is a collective title; register it on a Tập thể row "
                "(the unit's name in Tên tập thể)",
            )
            return None
        return title

    async def who(
        self, line: _Line, unit: Unit, name: str, phone: str | None, position: str | None
    ) -> _Who | None:
        """Match by phone, else by name in the unit; else someone new for the roster."""
        if phone is not None and phone in self.by_phone:
            person = self.by_phone[phone]
            if _fold(person.full_name) != _fold(name):
                self.problems.add(
                    line, f"phone {phone} belongs to {person.full_name}, not to {name}"
                )
                return None
            # On the roster of the unit or of a unit below it.
            if person.path is None or not person.path.startswith(unit.path):
                self.problems.add(
                    line, f"{person.full_name} ({phone}) is on the roster of another unit"
                )
                return None
            return _Who(person=person)
        roster = await self._roster(unit)
        same = [p for p in roster.get(_fold(name), []) if phone is None or p.phone in (None, phone)]
        if len(same) > 1:
            self.problems.add(
                line,
                f"{len(same)} people named {name} in {unit.name}; add their phone to tell "
                "them apart",
            )
            return None
        if same:
            return _Who(person=same[0])
        if phone is not None and phone in self.new_by_phone:
            new = self.new_by_phone[phone]
            if new.unit.id != unit.id or _fold(new.full_name) != _fold(name):
                self.problems.add(
                    line, f"phone {phone} is given to {new.full_name} in another row, not to {name}"
                )
                return None
            return _Who(new=new)
        namesakes = self.new_by_name.setdefault((unit.id, _fold(name)), [])
        for new in namesakes:
            if phone and new.phone and phone != new.phone:
                continue  # two namesakes, told apart by their phones
            if phone and not new.phone:
                new.phone = phone
                self.new_by_phone[phone] = new
            new.position = new.position or position
            return _Who(new=new)
        new = _NewPerson(len(self.new_people), name, phone, position, unit)
        self.new_people.append(new)
        namesakes.append(new)
        if phone:
            self.new_by_phone[phone] = new
        return _Who(new=new)

    async def locked(self, line: _Line, unit: Unit) -> bool:
        if unit.id not in self.locks:
            # The unit's own approved list, or an approved list above it, covers it.
            covering = next((a for a in ancestor_ids(unit) if a in self.approved), None)
            self.locks[unit.id] = (
                await self.session.get(Unit, covering) if covering is not None else None
            )
        locked_by = self.locks[unit.id]
        if locked_by is not None:
            self.problems.add(
                line,
                f"the list of {locked_by.name} has already been approved by the upper level; an "
                "officer must reopen it before registrations are added",
            )
        return locked_by is not None

    # -- rows ------------------------------------------------------------------------------

    def _status(self, line: _Line) -> str | None:
        return self._status_of(line, line.text("status"))

    def _status_of(self, line: _Line, raw: str) -> str | None:
        word = _fold(raw).strip(" .")
        status = _STATUS_WORDS.get(word)
        if word in _LIST_WORDS:
            self.list_words[_LIST_WORDS[word]] += 1
        if status is None:
            self.problems.add(
                line,
                f"status {raw!r} cannot be imported (use Đã đăng ký, Đã công nhận, Chờ duyệt, "
                "Đã duyệt or Trả lại (bổ sung), or leave it empty)",
            )
        return status

    def _name(self, line: _Line, raw: str, what: str) -> str | None:
        try:
            return _parse_name(raw)
        except Invalid as exc:
            if not raw:
                self.problems.add(line, f"{what} is empty")
            elif exc.reason == "too_long":
                self.problems.add(line, f"{what} is longer than 100 characters")
            else:
                self.problems.add(line, f"{what} {raw!r} is not a person's name")
            return None

    def _row_phone(self, line: _Line) -> tuple[bool, str | None]:
        raw = line.text("phone")
        if not raw:
            return True, None
        try:
            return True, _phone(raw)
        except Invalid:
            self.problems.add(line, f"phone {raw!r} is not a valid Vietnamese phone number")
            return False, None

    def _short_text(self, line: _Line, name: str, what: str, *, required: bool) -> str | None:
        try:
            text = clean(_text(line.values.get(name)), max_length=MAX_NAME)
        except Invalid:
            self.problems.add(line, f"{what} is longer than {MAX_NAME} characters")
            return None
        if len(text) < MIN_NAME and (required or text):
            self.problems.add(line, f"{what} is empty" if not text else f"{what} is too short")
            return None
        return text

    def _position(self, line: _Line, from_unit: str | None) -> str | None:
        position = line.text("position") or from_unit
        if position and len(position) > MAX_POSITION:
            self.problems.add(line, f"position is longer than {MAX_POSITION} characters")
            return None
        return position or None

    async def check(self, lines: Sequence[_Line]) -> None:
        """Check a batch of rows; the registrations of the rows that pass go to the stage."""
        await self.prepare(lines)
        staged: list[dict[str, Any]] = []
        row = {TITLES: self._title_row, INITIATIVES: self._initiative_row}.get(
            self.kind, self._work_row
        )
        summary = self.summary
        for line in lines:
            before = self.problems.total
            planned = await row(line)
            if self.problems.total != before:
                continue
            for item in planned:
                self.seq += 1
                staged.append(_staged(item, self.seq))
                if item.kind == "individual":
                    summary.individuals += 1
                elif item.kind == "collective":
                    summary.collectives += 1
                elif item.kind == "initiative":
                    summary.initiatives += 1
                else:
                    summary.works += 1
        await insert_rows(self.session, _STAGE, staged)

    def _collective(self, line: _Line) -> bool | None:
        raw = line.text("kind")
        if raw:
            word = _fold(raw)
            if word in ("tap the", "collective", "tt"):
                return True
            if word in ("ca nhan", "individual", "cn"):
                return False
            self.problems.add(line, f"{raw!r} is neither Cá nhân nor Tập thể")
            return None
        return "collective_name" in line.columns and "full_name" not in line.columns

    async def _title_row(self, line: _Line) -> list[_Planned]:
        collective = self._collective(line)
        if collective is None:
            return []
        unit, from_unit = self.unit(line, collective)
        # The code, when the flat export gives both, names the same title as the name.
        texts = [
            *(line.parts("title_code") or line.parts("title")),
            *line.parts("award"),
        ]
        if not texts:
            self.problems.add(line, "the title is empty")
        titles = [self.title(line, t, collective) for t in texts]
        # One state for the row, or one per title (a person's row of the form).
        states = line.parts("status") or [""]
        if len(states) != 1 and len(states) != len(texts):
            self.problems.add(
                line, f"{len(states)} states for {len(texts)} titles; give one, or one per title"
            )
            return []
        statuses = [self._status_of(line, state) for state in states]
        if None in statuses:
            return []
        if len(statuses) == 1:
            statuses = statuses * len(texts)
        commitment = line.text("commitment") or None
        if commitment and len(commitment) > MAX_COMMITMENT:
            self.problems.add(line, f"commitment is longer than {MAX_COMMITMENT} characters")
        who: _Who | None = None
        if not collective:
            name = self._name(line, line.text("full_name") or line.text("name_or_unit"), "name")
            ok, phone = self._row_phone(line)
            position = self._position(line, from_unit)
            if unit is not None and name is not None and ok:
                who = await self.who(line, unit, name, phone, position)
        if unit is None or None in titles or (not collective and who is None):
            return []
        await self.locked(line, unit)
        return [
            _Planned(
                line,
                "collective" if collective else "individual",
                status,
                unit,
                who=who,
                title=title,
                data={"commitment": commitment},
            )
            for title, status in zip(titles, statuses, strict=True)
            if title is not None and status is not None
        ]

    async def _initiative_row(self, line: _Line) -> list[_Planned]:
        status = self._status(line)
        name = self._short_text(line, "name", "the initiative's name", required=True)
        unit, from_unit = self.unit(line, collective=False)
        raw_authors = [a for a in re.split(r"\s*[;,\n]\s*", line.text("authors")) if a.strip()] + [
            a for a in re.split(r"\s*[;,\n]\s*", line.text("coauthors")) if a.strip()
        ]
        authors: list[str] = []
        for raw in raw_authors:
            author = self._name(line, raw, "author")
            if author is not None and fold(author) not in {fold(a) for a in authors}:
                authors.append(author)
        if not raw_authors:
            self.problems.add(line, "the author is empty")
        if len(authors) > 1 + MAX_COAUTHORS:
            self.problems.add(line, f"more than {MAX_COAUTHORS} co-authors")
        field_text = line.text("field")
        field_id = _FIELD_WORDS.get(_fold(field_text).strip(" .")) if field_text else "other"
        if field_id is None:
            choices = ", ".join(FIELD_LABELS.values())
            self.problems.add(line, f"unknown field {field_text!r} (one of: {choices})")
        description = None
        try:
            description = (
                clean(
                    _text(line.values.get("description")),
                    multiline=True,
                    max_length=MAX_DESCRIPTION,
                )
                or None
            )
        except Invalid:
            self.problems.add(line, f"description is longer than {MAX_DESCRIPTION} characters")
        applied: date | None = None
        if line.text("applied"):
            try:
                applied = _date(line.values["applied"])
            except Invalid:
                self.problems.add(line, f"applied date {line.text('applied')!r} is not a date")
            else:
                if applied > self.today:
                    self.problems.add(line, f"applied date {_show(applied)} is in the future")
        benefit: int | None = None
        if line.text("benefit"):
            try:
                benefit = _money(line.values["benefit"])
            except Invalid:
                self.problems.add(line, f"benefit {line.text('benefit')!r} is not an amount")
            else:
                if benefit <= 0:
                    self.problems.add(line, "benefit must be above zero (or left empty)")
        ok, phone = self._row_phone(line)
        position = self._position(line, from_unit)
        who = None
        if unit is not None and authors and ok:
            who = await self.who(line, unit, authors[0], phone, position)
        if unit is None or who is None or status is None or name is None:
            return []
        await self.locked(line, unit)
        coauthors: list[tuple[int | None, str]] = []
        for author in authors[1:]:
            # A co-author the roster knows (one person of that name) is linked, so they see
            # it in their list; otherwise the name is kept as typed, as in the chat.
            same = (await self._roster(unit)).get(_fold(author), [])
            coauthors.append((same[0].id if len(same) == 1 else None, author))
        return [
            _Planned(
                line,
                "initiative",
                status,
                unit,
                who=who,
                data={
                    "name": name,
                    "field": field_id,
                    "description": description,
                    "applied": applied,
                    "benefit": benefit,
                    "coauthors": coauthors,
                },
            )
        ]

    async def _work_row(self, line: _Line) -> list[_Planned]:
        status = self._status(line)
        name = self._short_text(line, "name", "the work's name", required=True)
        occasion = self._short_text(line, "occasion", "the occasion", required=True)
        unit, _position = self.unit(line, collective=True)
        value: int | None = None
        try:
            value = _money(line.values.get("value"))
        except Invalid:
            raw = line.text("value")
            self.problems.add(line, f"value {raw!r} is not an amount" if raw else "value is empty")
        else:
            if value <= 0:
                self.problems.add(line, "value must be above zero")
                value = None
        dates: dict[str, date] = {}
        for key, what in (("start", "start"), ("finish", "finish")):
            raw = line.text(key)
            try:
                dates[key] = _date(line.values.get(key))
            except Invalid:
                self.problems.add(
                    line, f"{what} date {raw!r} is not a date" if raw else f"{what} date is empty"
                )
        start, finish = dates.get("start"), dates.get("finish")
        if start is not None and start > campaign_end(self.campaign):
            self.problems.add(
                line,
                f"start {_show(start)} is after the campaign ends "
                f"({_show(campaign_end(self.campaign))})",
            )
        if start is not None and finish is not None and finish < start:
            self.problems.add(line, f"finish {_show(finish)} is before start {_show(start)}")
        elif finish is not None and finish < campaign_start(self.campaign):
            self.problems.add(
                line,
                f"finish {_show(finish)} is before the campaign starts "
                f"({_show(campaign_start(self.campaign))}); a work counts only if it is "
                "finished during or after it",
            )
        plaque_text = _fold(line.text("plaque")).strip(" .")
        plaque = plaque_text in _YES
        if plaque_text not in _YES | _NO:
            self.problems.add(line, f"plaque {line.text('plaque')!r} is neither có nor không")
        if None in (unit, status, name, occasion, value, start, finish):
            return []
        assert unit is not None and status is not None
        await self.locked(line, unit)
        return [
            _Planned(
                line,
                "work",
                status,
                unit,
                data={
                    "name": name,
                    "occasion": occasion,
                    "value": value,
                    "start": start,
                    "finish": finish,
                    "plaque": plaque,
                },
            )
        ]


def _identity(item: _Planned, name_key: str | None) -> str:
    """What makes two registrations the same: a person's title, a unit's collective title,
    an author's initiative of a name, a unit's work of a name."""
    if item.kind == "individual":
        assert item.who is not None and item.title is not None
        return f"individual {item.who.key} {item.title.code}"
    if item.kind == "collective":
        assert item.title is not None
        return f"collective {item.unit.id} {item.title.code}"
    if item.kind == "initiative":
        assert item.who is not None
        return f"initiative {item.who.key} {name_key}"
    return f"work {item.unit.id} {name_key}"


def _describe(item: _Planned) -> str:
    if item.kind == "individual":
        assert item.who is not None and item.title is not None
        return f"{item.who.name} – {item.title.name}"
    if item.kind == "collective":
        assert item.title is not None
        return f"{item.unit.name} – {item.title.name}"
    if item.kind == "initiative":
        assert item.who is not None
        return f"the initiative {item.data['name']!r} of {item.who.name}"
    return f"the work {item.data['name']!r} of {item.unit.name}"


def _position_splits(text: str) -> list[tuple[str, str]]:
    """ "Tổ trưởng – Công đoàn cơ sở X" -> [("", whole), ("Tổ trưởng", "Công đoàn cơ sở X")…]:
    every way to read the cell as "position – unit", the whole cell (no position) first."""
    if not text:
        return []
    splits = [("", text)]
    for match in re.finditer(r"\s+[–—-]\s+|,\s*", text):
        before, after = text[: match.start()].strip(), text[match.end() :].strip()
        if before and after:
            splits.append((before, after))
    return splits


def campaign_start(campaign: Campaign) -> date:
    """The first day of the campaign's first phase (1 January when it has no phases); the
    chat's works flow uses the same day."""
    return min((p.starts_on for p in campaign.phases), default=date(campaign.year, 1, 1))


# --- the stage -------------------------------------------------------------------------------

# The registrations of the rows that passed their checks, in row order (``seq``: the order
# of their receipt numbers), with what the duplicate checks and the writing need.
_STAGE = SqlTable(
    "stage_registrations",
    MetaData(),
    Column("seq", Integer, nullable=False),
    Column("tbl", Integer, nullable=False),
    Column("row", Integer, nullable=False),
    Column("sheet", Text),
    Column("kind", Text, nullable=False),
    Column("status", Text, nullable=False),
    # The row's unit, and the unit the registration is written to (a person's own unit).
    Column("unit_id", Integer, nullable=False),
    Column("reg_unit_id", Integer, nullable=False),
    Column("person_id", Integer),
    Column("new_index", Integer),  # someone the import adds (checker.new_people)
    Column("title_code", Text),
    Column("ident", Text, nullable=False),
    Column("describe", Text, nullable=False),
    Column("name", Text),
    Column("name_key", Text),
    Column("commitment", Text),
    Column("field", Text),
    Column("description", Text),
    Column("applied_on", Date),
    Column("benefit", BigInteger),
    Column("occasion", Text),
    Column("value", BigInteger),
    Column("starts_on", Date),
    Column("ends_on", Date),
    Column("plaque", Boolean),
    Column("file_receipt", Text),
    Column("coauthors", Text),  # JSON: [[person id or null, name], ...]
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)
_S = _STAGE.c


def _staged(item: _Planned, seq: int) -> dict[str, Any]:
    data = item.data
    who = item.who
    line = item.line
    name = data.get("name")
    name_key = fold(name) if name else None
    coauthors = data.get("coauthors")
    return {
        "seq": seq,
        "tbl": line.table,
        "row": line.number,
        "sheet": line.sheet,
        "kind": item.kind,
        "status": str(item.status),
        "unit_id": item.unit.id,
        "reg_unit_id": who.unit_id if who is not None and item.kind != "work" else item.unit.id,
        "person_id": who.person.id if who is not None and who.person is not None else None,
        "new_index": who.new.index if who is not None and who.new is not None else None,
        "title_code": item.title.code if item.title is not None else None,
        "ident": _identity(item, name_key),
        "describe": _describe(item),
        "name": name,
        "name_key": name_key,
        "commitment": data.get("commitment"),
        "field": data.get("field"),
        "description": data.get("description"),
        "applied_on": data.get("applied"),
        "benefit": data.get("benefit"),
        "occasion": data.get("occasion"),
        "value": data.get("value"),
        "starts_on": data.get("start"),
        "ends_on": data.get("finish"),
        "plaque": data.get("plaque"),
        "file_receipt": line.text("receipt") or None,
        "coauthors": json.dumps(coauthors, ensure_ascii=False) if coauthors is not None else None,
    }


async def _index_stage(session: AsyncSession) -> None:
    connection = await session.connection()
    for statement in (
        "CREATE INDEX ix_stage_registrations_seq ON stage_registrations (seq)",
        "CREATE INDEX ix_stage_registrations_ident ON stage_registrations (ident)",
        # Temporary tables get no statistics by themselves; the checks are planned from these.
        "ANALYZE stage_registrations",
    ):
        await connection.execute(text(statement))


async def _drop_stage(session: AsyncSession) -> None:
    schema = "pg_temp" if is_postgresql(session) else "temp"
    connection = await session.connection()
    await connection.execute(text(f"DROP TABLE IF EXISTS {schema}.stage_registrations"))


async def _duplicates(session: AsyncSession, campaign: Campaign, problems: _Problems) -> None:
    """The same registration twice in the file, or already in the database: statements
    over the stage, of which the first problems are read and the rest counted."""
    first = _STAGE.alias("f")
    twice = (
        select(_S.ident, func.min(_S.seq).label("first"))
        .group_by(_S.ident)
        .having(func.count() > 1)
        .subquery()
    )
    await _listed(
        session,
        problems,
        select(_S.seq, _S.tbl, _S.row, _S.sheet, _S.describe, first.c.row)
        .join(twice, twice.c.ident == _S.ident)
        .join(first, first.c.seq == twice.c.first)
        .where(_S.seq > twice.c.first),
        lambda describe, row: f"{describe} already appears in row {row}",
    )
    live = [str(s) for s in LIVE_STATUSES]
    already = "{} is already registered (receipt {})".format
    for kind, joined in (
        (
            "individual",
            (Registration.person_id == _S.person_id)
            & (Registration.title_code == _S.title_code)
            & Registration.is_collective.is_(False),
        ),
        (
            "collective",
            (Registration.unit_id == _S.unit_id)
            & (Registration.title_code == _S.title_code)
            & Registration.is_collective.is_(True),
        ),
    ):
        # A unit's collectives (tổ, phòng) can hold the same title: one problem for the row.
        await _listed(
            session,
            problems,
            select(_S.seq, _S.tbl, _S.row, _S.sheet, _S.describe, func.min(Registration.receipt_no))
            .join(Registration, joined)
            .where(
                _S.kind == kind,
                Registration.campaign_id == campaign.id,
                Registration.status.in_(live),
            )
            .group_by(_S.seq, _S.tbl, _S.row, _S.sheet, _S.describe),
            already,
        )
    # Names are compared folded (accents and case aside), which the databases cannot do:
    # the candidates (the same author's initiatives, the same unit's works; few) are read a
    # page at a time and compared here.
    for entity, joined in (
        (Initiative, (Initiative.person_id == _S.person_id) & (_S.kind == "initiative")),
        (Work, (Work.unit_id == _S.unit_id) & (_S.kind == "work")),
    ):
        query = (
            select(_S.seq, _S.tbl, _S.row, _S.sheet, _S.describe, entity.receipt_no)
            .add_columns(entity.id, _S.name_key, entity.name)
            .join(entity, joined)
            .where(entity.campaign_id == campaign.id, entity.status.in_(live))
            .order_by(_S.seq, entity.id)
            .limit(BATCH)
        )
        after = (0, 0)
        last = 0
        while page := (
            await session.execute(query.where(tuple_(_S.seq, entity.id) > tuple_(*after)))
        ).all():
            for seq, table, number, sheet, what, receipt, eid, key, name in page:
                after = (seq, eid)
                if seq != last and key == fold(name):
                    last = seq
                    problems.add_at(table, number, sheet, already(what, receipt))


async def _listed(
    session: AsyncSession, problems: _Problems, query: Any, describe: Callable[[str, Any], str]
) -> None:
    """A problem for each row ``query`` finds (seq, table, row, sheet, what, detail): the
    first :data:`MAX_LISTED` in row order read, the rest counted."""
    found = (await session.execute(query.order_by(_S.seq).limit(MAX_LISTED))).all()
    for _seq, table, number, sheet, what, other in found:
        problems.add_at(table, number, sheet, describe(what, other))
    if len(found) == MAX_LISTED:
        total = await session.scalar(select(func.count()).select_from(query.subquery()))
        problems.total += int(total or 0) - len(found)


# --- writing ---------------------------------------------------------------------------------


async def _receipts(session: AsyncSession, campaign: Campaign, count: int) -> int:
    """The first of ``count`` receipt numbers taken in one atomic step, as next_receipt_no
    hands them out."""
    last = await session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(receipt_seq=Campaign.receipt_seq + count)
        .returning(Campaign.receipt_seq)
        .execution_options(synchronize_session=False)
    )
    assert last is not None
    return last - count + 1


async def _new_ids(session: AsyncSession, table: str, count: int) -> list[int]:
    """Ids for ``count`` rows of ``table`` written with their ids given (so the audit entries
    and the rows that refer to them need not find them again): drawn from the sequence on
    PostgreSQL; on SQLite, which has one writer and is writing in this transaction, the ones
    after the largest."""
    connection = await session.connection()
    if is_postgresql(session):
        drawn = await connection.execute(
            text(
                f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) "
                "FROM generate_series(1, :n)"
            ),
            {"n": count},
        )
        return [int(i) for (i,) in drawn]
    last = (
        await connection.execute(text(f"SELECT COALESCE(MAX(id), 0) FROM {table}"))
    ).scalar_one()
    return list(range(int(last) + 1, int(last) + 1 + count))


_TABLES: dict[str, SqlTable] = {
    "people": Person.__table__,  # type: ignore[dict-item]
    "unit_roles": UnitRole.__table__,  # type: ignore[dict-item]
    "audit_log": AuditEntry.__table__,  # type: ignore[dict-item]
    "registrations": Registration.__table__,  # type: ignore[dict-item]
    "initiatives": Initiative.__table__,  # type: ignore[dict-item]
    "initiative_authors": InitiativeAuthor.__table__,  # type: ignore[dict-item]
    "works": Work.__table__,  # type: ignore[dict-item]
}


async def _write_new_people(
    session: AsyncSession,
    checker: _Checker,
    summary: RegistrationImportSummary,
    now: datetime,
    file_name: str | None,
) -> list[int]:
    """The people the file adds to the roster, with their member role and an audit entry
    each; their ids, by their index."""
    ids: list[int] = []
    new_people = checker.new_people
    for start in range(0, len(new_people), BATCH):
        chunk = new_people[start : start + BATCH]
        drawn = await _new_ids(session, "people", len(chunk))
        ids.extend(drawn)
        await insert_rows(
            session,
            _TABLES["people"],
            [
                {
                    "id": pid,
                    "full_name": new.full_name,
                    "phone": new.phone,
                    "position": new.position,
                    "unit_id": new.unit.id,
                    "source": "roster",
                    "locale": None,
                    "reminders_muted": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for pid, new in zip(drawn, chunk, strict=True)
            ],
        )
        await insert_rows(
            session,
            _TABLES["unit_roles"],
            [
                {
                    "person_id": pid,
                    "unit_id": new.unit.id,
                    "role": str(Role.MEMBER),
                    "created_at": now,
                }
                for pid, new in zip(drawn, chunk, strict=True)
            ],
        )
        await insert_rows(
            session,
            _TABLES["audit_log"],
            [
                audit_entry(
                    now,
                    "person.import",
                    "person",
                    pid,
                    {
                        "created": True,
                        "full_name": new.full_name,
                        "phone": new.phone,
                        "unit_code": new.unit.code,
                        "reason": "named in an imported registration list",
                        "file": file_name,
                    },
                )
                for pid, new in zip(drawn, chunk, strict=True)
            ],
        )
    summary.new_people_count = len(new_people)
    summary.new_people = [
        f"{new.full_name} ({new.unit.code})" for new in new_people[:NEW_PEOPLE_LISTED]
    ]
    return ids


async def _write(
    session: AsyncSession,
    campaign: Campaign,
    checker: _Checker,
    summary: RegistrationImportSummary,
    *,
    late: bool,
    file_name: str | None,
) -> None:
    """Write what the stage holds, a page at a time in row order: the people the file adds,
    then each registration, initiative or work with its receipt number and audit entry."""
    now = utcnow()
    count = checker.seq
    # First a write to the database itself (the stage is a temporary one): on SQLite the
    # transaction holds the write lock from here, so the ids _new_ids hands out stay free.
    first = await _receipts(session, campaign, count) if count else 1
    summary.receipts = _Receipts(campaign.code, first, count)
    new_ids = await _write_new_people(session, checker, summary, now, file_name)
    occasion_days = {fold(o.name): o.on for o in campaign_occasions(campaign) if o.on}
    table = {TITLES: "registrations", INITIATIVES: "initiatives"}.get(checker.kind, "works")
    entity = {"registrations": "registration", "initiatives": "initiative"}.get(table, "work")
    connection = await session.connection()
    after = 0
    while True:
        page = (
            await connection.execute(
                select(_STAGE).where(_S.seq > after).order_by(_S.seq).limit(BATCH)
            )
        ).all()
        if not page:
            return
        after = page[-1].seq
        ids = await _new_ids(session, table, len(page))
        rows: list[dict[str, Any]] = []
        authors: list[dict[str, Any]] = []
        audit: list[dict[str, Any]] = []
        for s, entity_id in zip(page, ids, strict=True):
            receipt = f"{campaign.code}-{first + s.seq - 1:06d}"
            person_id = s.person_id if s.new_index is None else new_ids[s.new_index]
            common: dict[str, Any] = {
                "id": entity_id,
                "receipt_no": receipt,
                "campaign_id": campaign.id,
                "status": s.status,
                "source": SOURCE_IMPORT,
                "entered_by_id": None,
                "created_at": now,
                "updated_at": now,
                "withdrawn_at": None,
            }
            if table == "registrations":
                rows.append(
                    {
                        **common,
                        "title_code": s.title_code,
                        "is_collective": s.kind == "collective",
                        "person_id": person_id,
                        "unit_id": s.reg_unit_id,
                        "collective_name": "",
                        "collective_unit_id": None,
                        "commitment": s.commitment,
                    }
                )
            elif table == "initiatives":
                rows.append(
                    {
                        **common,
                        "person_id": person_id,
                        "unit_id": s.reg_unit_id,
                        "name": s.name,
                        "field": s.field,
                        "description": s.description,
                        "applied_on": s.applied_on,
                        "benefit": s.benefit,
                        "author_category": None,
                    }
                )
                authors.extend(
                    {
                        "initiative_id": entity_id,
                        "position": position,
                        "person_id": pid,
                        "name": name,
                    }
                    for position, (pid, name) in enumerate(json.loads(s.coauthors), start=1)
                )
            else:
                rows.append(
                    {
                        **common,
                        "unit_id": s.unit_id,
                        "name": s.name,
                        "occasion": s.occasion,
                        # The day of an occasion the campaign file lists by this name.
                        "occasion_on": occasion_days.get(fold(s.occasion)),
                        "value": s.value,
                        "starts_on": s.starts_on,
                        "ends_on": s.ends_on,
                        "plaque_requested": bool(s.plaque),
                        "plaque_installed_on": None,
                    }
                )
            details: dict[str, Any] = {
                "imported": True,
                "file": file_name,
                "sheet": s.sheet,
                "row": s.row,
                "receipt_no": receipt,
                "unit_id": s.unit_id,
            }
            if s.file_receipt:
                details["file_receipt_no"] = s.file_receipt
            if s.title_code is not None:
                details["title"] = s.title_code
                details["collective"] = s.kind == "collective"
            if late:
                details["late"] = True
            audit.append(audit_entry(now, f"{entity}.import", entity, entity_id, details))
        await insert_rows(session, _TABLES[table], rows)
        await insert_rows(session, _TABLES["initiative_authors"], authors)
        await insert_rows(session, _TABLES["audit_log"], audit)
