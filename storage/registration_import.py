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
at all: :class:`~storage.importers.ImportFailed` names each bad row and why. Decisions:

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
"""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.campaigns import campaign_occasions, works_close
from storage.counts import LIST_STATE_LABELS, list_units
from storage.exporters import unguard_formula
from storage.importers import MAX_LISTED, ImportFailed
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
from storage.repo import LIVE_STATUSES, campaign_by_id, campaign_end
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
from storage.units import registrations_locked

VIA_IMPORT = "import"
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
# What ``lists`` may ask of the imported units' lists (``thidua import registrations --lists``).
LISTS_SENT, LISTS_APPROVED = "sent", "approved"
LIST_MARKS = {LISTS_SENT: SubmissionStatus.PENDING, LISTS_APPROVED: SubmissionStatus.APPROVED}


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


@dataclass
class Table:
    """The raw cells of one sheet (or of a CSV file), each row with its number as shown."""

    sheet: str | None
    rows: list[tuple[int, list[Any]]]


def read_tables(path: str | Path, limits: Limits = DEFAULT_LIMITS) -> list[Table]:
    """Every sheet of an XLSX workbook, or the one table of a CSV file, as raw cells; the
    same early refusals as the roster import (zip sizes, row cap, malformed CSV or XML,
    encodings)."""
    path = Path(path)
    try:
        if table_kind(path) == "csv":
            return [Table(None, list(iter_csv(path, limits)))]
        workbook = open_workbook(path, limits)
        try:
            return [
                Table(sheet.title, [(n, list(r)) for n, r in iter_sheet(sheet, limits)])
                for sheet in workbook.worksheets
            ]
        finally:
            workbook.close()
    except TableError as exc:
        raise ImportFailed([exc.problem]) from exc


def _text(value: Any) -> str:
    """A cell as the text an officer sees."""
    if value is None:
        return ""
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


@dataclass
class _Line:
    """One data row: its place in the file and its cells by field."""

    table: int
    sheet: str | None
    number: int
    values: dict[str, Any]
    columns: frozenset[str]

    def text(self, name: str) -> str:
        return _text(self.values.get(name))

    def parts(self, name: str) -> list[str]:
        """A cell holding one value per line (the form lists all of a person's titles, their
        receipts and states in one row), or several separated by ";"."""
        raw = self.values.get(name)
        if not isinstance(raw, str):
            return [self.text(name)] if self.text(name) else []
        return [t for t in (_text(p) for p in re.split(r"[\n;]", raw)) if t]


@dataclass
class _Problems:
    """Problems in file order: (table, row, text); a general problem has row 0."""

    items: list[tuple[int, int, str]] = field(default_factory=list)
    several_tables: bool = False

    def add(self, line: _Line | None, text: str) -> None:
        if line is None:
            self.items.append((-1, 0, text))
            return
        where = f"row {line.number}"
        if self.several_tables and line.sheet:
            where += f" of sheet {line.sheet}"
        self.items.append((line.table, line.number, f"{where}: {text}"))

    def __len__(self) -> int:
        return len(self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        failed = ImportFailed([])
        # Sheet by sheet, then top down: the officer fixes the file in reading order.
        listed = [text for _t, _r, text in sorted(self.items, key=lambda i: i[:2])]
        if len(listed) > MAX_LISTED:
            more = len(listed) - MAX_LISTED
            listed = listed[:MAX_LISTED]
            listed.append(
                f"… and {more:,} more problem(s); the first {MAX_LISTED} are listed above"
            )
        failed.problems = listed
        failed.args = ("; ".join(failed.problems),)
        raise failed


def _header(cells: Sequence[Any], known: dict[str, str]) -> list[str | None]:
    return [known.get(column_key(_text(c))) if _text(c) else None for c in cells]


def _lines(tables: Sequence[Table], kind: str, problems: _Problems) -> list[_Line]:
    """The data rows of every table that holds a list of ``kind``."""
    known = aliases(kind)
    found: list[tuple[int, Table, int, list[Any]]] = []
    for index, table in enumerate(tables):
        for position, (_number, cells) in enumerate(table.rows[:HEADER_SEARCH_ROWS]):
            recognised = {f for f in _header(cells, known) if f}
            groups = _IDENTIFYING[kind]
            if all(recognised & set(g) for g in groups) and len(recognised) >= 2:
                found.append((index, table, position, cells))
                break
    if not found:
        problems.add(
            None,
            f"no sheet has the columns of a {kind} list; expected at least: "
            f"{MINIMAL_COLUMNS[kind]} (or the columns `thidua export registrations` writes)",
        )
        return []
    problems.several_tables = len(found) > 1
    lines: list[_Line] = []
    for index, table, position, cells in found:
        header_number = table.rows[position][0]
        where = f"the header (row {header_number}"
        where += f" of sheet {table.sheet})" if problems.several_tables and table.sheet else ")"
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
        for number, row in table.rows[position + 1 :]:
            texts = [_text(c) for c in row]
            if not any(texts):
                continue
            # The form's total row ends the table; anything below it is not a registration.
            # So do the signatures under a list without a total.
            if any(fold(t).startswith(_TABLE_ENDS) for t in texts if t):
                break
            values = {
                name: cell
                for name, cell in zip(fields, row, strict=False)
                if name and name != "ignored"
            }
            # Text only in STT or Ghi chú (a signature line under the table): not a row.
            if not any(_text(v) for v in values.values()):
                continue
            lines.append(_Line(index, table.sheet, number, values, present))
    return lines


_TABLE_ENDS = (fold(TOTAL_LABEL), fold(PREPARER), fold(SIGNER_FOR))


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


@dataclass
class _NewPerson:
    """Someone the file names who is not known yet: added to the roster on import."""

    full_name: str
    phone: str | None
    position: str | None
    unit: Unit
    person: Person | None = None  # set when written


@dataclass
class _Who:
    """A person a row is about: known (``person``) or to be added (``new``)."""

    person: Person | None = None
    new: _NewPerson | None = None

    @property
    def key(self) -> tuple[Any, ...]:
        if self.person is not None:
            return ("id", self.person.id)
        assert self.new is not None
        return ("new", id(self.new))

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

    def resolve(self) -> Person:
        if self.person is not None:
            return self.person
        assert self.new is not None and self.new.person is not None
        return self.new.person


@dataclass
class _Roster:
    ids: set[int] = field(default_factory=set)
    by_name: dict[str, list[Person]] = field(default_factory=dict)


@dataclass
class _Planned:
    """One registration, initiative or work to write, with the row it came from."""

    line: _Line
    kind: str  # "individual", "collective", "initiative", "work"
    status: str
    unit: Unit
    who: _Who | None = None
    title: Title | None = None
    data: dict[str, Any] = field(default_factory=dict)


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
    new_people: list[str] = field(default_factory=list)
    receipts: list[str] = field(default_factory=list)
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
        if self.new_people:
            out.append(
                f"Added {len(self.new_people)} person(s) to the roster (not found by phone, nor "
                f"by name in their unit): {', '.join(self.new_people)}"
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
    """Read ``path`` (CSV or XLSX) and import its registrations of ``kind``; ``progress``
    hears the number of rows read once they are."""
    tables = read_tables(path, limits)
    if progress is not None:
        progress(sum(len(t.rows) for t in tables))
    return await import_registrations(
        session,
        tables,
        kind,
        campaign,
        today=today,
        allow_late=allow_late,
        file_name=Path(path).name,
        lists=lists,
    )


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
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}")
    if lists is not None and lists not in LIST_MARKS:
        raise ValueError(f"unknown lists {lists!r}; use {' or '.join(LIST_MARKS)}")
    # With its phases: the works' date rules need the campaign's first and last day.
    loaded = await campaign_by_id(session, campaign.id)
    assert loaded is not None
    campaign = loaded
    problems = _Problems()
    lines = _lines(tables, kind, problems)
    problems.raise_if_any()
    if not lines:
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
    checker = _Checker(session, campaign, today, problems)
    await checker.load(lines)
    planned = await checker.check(lines, kind)
    problems.raise_if_any()
    summary = RegistrationImportSummary(kind, campaign.code, campaign.name, closes, late=late)
    summary.file_list_states = dict(checker.list_words)
    await _write(session, campaign, planned, checker, summary, late=late, file_name=file_name)
    await _mark_lists(session, campaign, planned, summary, lists, file_name)
    if progress is not None:
        progress(len(planned))
    return summary


async def _mark_lists(
    session: AsyncSession,
    campaign: Campaign,
    planned: Sequence[_Planned],
    summary: RegistrationImportSummary,
    lists: str | None,
    file_name: str | None,
) -> None:
    """Mark the lists carrying the imported rows (each unit's grassroots union, which sends
    the list: storage.counts.list_units) as ``lists`` asks, with an audit entry each."""
    # The units the rows were written to (a person found in a department: that department).
    row_units = {
        item.who.unit_id if item.who is not None and item.kind != "work" else item.unit.id
        for item in planned
    }
    by_unit = await list_units(
        session, await session.scalars(select(Unit).where(Unit.id.in_(sorted(row_units))))
    )
    units = {u.id: u for u in by_unit.values()}
    summary.lists = lists
    summary.list_units = len(units)
    if lists is None or not units:
        return
    wanted = LIST_MARKS[lists]
    existing = {
        s.unit_id: s
        for s in await session.scalars(
            select(UnitSubmission).where(
                UnitSubmission.campaign_id == campaign.id,
                UnitSubmission.unit_id.in_(list(units)),
            )
        )
    }
    now = utcnow()
    for unit_id in sorted(units):
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
    """Resolves the rows against the database and checks them, collecting every problem."""

    def __init__(
        self, session: AsyncSession, campaign: Campaign, today: date, problems: _Problems
    ) -> None:
        self.session = session
        self.campaign = campaign
        self.today = today
        self.problems = problems
        self.issuer: Unit | None = None
        self.by_code: dict[str, Unit] = {}
        self.by_name: dict[str, list[Unit]] = {}
        self.names = UnitNames()
        self.titles: dict[str, Title] = {}
        self.people_by_phone: dict[str, Person] = {}
        self.rosters: dict[int, _Roster] = {}
        self.new_people: list[_NewPerson] = []
        # List states the file's "Trạng thái" named (row counts), for the summary's hint.
        self.list_words: Counter[str] = Counter()
        # Someone new is one person however many rows name them: by (unit, name), by phone.
        self.new_by_name: dict[tuple[int, str], list[_NewPerson]] = {}
        self.new_by_phone: dict[str, _NewPerson] = {}
        self.locks: dict[int, Unit | None] = {}

    # -- loading ---------------------------------------------------------------------------

    async def load(self, lines: Sequence[_Line]) -> None:
        self.issuer = await self.session.get(Unit, self.campaign.issuer_unit_id)
        codes: set[str] = set()
        names: set[str] = set()
        phones: set[str] = set()
        for line in lines:
            if line.text("unit_code"):
                # Codes are kept as the org file wrote them; "cdcs-may" typed by hand is found.
                codes.update((line.text("unit_code"), line.text("unit_code").upper()))
            for name in ("unit_name", "collective_name", "name_or_unit"):
                if line.text(name):
                    names.add(fold(line.text(name)))
            names.update(fold(unit) for _pos, unit in _position_splits(line.text("position_unit")))
            with contextlib.suppress(Invalid):  # a bad phone is reported by the row check
                phones.add(_phone(line.text("phone")))
        for unit in await self._by(Unit.code, codes):
            self.by_code[unit.code] = unit
        for unit in await self._by(Unit.search_name, names):
            self.by_name.setdefault(unit.search_name, []).append(unit)
        await self.names.load(
            self.session, [*self.by_code.values(), *(u for us in self.by_name.values() for u in us)]
        )
        for title in await self.session.scalars(select(Title).where(Title.active)):
            for word in (title.code, title.abbreviation, title.name):
                if word:
                    self.titles.setdefault(fold(word), title)
            if title.abbreviation:
                self.titles.setdefault(fold(f"{title.name} ({title.abbreviation})"), title)
        # Several people with one phone can exist (made before an import); the oldest wins.
        for person in sorted(await self._by(Person.phone, phones), key=lambda p: -p.id):
            if person.phone:
                self.people_by_phone[person.phone] = person

    async def _by(self, column: Any, keys: Iterable[Any]) -> list[Any]:
        keys = list(dict.fromkeys(keys))
        found: list[Any] = []
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            found.extend(await self.session.scalars(select(column.class_).where(column.in_(chunk))))
        return found

    async def _roster(self, unit: Unit) -> _Roster:
        """The people of the unit and of the units below it, indexed by folded name."""
        if unit.id not in self.rosters:
            roster = _Roster()
            for person in await self.session.scalars(
                select(Person)
                .join(Unit, Person.unit_id == Unit.id)
                .where(Unit.path.startswith(unit.path, autoescape=True))
                .order_by(Person.id)
            ):
                roster.ids.add(person.id)
                roster.by_name.setdefault(fold(person.full_name), []).append(person)
            self.rosters[unit.id] = roster
        return self.rosters[unit.id]

    # -- units, titles, people -------------------------------------------------------------

    def _in_campaign(self, unit: Unit) -> bool:
        assert self.issuer is not None
        return unit.path.startswith(self.issuer.path)

    def _unit_by_name(self, line: _Line, name: str) -> Unit | None:
        found = self.by_name.get(fold(name), [])
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
                if fold(name) not in self.by_name:
                    self.problems.add(line, f"unknown unit {name!r}")
                return None, None
        elif line.text("position_unit"):
            for before, unit_name in _position_splits(line.text("position_unit")):
                if fold(unit_name) in self.by_name:
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
        if position is None:
            # "Chức vụ – đơn vị" beside a unit code: the position is what precedes the name.
            for before, unit_name in _position_splits(line.text("position_unit")):
                if before and fold(unit_name) == unit.search_name:
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
        title = self.titles.get(fold(text))
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
        roster = await self._roster(unit)
        if phone is not None and phone in self.people_by_phone:
            person = self.people_by_phone[phone]
            if fold(person.full_name) != fold(name):
                self.problems.add(
                    line, f"phone {phone} belongs to {person.full_name}, not to {name}"
                )
                return None
            if person.id not in roster.ids:
                self.problems.add(
                    line, f"{person.full_name} ({phone}) is on the roster of another unit"
                )
                return None
            return _Who(person=person)
        same = [
            p
            for p in roster.by_name.get(fold(name), [])
            if phone is None or p.phone in (None, phone)
        ]
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
            if new.unit.id != unit.id or fold(new.full_name) != fold(name):
                self.problems.add(
                    line, f"phone {phone} is given to {new.full_name} in another row, not to {name}"
                )
                return None
            return _Who(new=new)
        namesakes = self.new_by_name.setdefault((unit.id, fold(name)), [])
        for new in namesakes:
            if phone and new.phone and phone != new.phone:
                continue  # two namesakes, told apart by their phones
            if phone and not new.phone:
                new.phone = phone
                self.new_by_phone[phone] = new
            new.position = new.position or position
            return _Who(new=new)
        new = _NewPerson(name, phone, position, unit)
        self.new_people.append(new)
        namesakes.append(new)
        if phone:
            self.new_by_phone[phone] = new
        return _Who(new=new)

    async def locked(self, line: _Line, unit: Unit) -> bool:
        if unit.id not in self.locks:
            self.locks[unit.id] = await registrations_locked(
                self.session, self.campaign.id, unit.id
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
        word = fold(raw).strip(" .")
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
            return parse_name(raw)
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

    async def check(self, lines: Sequence[_Line], kind: str) -> list[_Planned]:
        planned: list[_Planned] = []
        for line in lines:
            before = len(self.problems)
            if kind == TITLES:
                rows = await self._title_row(line)
            elif kind == INITIATIVES:
                rows = await self._initiative_row(line)
            else:
                rows = await self._work_row(line)
            if len(self.problems) == before:
                planned.extend(rows)
        await self._duplicates(planned)
        return planned

    def _collective(self, line: _Line) -> bool | None:
        raw = line.text("kind")
        if raw:
            word = fold(raw)
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
        field_id = _FIELD_WORDS.get(fold(field_text).strip(" .")) if field_text else "other"
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
            same = (await self._roster(unit)).by_name.get(fold(author), [])
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
        plaque_text = fold(line.text("plaque")).strip(" .")
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

    # -- duplicates ------------------------------------------------------------------------

    async def _duplicates(self, planned: Sequence[_Planned]) -> None:
        """The same registration twice in the file, or already in the database."""
        seen: dict[tuple[Any, ...], _Planned] = {}
        for item in planned:
            key = _identity(item)
            first = seen.setdefault(key, item)
            if first is not item:
                self.problems.add(
                    item.line, f"{_describe(item)} already appears in row {first.line.number}"
                )
        campaign_id = self.campaign.id
        live = [str(s) for s in LIVE_STATUSES]
        person_ids = [
            p.who.person.id for p in planned if p.who is not None and p.who.person is not None
        ]
        unit_ids = [p.unit.id for p in planned]
        existing: dict[tuple[Any, ...], str] = {}
        if any(p.kind == "individual" for p in planned):
            for reg in await self._in(
                select(Registration).where(
                    Registration.campaign_id == campaign_id,
                    Registration.status.in_(live),
                    Registration.is_collective.is_(False),
                ),
                Registration.person_id,
                person_ids,
            ):
                existing[("individual", ("id", reg.person_id), reg.title_code)] = reg.receipt_no
        if any(p.kind == "collective" for p in planned):
            for reg in await self._in(
                select(Registration).where(
                    Registration.campaign_id == campaign_id,
                    Registration.status.in_(live),
                    Registration.is_collective.is_(True),
                ),
                Registration.unit_id,
                unit_ids,
            ):
                existing[("collective", reg.unit_id, reg.title_code)] = reg.receipt_no
        if any(p.kind == "initiative" for p in planned):
            for initiative in await self._in(
                select(Initiative).where(
                    Initiative.campaign_id == campaign_id, Initiative.status.in_(live)
                ),
                Initiative.person_id,
                person_ids,
            ):
                key = ("initiative", ("id", initiative.person_id), fold(initiative.name))
                existing[key] = initiative.receipt_no
        if any(p.kind == "work" for p in planned):
            for work in await self._in(
                select(Work).where(Work.campaign_id == campaign_id, Work.status.in_(live)),
                Work.unit_id,
                unit_ids,
            ):
                existing[("work", work.unit_id, fold(work.name))] = work.receipt_no
        for item in planned:
            receipt = existing.get(_identity(item))
            if receipt is not None:
                self.problems.add(
                    item.line, f"{_describe(item)} is already registered (receipt {receipt})"
                )

    async def _in(self, query: Any, column: Any, keys: Sequence[Any]) -> list[Any]:
        keys = list(dict.fromkeys(keys))
        found: list[Any] = []
        for start in range(0, len(keys), _CHUNK):
            found.extend(
                await self.session.scalars(query.where(column.in_(keys[start : start + _CHUNK])))
            )
        return found


def _identity(item: _Planned) -> tuple[Any, ...]:
    if item.kind == "individual":
        assert item.who is not None and item.title is not None
        return ("individual", item.who.key, item.title.code)
    if item.kind == "collective":
        assert item.title is not None
        return ("collective", item.unit.id, item.title.code)
    if item.kind == "initiative":
        assert item.who is not None
        return ("initiative", item.who.key, fold(item.data["name"]))
    return ("work", item.unit.id, fold(item.data["name"]))


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


# --- writing ---------------------------------------------------------------------------------


async def _receipts(session: AsyncSession, campaign: Campaign, count: int) -> list[str]:
    """``count`` receipt numbers in one atomic step, as next_receipt_no hands them out."""
    last = await session.scalar(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(receipt_seq=Campaign.receipt_seq + count)
        .returning(Campaign.receipt_seq)
        .execution_options(synchronize_session=False)
    )
    assert last is not None
    return [f"{campaign.code}-{seq:06d}" for seq in range(last - count + 1, last + 1)]


async def _write(
    session: AsyncSession,
    campaign: Campaign,
    planned: Sequence[_Planned],
    checker: _Checker,
    summary: RegistrationImportSummary,
    *,
    late: bool,
    file_name: str | None,
) -> None:
    # Only people some row still needs: a person of a row dropped for another reason is not
    # added (there are no dropped rows when we get here, but the rule costs nothing).
    needed = {id(p.who.new) for p in planned if p.who is not None and p.who.new is not None}
    new_people = [n for n in checker.new_people if id(n) in needed]
    occasion_days = {fold(o.name): o.on for o in campaign_occasions(campaign) if o.on}
    for new in new_people:
        new.person = Person(
            full_name=new.full_name,
            phone=new.phone,
            position=new.position,
            unit_id=new.unit.id,
            source="roster",
        )
        session.add(new.person)
    await session.flush()
    for new in new_people:
        assert new.person is not None
        session.add(UnitRole(person_id=new.person.id, unit_id=new.unit.id, role=Role.MEMBER))
        session.add(
            AuditEntry(
                via=VIA_IMPORT,
                action="person.import",
                entity="person",
                entity_id=new.person.id,
                details={
                    "created": True,
                    "full_name": new.full_name,
                    "phone": new.phone,
                    "unit_code": new.unit.code,
                    "reason": "named in an imported registration list",
                    "file": file_name,
                },
            )
        )
        summary.new_people.append(f"{new.full_name} ({new.unit.code})")

    receipts = await _receipts(session, campaign, len(planned)) if planned else []
    written: list[tuple[_Planned, str, Registration | Initiative | Work]] = []
    for item, receipt in zip(planned, receipts, strict=True):
        common: dict[str, Any] = {
            "receipt_no": receipt,
            "campaign_id": campaign.id,
            "status": item.status,
            "source": SOURCE_IMPORT,
            "entered_by_id": None,
        }
        entity: Registration | Initiative | Work
        if item.kind in ("individual", "collective"):
            assert item.title is not None
            person = item.who.resolve() if item.who is not None else None
            entity = Registration(
                **common,
                title_code=item.title.code,
                is_collective=item.kind == "collective",
                person_id=person.id if person else None,
                unit_id=item.who.unit_id if item.who is not None else item.unit.id,
                commitment=item.data.get("commitment"),
            )
            if item.kind == "collective":
                summary.collectives += 1
            else:
                summary.individuals += 1
        elif item.kind == "initiative":
            assert item.who is not None
            data = item.data
            entity = Initiative(
                **common,
                person_id=item.who.resolve().id,
                unit_id=item.who.unit_id,
                name=data["name"],
                field=data["field"],
                description=data["description"],
                applied_on=data["applied"],
                benefit=data["benefit"],
                authors=[
                    InitiativeAuthor(position=i, person_id=pid, name=name)
                    for i, (pid, name) in enumerate(data["coauthors"], start=1)
                ],
            )
            summary.initiatives += 1
        else:
            data = item.data
            entity = Work(
                **common,
                unit_id=item.unit.id,
                name=data["name"],
                occasion=data["occasion"],
                # The day of an occasion the campaign file lists by this name.
                occasion_on=occasion_days.get(fold(data["occasion"])),
                value=data["value"],
                starts_on=data["start"],
                ends_on=data["finish"],
                plaque_requested=data["plaque"],
            )
            summary.works += 1
        session.add(entity)
        written.append((item, receipt, entity))
    await session.flush()
    entity_names = {"individual": "registration", "collective": "registration"}
    for item, receipt, entity in written:
        name = entity_names.get(item.kind, item.kind)
        details: dict[str, Any] = {
            "imported": True,
            "file": file_name,
            "sheet": item.line.sheet,
            "row": item.line.number,
            "receipt_no": receipt,
            "unit_id": item.unit.id,
        }
        if item.line.text("receipt"):
            details["file_receipt_no"] = item.line.text("receipt")
        if item.title is not None:
            details["title"] = item.title.code
            details["collective"] = item.kind == "collective"
        if late:
            details["late"] = True
        session.add(
            AuditEntry(
                via=VIA_IMPORT,
                action=f"{name}.import",
                entity=name,
                entity_id=entity.id,
                details=details,
            )
        )
    summary.receipts = receipts
    await session.flush()
