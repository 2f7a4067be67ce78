"""Import the organisation tree and member rosters from CSV or XLSX files.

Officers keep their unit lists and rosters in Excel; these functions turn such a file into
units, people and member roles. Every import is all-or-nothing: all rows are checked first
and, if any is wrong, :class:`ImportFailed` lists every problem with the row number the
officer sees in the spreadsheet, and nothing is written. Functions never commit; the caller
owns the transaction.
"""

from __future__ import annotations

import contextlib
import functools
import io
import itertools
import re
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import Column, Integer, MetaData, Table, Text, bindparam, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from storage import tables
from storage.bulk import (
    create_stage,
    drop_stage,
    drop_temp,
    indexes_set_aside,
    insert_rows,
    is_postgresql,
    plan_for_bulk,
)
from storage.models import AuditEntry, Person, Role, UnitKind, UnitRole

# text.py is pure (no platform, no database): the same fold()/parse_phone() must be used
# here and in the conversation, or "Công ty May" stored here would not be found there.
from storage.normalize import Invalid, clean, fold, parse_name, parse_phone
from storage.tables import DEFAULT_LIMITS, Limits, TableError, csv_rows, sniff_delimiter
from storage.types import Progress, UTCDateTime, utcnow

if TYPE_CHECKING:
    from openpyxl import Workbook

VIA_IMPORT = "import"

# At most this many problems are listed; the rest are counted (a bad export of a province's
# roster can have a problem on every one of its million rows).
MAX_LISTED = 100


class ImportFailed(Exception):
    """The file cannot be imported; ``problems`` says why, one plain sentence per problem.

    ``total`` is how many problems were found when more were found than listed; the list
    then ends with a sentence that counts the rest.
    """

    def __init__(self, problems: Sequence[str], total: int | None = None) -> None:
        # In file order, whichever check found them: the officer fixes the file top down.
        listed = sorted(problems, key=_row_of)
        if total is not None and total > len(listed):
            listed.append(
                f"… and {total - len(listed):,} more problem(s); the first {len(listed)} are "
                "listed above"
            )
        self.problems = listed
        self.total = max(total or 0, len(problems))
        super().__init__("; ".join(self.problems))


def _row_of(problem: str) -> int:
    match = re.match(r"row (\d+)", problem)
    return int(match.group(1)) if match else 0


class Problems:
    """Problems found while streaming: the first :data:`MAX_LISTED` in row order, and a
    count of all of them, in memory that does not grow with the file."""

    def __init__(self) -> None:
        self.items: list[tuple[int, str]] = []
        self.total = 0

    def add(self, row: int, text: str) -> None:
        self.total += 1
        self.items.append((row, text))
        if len(self.items) > 4 * MAX_LISTED:
            self._trim()

    def _trim(self) -> None:
        self.items.sort(key=lambda item: item[0])
        del self.items[MAX_LISTED:]

    def __bool__(self) -> bool:
        return self.total > 0

    def failure(self) -> ImportFailed:
        self._trim()
        return ImportFailed([text for _row, text in self.items], self.total)

    def raise_if_any(self) -> None:
        if self.total:
            raise self.failure()


@dataclass(frozen=True)
class Row:
    """One data row: ``number`` is the row as shown in the spreadsheet (header = 1)."""

    number: int
    values: dict[str, str]


@dataclass
class ImportSummary:
    """What an import did, for the one-line report."""

    kind: str  # "units" or "members"
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.created + self.updated + self.unchanged

    def describe(self) -> str:
        """ "Imported 12 units (3 new, 9 updated)"."""
        parts = [f"{self.created} new", f"{self.updated} updated"]
        if self.unchanged:
            parts.append(f"{self.unchanged} unchanged")
        return f"Imported {self.total} {self.kind} ({', '.join(parts)})"


# --- reading files ------------------------------------------------------------------------


def _header_key(value: str) -> str:
    """ "Parent code " / "PARENT_CODE" / "parent-code" -> "parent_code"."""
    return re.sub(r"[\s\-]+", "_", fold(value)).strip("_")


def _cell_text(value: Any) -> str:
    """A spreadsheet cell as the text the officer sees."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        # Excel stores 912345678 typed in a number cell as a float.
        return str(int(value))
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else str(value)
    if isinstance(value, date):
        return value.isoformat()
    return clean(str(value))


def _rows_from_table(
    table: Iterable[tuple[int, Sequence[Any]]], problems: Problems, *, ragged: bool = False
) -> tuple[list[str], Iterator[Row]]:
    """Header and data rows from numbered raw cells, the rows read as they are consumed;
    blank rows are skipped but keep their number. ``ragged``: a row with fewer cells than
    the header is a problem (a CSV whose delimiter is missing, or cut by a stray quote)."""
    iterator = iter(table)
    first = next(iterator, None)
    header_cells = first[1] if first is not None else None
    if header_cells is None or not any(_cell_text(c) for c in header_cells):
        raise ImportFailed(["row 1: the file is empty or its first row (the header) is blank"])
    header = [_header_key(_cell_text(c)) for c in header_cells]
    width = len(header)
    while width and not header[width - 1]:
        width -= 1
    named = [name for name in header if name]
    # Every column named, and a row as wide as the header: the common case, built at once.
    all_named = len(named) == len(header)

    def rows() -> Iterator[Row]:
        for number, cells in iterator:
            texts = [_cell_text(c) for c in cells]
            if not any(texts):
                continue
            if all_named and len(texts) == len(header):
                yield Row(number, dict(zip(header, texts, strict=True)))
                continue
            if ragged and len(texts) < width:
                problems.add(
                    number,
                    f"row {number}: {len(texts)} cell(s) where the header has {width}; a "
                    "delimiter is missing, or a quote joined cells together",
                )
                continue
            values: dict[str, str] = {}
            for index, cell in enumerate(texts):
                name = header[index] if index < len(header) else ""
                if not name:
                    if cell:
                        problems.add(
                            number,
                            f"row {number}: value {cell!r} in column {index + 1}, which has "
                            "no header",
                        )
                    continue
                values[name] = cell
            for name in named:
                values.setdefault(name, "")
            yield Row(number, values)

    return header, rows()


def _table_error(exc: TableError) -> ImportFailed:
    return ImportFailed([exc.problem])


def csv_cells(raw: bytes) -> list[list[str]]:
    """The cells of a small UTF-8 CSV held in memory (BOM or not; "," ";" or tab)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFailed(
            [
                "the file is not UTF-8 text; in Excel use 'Save As' → 'CSV UTF-8' "
                f"(bad byte at position {exc.start})"
            ]
        ) from exc
    first_line = text.split("\n", 1)[0]
    lines = io.StringIO(text, newline="")
    try:
        return [cells for _n, cells in csv_rows(lines, sniff_delimiter(first_line), DEFAULT_LIMITS)]
    except TableError as exc:
        raise _table_error(exc) from exc


def read_csv(source: str | Path | bytes | BinaryIO) -> tuple[list[str], list[Row]]:
    """Header and rows of a CSV (for small files in memory; files are read by
    :func:`read_rows`, which streams them)."""
    if isinstance(source, str | Path):
        header, rows, problems = read_rows(source)
        found = list(rows)
        problems.raise_if_any()
        return header, found
    raw = source if isinstance(source, bytes) else source.read()
    problems = Problems()
    header, rows = _rows_from_table(enumerate(csv_cells(raw), start=1), problems)
    found = list(rows)
    problems.raise_if_any()
    return header, found


def open_workbook(source: str | Path | BinaryIO, limits: Limits = DEFAULT_LIMITS) -> Workbook:
    """An XLSX workbook opened read-only, after the checks of its zip; a file that is not
    one says so in plain words."""
    try:
        return tables.open_workbook(source, limits)
    except TableError as exc:
        raise _table_error(exc) from exc


def iter_table(
    path: str | Path, limits: Limits = DEFAULT_LIMITS
) -> Iterator[tuple[int, Sequence[Any]]]:
    """(row number, cells) of a CSV file or of an XLSX workbook's first sheet, one row at a
    time; a hostile or malformed file raises :class:`ImportFailed` naming the row."""
    path = Path(path)
    try:
        if tables.table_kind(path) == "csv":
            yield from tables.iter_csv(path, limits)
            return
        workbook = tables.open_workbook(path, limits)
        try:
            yield from tables.iter_sheet(workbook.worksheets[0], limits)
        finally:
            workbook.close()
    except TableError as exc:
        raise _table_error(exc) from exc


def read_rows(
    path: str | Path, limits: Limits = DEFAULT_LIMITS
) -> tuple[list[str], Iterator[Row], Problems]:
    """Header, the rows (read as they are consumed) and where the reading's problems go."""
    problems = Problems()
    try:
        ragged = tables.table_kind(Path(path)) == "csv"
    except TableError as exc:
        raise _table_error(exc) from exc
    header, rows = _rows_from_table(iter_table(path, limits), problems, ragged=ragged)
    return header, rows, problems


def read_table(path: str | Path) -> tuple[list[str], list[Row]]:
    """Read a whole (small) CSV or XLSX file, chosen by its extension."""
    header, rows, problems = read_rows(path)
    found = list(rows)
    problems.raise_if_any()
    return header, found


# Rows checked and written per step: enough to amortise each statement, little memory.
BATCH = 5000


def _first_row(
    rows: Iterator[Row],
    problems: Problems,
    header: Sequence[str] | None,
    required: Sequence[str],
    optional: Sequence[str],
) -> Row | None:
    """The first row of an import, its columns checked (against ``header``, else the first
    row's own values); None for no rows at all, after raising for the problems already
    found or for a header without data."""
    first = next(rows, None)
    if header is None and first is not None:
        header = list(first.values)
    if header is not None:
        _check_columns(header, required, optional)
    if first is None:
        problems.raise_if_any()
        if header is not None:
            raise ImportFailed(["the file has a header but no data rows"])
    return first


async def _stage_rows(
    session: AsyncSession,
    stage: Table,
    rows: Iterable[Row],
    staged_of: Callable[[Row, Problems], dict[str, Any] | None],
    problems: Problems,
    progress: Progress | None,
) -> int:
    """Check ``rows`` one at a time (``staged_of`` names a bad row's problems) and copy them
    into ``stage`` :data:`BATCH` at a time; ``progress`` hears each full batch. Returns the
    number of rows read (the caller reports the last, smaller batch when it is done)."""
    batch: list[dict[str, Any]] = []
    read = 0
    for row in rows:
        read += 1
        staged = staged_of(row, problems)
        if staged is not None:
            batch.append(staged)
        if read % BATCH == 0:
            await insert_rows(session, stage, batch)
            batch = []
            if progress is not None:
                progress(BATCH)
    await insert_rows(session, stage, batch)
    return read


def _check_columns(header: Sequence[str], required: Sequence[str], optional: Sequence[str]) -> None:
    expected = ", ".join([*required, *(f"[{c}]" for c in optional)])
    present = [h for h in header if h]
    problems: list[str] = []
    missing = [c for c in required if c not in present]
    if missing:
        problems.append(f"missing column(s) {', '.join(missing)}; expected columns: {expected}")
    unknown = [h for h in present if h not in required and h not in optional]
    if unknown:
        problems.append(f"unknown column(s) {', '.join(unknown)}; expected columns: {expected}")
    duplicated = sorted({h for h in present if present.count(h) > 1})
    if duplicated:
        problems.append(f"column(s) {', '.join(duplicated)} appear more than once")
    if problems:
        raise ImportFailed(problems)


# --- units --------------------------------------------------------------------------------

UNIT_COLUMNS = ("code", "name", "parent_code")
UNIT_OPTIONAL = ("kind",)

# Folded words officers write in a "kind" column, and name prefixes that give the kind away.
_KIND_WORDS: dict[str, UnitKind] = {
    "tld": UnitKind.TLD,
    "tong lien doan": UnitKind.TLD,
    "tong lien doan lao dong viet nam": UnitKind.TLD,
    "province": UnitKind.PROVINCE,
    "ldld tinh": UnitKind.PROVINCE,
    "ldld thanh pho": UnitKind.PROVINCE,
    "ldld tinh/thanh pho": UnitKind.PROVINCE,
    "lien doan lao dong tinh": UnitKind.PROVINCE,
    "lien doan lao dong thanh pho": UnitKind.PROVINCE,
    "cong doan nganh trung uong": UnitKind.PROVINCE,
    "cap tinh": UnitKind.PROVINCE,
    "upper": UnitKind.UPPER,
    "cong doan cap tren co so": UnitKind.UPPER,
    "cong doan cap tren truc tiep co so": UnitKind.UPPER,
    "cap tren co so": UnitKind.UPPER,
    "cap tren truc tiep co so": UnitKind.UPPER,
    "cong doan khu cong nghiep": UnitKind.UPPER,
    "cong doan nganh dia phuong": UnitKind.UPPER,
    "cong doan nganh": UnitKind.UPPER,
    "cong doan xa": UnitKind.UPPER,
    "cong doan phuong": UnitKind.UPPER,
    "cong doan dac khu": UnitKind.UPPER,
    "ldld quan": UnitKind.UPPER,
    "ldld huyen": UnitKind.UPPER,
    "grassroots": UnitKind.GRASSROOTS,
    "cdcs": UnitKind.GRASSROOTS,
    "cong doan co so": UnitKind.GRASSROOTS,
    "nghiep doan co so": UnitKind.GRASSROOTS,
    "co so": UnitKind.GRASSROOTS,
    "department": UnitKind.DEPARTMENT,
    "cong doan bo phan": UnitKind.DEPARTMENT,
    "cdbp": UnitKind.DEPARTMENT,
    "bo phan": UnitKind.DEPARTMENT,
    "team": UnitKind.TEAM,
    "to cong doan": UnitKind.TEAM,
    "to": UnitKind.TEAM,
}


def parse_kind(text: str) -> UnitKind:
    """ "CĐCS", "Công đoàn cơ sở", "grassroots" -> UnitKind.GRASSROOTS; raises Invalid."""
    key = fold(text).strip(" .")
    try:
        return _KIND_WORDS[key]
    except KeyError:
        raise Invalid("unknown_kind") from None


def guess_kind(name: str) -> UnitKind | None:
    """The kind a unit's name announces ("Tổ công đoàn Cắt" -> team), if any."""
    folded = fold(name)
    best: tuple[int, UnitKind] | None = None
    for words, kind in _KIND_WORDS.items():
        # Only multi-word phrases: "to" or "co so" alone are too common inside names.
        announced = folded == words or folded.startswith(words + " ")
        if " " in words and announced and (best is None or len(words) > best[0]):
            best = (len(words), kind)
    return best[1] if best else None


_UNIT_STAGE = Table(
    "stage_units",
    MetaData(),
    Column("row", Integer, nullable=False),
    # 0 when a check of the row itself failed: the row still names its code, so a child of
    # a bad row gets no second, confusing "unknown parent" error.
    Column("ok", Integer, nullable=False),
    Column("code", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("search_name", Text, nullable=False),
    Column("parent_code", Text),
    # The kind the file gives (None: an existing unit keeps its own), and the kind a new
    # unit gets (given, guessed from its name, or grassroots).
    Column("kind", Text),
    Column("new_kind", Text, nullable=False),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)

# The temporary tables of one org import, dropped afterwards on SQLite.
_UNIT_TEMPS = ("stage_units", "unit_final", "unit_depth", "unit_plan", "unit_links",
               "unit_paths", "unit_moved")  # fmt: skip

_UNKNOWN_KIND = (
    "unknown kind {kind!r}; use one of tld, province, upper, grassroots, department, team "
    "(or the Vietnamese name, e.g. 'LĐLĐ tỉnh', 'công đoàn cấp trên cơ sở', 'CĐCS', "
    "'công đoàn bộ phận', 'tổ công đoàn')"
)


def _unit_row(row: Row, problems: Problems) -> dict[str, Any] | None:
    """The row's checked values for the staging table, or None when it has no code."""
    before = problems.total
    number = row.number
    code = row.values.get("code", "")
    name = row.values.get("name", "")
    parent_code = row.values.get("parent_code", "") or None
    kind_text = row.values.get("kind", "")
    if not code:
        problems.add(number, f"row {number}: code is empty")
    elif len(code) > 64:
        problems.add(number, f"row {number}: code {code!r} is longer than 64 characters")
    if not name:
        problems.add(number, f"row {number}: name is empty")
    elif len(name) > 300:
        problems.add(number, f"row {number}: name is longer than 300 characters")
    if parent_code is not None and parent_code == code:
        problems.add(number, f"row {number}: unit {code!r} cannot be its own parent")
    kind: UnitKind | None = None
    if kind_text:
        try:
            kind = parse_kind(kind_text)
        except Invalid:
            problems.add(number, f"row {number}: " + _UNKNOWN_KIND.format(kind=kind_text))
    if not code:
        return None
    return {
        "row": number,
        "ok": int(problems.total == before),
        "code": code,
        "name": name,
        "search_name": fold(name),
        "parent_code": parent_code,
        "kind": str(kind) if kind is not None else None,
        "new_kind": str(kind or guess_kind(name) or UnitKind.GRASSROOTS),
    }


async def import_units(
    session: AsyncSession, rows: Iterable[Row], progress: Progress | None = None
) -> ImportSummary:
    """Create or update units from rows with ``code, name, parent_code[, kind]``.

    Parents may come after their children in the file or already be in the database. An
    existing code is updated (name, kind, parent); a unit that moves takes its whole subtree
    along, and every path below it is rewritten. Raises :class:`ImportFailed` (and writes
    nothing) on any bad row, unknown parent or cycle.

    Streams like the roster import: rows are checked and copied into a staging table a
    batch at a time, and the checks that need the whole tree (duplicate codes, unknown
    parents, cycles) and the merge are set-based statements, so memory does not grow with
    the tree (a national one is about 130,000 units). ``progress`` is advanced by the rows
    read after each batch.
    """
    return await _import_units(session, iter(rows), Problems(), None, progress)


async def _import_units(
    session: AsyncSession,
    rows: Iterator[Row],
    problems: Problems,
    header: Sequence[str] | None,
    progress: Progress | None,
) -> ImportSummary:
    first = _first_row(rows, problems, header, UNIT_COLUMNS, UNIT_OPTIONAL)
    if first is None:
        return ImportSummary("units")
    # Objects the caller added are written first: the statements below read the tables.
    await session.flush()
    await plan_for_bulk(session)
    await create_stage(session, _UNIT_STAGE)
    try:
        read = await _stage_rows(
            session, _UNIT_STAGE, itertools.chain([first], rows), _unit_row, problems, progress
        )
        if progress is not None and read % BATCH:
            progress(read % BATCH)
        await _sql(session, "CREATE INDEX ix_stage_units_code ON stage_units (code)")
        await _sql(session, "CREATE INDEX ix_stage_units_parent ON stage_units (parent_code)")
        await _sql(session, "ANALYZE stage_units")
        await _check_units(session, problems)
        problems.raise_if_any()
        await _check_cycles(session, problems)
        problems.raise_if_any()
        return await _merge_units(session)
    finally:
        if not is_postgresql(session):
            for name in _UNIT_TEMPS:
                await _sql(session, f"DROP TABLE IF EXISTS temp.{name}")


async def _check_units(session: AsyncSession, problems: Problems) -> None:
    # The same code twice: named on every row after the first one.
    await _listed(
        session,
        problems,
        "SELECT s.row, s.code, f.first_row FROM stage_units s JOIN (SELECT code, "
        "MIN(row) AS first_row FROM stage_units WHERE LENGTH(code) <= 64 GROUP BY code "
        "HAVING COUNT(*) > 1) f ON f.code = s.code WHERE s.row > f.first_row",
        lambda row, code, first: f"row {row}: code {code!r} already appears in row {first}",
    )
    # A parent that is neither in the file (on any row, good or bad) nor in the database;
    # asked of the rows that are otherwise fine and the first with their code.
    await _listed(
        session,
        problems,
        "SELECT s.row, s.parent_code FROM stage_units s WHERE s.ok = 1 AND s.parent_code IS "
        "NOT NULL AND NOT EXISTS (SELECT 1 FROM stage_units d WHERE d.code = s.code AND "
        "d.row < s.row) AND NOT EXISTS (SELECT 1 FROM units u WHERE u.code = s.parent_code) "
        "AND NOT EXISTS (SELECT 1 FROM stage_units f WHERE f.code = s.parent_code)",
        lambda row, parent: (
            f"row {row}: unknown parent_code {parent!r} (not in this file nor in the database)"
        ),
    )


async def _temp_table(session: AsyncSession, name: str, query: str, *indexes: str) -> None:
    """``CREATE TEMP TABLE name AS query`` with indexes on the given columns, analysed."""
    postgresql = is_postgresql(session)
    await drop_temp(session, name)
    await _sql(
        session, f"CREATE TEMP TABLE {name} {'ON COMMIT DROP ' if postgresql else ''}AS {query}"
    )
    for column in indexes:
        await _sql(session, f"CREATE INDEX ix_{name}_{column} ON {name} ({column})")
    await _sql(session, f"ANALYZE {name}")


async def _check_cycles(session: AsyncSession, problems: Problems) -> None:
    """The tree as it would be (the file's rows, the database's other units) walked down
    from its roots; a unit the walk never reaches hangs on a cycle, or under one. Every
    row is valid here, and its code appears once."""
    await _temp_table(
        session,
        "unit_final",
        "SELECT s.row, s.code, s.parent_code FROM stage_units s UNION ALL SELECT NULL, u.code, "
        "p.code FROM units u LEFT JOIN units p ON p.id = u.parent_id WHERE NOT EXISTS "
        "(SELECT 1 FROM stage_units s WHERE s.code = u.code)",
        "code",
        "parent_code",
    )
    await _temp_table(
        session,
        "unit_depth",
        "WITH RECURSIVE tree(code, depth) AS (SELECT code, 0 FROM unit_final WHERE "
        "parent_code IS NULL UNION ALL SELECT f.code, t.depth + 1 FROM unit_final f JOIN "
        "tree t ON f.parent_code = t.code) SELECT code, depth FROM tree",
        "code",
    )
    # Only the units on or under a cycle come to memory (none in a good file).
    stranded = (
        await _sql(
            session,
            "SELECT f.row, f.code, f.parent_code FROM unit_final f WHERE NOT EXISTS "
            "(SELECT 1 FROM unit_depth d WHERE d.code = f.code)",
        )
    ).all()
    if not stranded:
        return
    parent_of: dict[str, str | None] = {code: parent for _row, code, parent in stranded}
    # A cycle is reported once, on the first row (in file order) that belongs to it.
    reported: set[str] = set()
    for row, code, parent in sorted((r for r in stranded if r[0] is not None), key=lambda r: r[0]):
        if code in reported:
            continue
        chain = [code]
        on_chain = {code}
        current = parent_of.get(code)
        while current is not None and current not in on_chain:
            chain.append(current)
            on_chain.add(current)
            current = parent_of.get(current)
        if current == code:
            reported.update(chain)
            loop = " → ".join([*chain, code])
            problems.add(row, f"row {row}: parent_code {parent!r} makes a cycle ({loop})")


async def _merge_units(session: AsyncSession) -> ImportSummary:
    now = utcnow()
    stamp = bindparam("now", now, type_=UTCDateTime())
    postgresql = is_postgresql(session)
    # Ids for the new units now, so every final path can be computed before anything is
    # written; shallow first, like the file's levels.
    if postgresql:
        sequence = (
            await _sql(session, "SELECT pg_get_serial_sequence('units', 'id')")
        ).scalar_one()
        new_id = f"nextval('{sequence.replace(chr(39), chr(39) * 2)}'::regclass)"
    else:
        # SQLite: one writer at a time, and this transaction writes units below.
        new_id = (
            "(SELECT COALESCE(MAX(id), 0) FROM units) + ROW_NUMBER() OVER "
            "(PARTITION BY u.id IS NULL ORDER BY d.depth, s.row)"
        )
    await _temp_table(
        session,
        "unit_plan",
        "SELECT s.row, s.code, s.name, s.search_name, s.kind, s.new_kind, s.parent_code, "
        "d.depth, u.id AS old_id, u.name AS old_name, u.kind AS old_kind, u.parent_id AS "
        "old_parent_id, u.path AS old_path, op.code AS old_parent_code, CASE WHEN u.id IS "
        f"NULL THEN {new_id} ELSE u.id END AS id FROM stage_units s JOIN unit_depth d ON "
        "d.code = s.code LEFT JOIN units u ON u.code = s.code LEFT JOIN units op ON op.id = "
        "u.parent_id ORDER BY d.depth, s.row",
        "code",
        "id",
        "row",
    )
    await _temp_table(
        session,
        "unit_links",
        "SELECT p.id, COALESCE(pp.id, pu.id) AS parent_id FROM unit_plan p LEFT JOIN "
        "unit_plan pp ON pp.code = p.parent_code LEFT JOIN units pu ON pu.code = "
        "p.parent_code UNION ALL SELECT u.id, u.parent_id FROM units u WHERE NOT EXISTS "
        "(SELECT 1 FROM unit_plan p WHERE p.code = u.code)",
        "parent_id",
    )
    # Every path of the final tree from its roots; the units whose path differs are the
    # moved ones and everything under them.
    await _temp_table(
        session,
        "unit_paths",
        "WITH RECURSIVE tree(id, parent_id, path) AS (SELECT id, parent_id, "
        "'/' || CAST(id AS TEXT) || '/' FROM unit_links WHERE parent_id IS NULL UNION ALL "
        "SELECT l.id, l.parent_id, t.path || CAST(l.id AS TEXT) || '/' FROM unit_links l "
        "JOIN tree t ON l.parent_id = t.id) SELECT id, parent_id, path FROM tree",
        "id",
    )
    # How many units each moved unit takes along (its subtree before the move).
    await _temp_table(
        session,
        "unit_moved",
        "WITH RECURSIVE sub(top, id) AS (SELECT p.id, p.id FROM unit_plan p JOIN unit_paths "
        "n ON n.id = p.id WHERE p.old_id IS NOT NULL AND n.parent_id IS DISTINCT FROM "
        "p.old_parent_id UNION ALL SELECT s.top, u.id FROM sub s JOIN units u ON "
        "u.parent_id = s.id) SELECT top AS id, COUNT(*) - 1 AS descendants FROM sub "
        "GROUP BY top",
        "id",
    )

    summary = ImportSummary("units")
    # Only the existing units the file changes come to Python, a page at a time (a
    # national tree sent again unchanged brings none).
    changed = (
        "p.old_id IS NOT NULL AND (p.old_name <> p.name OR (p.kind IS NOT NULL AND "
        "p.old_kind <> p.kind) OR n.parent_id IS DISTINCT FROM p.old_parent_id)"
    )
    after = 0
    while True:
        page = (
            await _sql(
                session,
                "SELECT p.row, p.id, p.code, p.name, p.kind, p.parent_code, p.old_name, "
                "p.old_kind, p.old_parent_id, p.old_path, p.old_parent_code, n.parent_id, "
                "n.path, m.descendants FROM unit_plan p JOIN unit_paths n ON n.id = p.id "
                f"LEFT JOIN unit_moved m ON m.id = p.id WHERE {changed} AND "
                f"p.row > :after ORDER BY p.row LIMIT {BATCH}",
                after=after,
            )
        ).all()
        if not page:
            break
        after = page[-1].row
        entries: list[dict[str, Any]] = []
        for r in page:
            changes: dict[str, list[Any]] = {}
            if r.old_name != r.name:
                changes["name"] = [r.old_name, r.name]
            if r.kind is not None and r.old_kind != r.kind:
                changes["kind"] = [r.old_kind, r.kind]
            if r.old_parent_id != r.parent_id:
                changes["parent_code"] = [r.old_parent_code, r.parent_code]
                changes["path"] = [r.old_path, r.path]
                if r.descendants:
                    changes["descendants_moved"] = [None, r.descendants]
            if not changes:  # the query's test, with Python's equality
                continue
            summary.updated += 1
            entries.append(
                audit_entry(
                    now,
                    "unit.import",
                    "unit",
                    r.id,
                    {"row": r.row, "code": r.code, "created": False, "changes": changes},
                )
            )
        await insert_rows(session, _AUDIT, entries)

    await _sql(
        session,
        "INSERT INTO units (id, code, name, search_name, kind, parent_id, path, created_at) "
        "SELECT p.id, p.code, p.name, p.search_name, p.new_kind, n.parent_id, n.path, :now "
        "FROM unit_plan p JOIN unit_paths n ON n.id = p.id WHERE p.old_id IS NULL "
        "ORDER BY p.depth, p.row",
        now=stamp,
    )
    await _sql(
        session,
        "UPDATE units SET name = p.name, search_name = CASE WHEN units.name <> p.name THEN "
        "p.search_name ELSE units.search_name END, kind = COALESCE(p.kind, units.kind), "
        "parent_id = n.parent_id FROM unit_plan p JOIN unit_paths n ON n.id = p.id "
        "WHERE units.id = p.old_id AND (units.name <> p.name OR (p.kind IS NOT NULL AND "
        "units.kind <> p.kind) OR units.parent_id IS DISTINCT FROM n.parent_id)",
    )
    await _sql(
        session,
        "UPDATE units SET path = n.path FROM unit_paths n WHERE units.id = n.id AND "
        "units.path <> n.path",
    )
    details = (
        "json_build_object('row', p.row, 'code', p.code, 'created', true, 'name', p.name, "
        "'kind', p.new_kind, 'parent_code', p.parent_code)"
        if postgresql
        else "json_object('row', p.row, 'code', p.code, 'created', json('true'), 'name', "
        "p.name, 'kind', p.new_kind, 'parent_code', p.parent_code)"
    )
    await _sql(
        session,
        "INSERT INTO audit_log (at, actor_id, via, action, entity, entity_id, details) "
        f"SELECT :now, NULL, '{VIA_IMPORT}', 'unit.import', 'unit', p.id, {details} "
        "FROM unit_plan p WHERE p.old_id IS NULL ORDER BY p.depth, p.row",
        now=stamp,
    )
    created, existing = (
        await _sql(
            session,
            "SELECT COUNT(*) - COUNT(old_id), COUNT(old_id) FROM unit_plan",
        )
    ).one()
    summary.created = created
    summary.unchanged = existing - summary.updated
    return summary


# --- members ------------------------------------------------------------------------------

MEMBER_COLUMNS = ("unit_code", "full_name", "phone")
MEMBER_OPTIONAL = ("position",)

_PHONE_ERRORS = {
    "empty": "phone is empty",
    "foreign_phone": "phone {raw!r} is not a Vietnamese number",
}


_MOBILE_STARTS = frozenset(f"0{d}" for d in "235789")


def _normalise_phone(raw: str) -> str:
    # Most roster phones are already "0xxxxxxxxx": what parse_phone would return, at a
    # fraction of its cost (a million rows each).
    if len(raw) == 10 and raw.isascii() and raw.isdigit() and raw[:2] in _MOBILE_STARTS:
        return raw
    digits = re.sub(r"\D", "", raw)
    # A phone kept in a number cell loses its leading zero ("912345678"); put it back.
    if raw.isdigit() and len(digits) == 9 and digits[0] != "0":
        raw = "0" + digits
    return parse_phone(raw)


@dataclass
class _MemberLine:
    row: int
    unit_code: str
    full_name: str
    phone: str
    position: str | None


_AUDIT: Table = AuditEntry.__table__  # type: ignore[assignment]

_STAGE = Table(
    "stage_members",
    MetaData(),
    Column("row", Integer, nullable=False),
    Column("ok", Integer, nullable=False),
    Column("unit_code", Text, nullable=False),
    Column("full_name", Text, nullable=False),
    Column("phone", Text, nullable=False),
    Column("position", Text),
    prefixes=["TEMPORARY"],
    postgresql_on_commit="DROP",
)


# Vietnamese names repeat (a province has a few hundred thousand distinct ones for a
# million members): parsed once each, in a cache of bounded size.
_parse_name = functools.lru_cache(maxsize=1 << 16)(parse_name)


def _member_row(row: Row, problems: Problems) -> dict[str, Any] | None:
    """The row's checked values for the staging table (``ok`` 0 when a check failed but
    the phone is valid: it still takes part in the file's duplicate check), or None."""
    before = problems.total
    unit_code = row.values.get("unit_code", "")
    raw_name = row.values.get("full_name", "")
    raw_phone = row.values.get("phone", "")
    position = row.values.get("position", "") or None
    if not unit_code:
        problems.add(row.number, f"row {row.number}: unit_code is empty")
    name = ""
    try:
        name = _parse_name(raw_name)
    except Invalid as exc:
        if not raw_name:
            problems.add(row.number, f"row {row.number}: full_name is empty")
        elif exc.reason == "too_long":
            problems.add(row.number, f"row {row.number}: full_name is longer than 100 characters")
        else:
            problems.add(
                row.number, f"row {row.number}: full_name {raw_name!r} is not a person's name"
            )
    phone = ""
    try:
        phone = _normalise_phone(raw_phone)
    except Invalid as exc:
        message = _PHONE_ERRORS.get(
            exc.reason, "phone {raw!r} is not a valid Vietnamese phone number (0xxxxxxxxx)"
        )
        problems.add(row.number, f"row {row.number}: " + message.format(raw=raw_phone))
    if position is not None and len(position) > 200:
        problems.add(row.number, f"row {row.number}: position is longer than 200 characters")
    if not phone:
        return None
    return {
        "row": row.number,
        "ok": int(problems.total == before),
        "unit_code": unit_code,
        "full_name": name,
        "phone": phone,
        "position": position,
    }


async def import_members(
    session: AsyncSession, rows: Iterable[Row], *, progress: Progress | None = None
) -> ImportSummary:
    """Create or update people from a roster with ``unit_code, full_name, phone[, position]``.

    A person already known by the same phone is updated, not duplicated; each gets the
    "member" role on their unit (a member who moved loses the member role on the old unit).
    Raises :class:`ImportFailed` (and writes nothing) on any bad row.

    Streams: rows are checked and copied into a staging table a batch at a time, then the
    checks that need the whole file (duplicates, unknown units) and the merge are a few
    set-based statements, so memory does not grow with the roster. ``progress`` is advanced
    by the rows read after each batch (the last, smaller one once the import is done).
    """
    return await _import_members(session, iter(rows), Problems(), None, progress)


async def _import_members(
    session: AsyncSession,
    rows: Iterator[Row],
    problems: Problems,
    header: Sequence[str] | None,
    progress: Progress | None,
) -> ImportSummary:
    first = _first_row(rows, problems, header, MEMBER_COLUMNS, MEMBER_OPTIONAL)
    if first is None:
        return ImportSummary("members")
    await plan_for_bulk(session)
    await create_stage(session, _STAGE)
    try:
        read = await _stage_members(session, itertools.chain([first], rows), problems, progress)
        await _check_members(session, problems)
        problems.raise_if_any()
        summary = await _merge_members(session)
        if progress is not None and read % BATCH:
            progress(read % BATCH)
        return summary
    finally:
        await drop_stage(session, _STAGE)
        if not is_postgresql(session):
            await _sql(session, "DROP TABLE IF EXISTS temp.stage_plan")


async def _stage_members(
    session: AsyncSession, rows: Iterable[Row], problems: Problems, progress: Progress | None
) -> int:
    read = await _stage_rows(session, _STAGE, rows, _member_row, problems, progress)
    # By row only: the phones are matched by hashing (the database's people are looked up
    # through their own index), an index on them here would not be used.
    await _sql(session, "CREATE INDEX ix_stage_members_row ON stage_members (row)")
    # Temporary tables get no statistics by themselves; the merge is planned from these.
    await _sql(session, "ANALYZE stage_members")
    return read


async def _sql(session: AsyncSession, statement: str, **params: Any) -> Any:
    connection = await session.connection()
    query = text(statement)
    # Typed values (a UTC timestamp) come as bound parameters that carry their type.
    typed = [v for v in params.values() if isinstance(v, BindParameter)]
    if typed:
        query = query.bindparams(*typed)
    plain = {k: v for k, v in params.items() if not isinstance(v, BindParameter)}
    return await connection.execute(query, plain)


async def _listed(
    session: AsyncSession, problems: Problems, query: str, describe: Callable[..., str]
) -> None:
    """Add the first problems ``query`` finds (rows in order) and count all of them."""
    found = (await _sql(session, f"{query} ORDER BY s.row LIMIT {MAX_LISTED}")).all()
    total = len(found)
    if total == MAX_LISTED:
        total = (await _sql(session, f"SELECT COUNT(*) FROM ({query}) AS q")).scalar_one()
    for record in found:
        problems.add(record[0], describe(*record))
    problems.total += total - len(found)


async def _check_members(session: AsyncSession, problems: Problems) -> None:
    # The same phone twice in the file: named on every row after the first one.
    await _listed(
        session,
        problems,
        "SELECT s.row, s.phone, f.first_row FROM stage_members s JOIN (SELECT phone, "
        "MIN(row) AS first_row FROM stage_members GROUP BY phone HAVING COUNT(*) > 1) f "
        "ON f.phone = s.phone WHERE s.row > f.first_row",
        lambda row, phone, first: f"row {row}: phone {phone} already appears in row {first}",
    )
    # Asked first of the distinct codes: listing the rows is planned as a walk of the rows in
    # order with a lookup each (LIMIT 100), seconds for a million rows that are all fine.
    unknown = await _sql(
        session,
        "SELECT 1 FROM (SELECT unit_code FROM stage_members WHERE ok = 1 EXCEPT "
        "SELECT code FROM units) AS q LIMIT 1",
    )
    if unknown.first() is None:
        return
    await _listed(
        session,
        problems,
        "SELECT s.row, s.unit_code FROM stage_members s LEFT JOIN units u "
        "ON u.code = s.unit_code WHERE s.ok = 1 AND u.id IS NULL",
        lambda row, code: f"row {row}: unknown unit_code {code!r}",
    )


async def _resolve_members(session: AsyncSession) -> None:
    """stage_plan: each row with its unit, the person with that phone (the oldest when the
    chat made several; none for someone new) and the member roles they hold now. Made in
    one pass, not by updating the staging table: on PostgreSQL each UPDATE of a million
    rows writes a million new row versions."""
    postgresql = is_postgresql(session)
    new_id = "NULL "
    if postgresql:
        # The new people's ids drawn now, so nothing has to find them again. The sequence
        # is named once, as a constant: pg_get_serial_sequence() in the statement would be
        # a catalogue lookup on every row (8 of the 10 seconds a million rows took).
        sequence = (
            await _sql(session, "SELECT pg_get_serial_sequence('people', 'id')")
        ).scalar_one()
        quoted = sequence.replace("'", "''")
        new_id = f"CASE WHEN p.id IS NULL THEN nextval('{quoted}'::regclass) END "
    await drop_temp(session, "stage_plan")
    await _sql(
        session,
        f"CREATE TEMP TABLE stage_plan {'ON COMMIT DROP ' if postgresql else ''}AS "
        "SELECT s.row, s.full_name, s.phone, s.position, s.unit_code, u.id AS unit_id, "
        f"p.id AS person_id, r.n AS roles, r.lo AS role_lo, r.hi AS role_hi, {new_id}"
        "AS new_id "
        "FROM stage_members s JOIN units u ON u.code = s.unit_code "
        "LEFT JOIN (SELECT phone, MIN(id) AS id FROM people WHERE phone IN "
        "(SELECT phone FROM stage_members) GROUP BY phone) p ON p.phone = s.phone "
        "LEFT JOIN (SELECT person_id, COUNT(*) AS n, MIN(unit_id) AS lo, MAX(unit_id) AS hi "
        "FROM unit_roles WHERE role = 'member' AND person_id IN (SELECT id FROM people "
        "WHERE phone IN (SELECT phone FROM stage_members)) GROUP BY person_id) r "
        "ON r.person_id = p.id "
        # Written in file order once: the inserts below read it in that order (a temporary
        # table is scanned from its first page, nothing else writes to it) and need no
        # sort of their own, three sorts of a million rows saved.
        "ORDER BY s.row",
    )
    # The rows of people already known are read again by row, page by page.
    await _sql(
        session, "CREATE INDEX ix_stage_plan_row ON stage_plan (row) WHERE person_id IS NOT NULL"
    )
    await _sql(session, "ANALYZE stage_plan")


async def _merge_members(session: AsyncSession) -> ImportSummary:
    now = utcnow()
    stamp = bindparam("now", now, type_=UTCDateTime())
    await _resolve_members(session)

    summary = ImportSummary("members")
    # What changes for people already known, for the audit log, before it is changed. Pages
    # of the plan by row (an index range), their people by primary key: no join that the
    # planner could turn into a scan of all the people for every page.
    async for page in _plan_pages(session):
        people = {
            pid: (name, position, unit_id)
            for pid, name, position, unit_id in await session.execute(
                select(Person.id, Person.full_name, Person.position, Person.unit_id).where(
                    Person.id.in_([r.person_id for r in page])
                )
            )
        }
        entries: list[dict[str, Any]] = []
        for r in page:
            old_name, old_position, old_unit = people[r.person_id]
            changes: dict[str, list[Any]] = {}
            if old_name != r.full_name:
                changes["full_name"] = [old_name, r.full_name]
            # An empty position in the roster means "not given", not "erase it".
            if r.position is not None and old_position != r.position:
                changes["position"] = [old_position, r.position]
            if old_unit != r.unit_id:
                changes["unit_id"] = [old_unit, r.unit_id]
            old_units = await _member_units(
                session, r.person_id, r.roles or 0, r.role_lo, r.role_hi
            )
            if old_units != [r.unit_id]:
                changes["member_of_unit_ids"] = [old_units, [r.unit_id]]
            if not changes:
                summary.unchanged += 1
                continue
            summary.updated += 1
            entries.append(
                _audit_row(now, r.person_id, {"row": r.row, "created": False, "changes": changes})
            )
        await insert_rows(session, _AUDIT, entries)

    await _sql(
        session,
        "UPDATE people SET full_name = s.full_name, position = COALESCE(s.position, "
        "people.position), unit_id = s.unit_id, updated_at = :now FROM stage_plan s "
        "WHERE people.id = s.person_id AND (people.full_name <> s.full_name OR "
        "people.unit_id IS DISTINCT FROM s.unit_id OR (s.position IS NOT NULL AND "
        "people.position IS DISTINCT FROM s.position))",
        now=stamp,
    )
    # The roster says where a member belongs now; leader and officer roles stay.
    await _sql(
        session,
        "DELETE FROM unit_roles WHERE role = 'member' AND id IN (SELECT r.id FROM unit_roles "
        "r JOIN stage_plan s ON s.person_id = r.person_id WHERE r.role = 'member' AND "
        "r.unit_id <> s.unit_id)",
    )
    await _sql(
        session,
        "INSERT INTO unit_roles (person_id, unit_id, role, created_at) SELECT s.person_id, "
        "s.unit_id, 'member', :now FROM stage_plan s WHERE s.person_id IS NOT NULL AND NOT "
        "EXISTS (SELECT 1 FROM unit_roles r WHERE r.person_id = s.person_id AND r.unit_id = "
        "s.unit_id AND r.role = 'member') ORDER BY s.row",
        now=stamp,
    )
    summary.created = (
        await _sql(session, "SELECT COUNT(*) FROM stage_plan WHERE person_id IS NULL")
    ).scalar_one()
    async with (
        indexes_set_aside(session, ["people", "unit_roles"])
        if await _loads_more_than_held(session, summary.created)
        else contextlib.nullcontext()
    ):
        await _insert_new_members(session, stamp)
    return summary


# From this many new people, and more than the database holds, the people's and member
# roles' secondary indexes and foreign keys are rebuilt after the rows are in (PostgreSQL):
# a first load of a province or of the nation. Below it the locks are not worth it.
REBUILD_INDEXES_FROM = 50_000


async def _loads_more_than_held(session: AsyncSession, new_people: int) -> bool:
    if not is_postgresql(session) or new_people < REBUILD_INDEXES_FROM:
        return False
    held = await _sql(
        session, "SELECT COUNT(*) FROM (SELECT 1 FROM people LIMIT :n) AS q", n=new_people
    )
    return bool(held.scalar_one() < new_people)


async def _insert_new_members(session: AsyncSession, stamp: BindParameter[datetime]) -> None:
    """The people the roster brings, their member roles and the audit rows saying so, each
    one set-based statement, in file order (the plan's)."""
    postgresql = is_postgresql(session)
    given = ("id, ", "new_id, ") if postgresql else ("", "")
    await _sql(
        session,
        f"INSERT INTO people ({given[0]}full_name, phone, position, unit_id, source, "
        f"reminders_muted, created_at, updated_at) SELECT {given[1]}full_name, phone, "
        "position, unit_id, 'roster', :false, :now, :now FROM stage_plan WHERE person_id IS "
        "NULL",
        now=stamp,
        false=False,
    )
    # PostgreSQL drew the new people's ids in the plan; SQLite finds them again by their
    # phone, which no one had before.
    new_people = (
        "SELECT s.new_id AS id, s.* FROM stage_plan s WHERE s.person_id IS NULL"
        if postgresql
        else "SELECT p.id AS id, s.* FROM stage_plan s JOIN people p ON p.phone = s.phone "
        "WHERE s.person_id IS NULL"
    )
    await _sql(
        session,
        "INSERT INTO unit_roles (person_id, unit_id, role, created_at) SELECT n.id, "
        f"n.unit_id, 'member', :now FROM ({new_people}) AS n",
        now=stamp,
    )
    details = (
        "json_build_object('row', n.row, 'created', true, 'full_name', n.full_name, "
        "'phone', n.phone, 'unit_code', n.unit_code)"
        if postgresql
        else "json_object('row', n.row, 'created', json('true'), 'full_name', n.full_name, "
        "'phone', n.phone, 'unit_code', n.unit_code)"
    )
    await _sql(
        session,
        "INSERT INTO audit_log (at, actor_id, via, action, entity, entity_id, details) "
        f"SELECT :now, NULL, '{VIA_IMPORT}', 'person.import', 'person', n.id, {details} "
        f"FROM ({new_people}) AS n",
        now=stamp,
    )


async def _plan_pages(session: AsyncSession) -> AsyncIterator[list[Any]]:
    """The rows of people already known, :data:`BATCH` at a time in file order."""
    after = 0
    while True:
        page = (
            await _sql(
                session,
                "SELECT row, full_name, phone, position, unit_code, unit_id, person_id, roles, "
                "role_lo, role_hi FROM stage_plan WHERE row > :after AND person_id IS NOT "
                f"NULL ORDER BY row LIMIT {BATCH}",
                after=after,
            )
        ).all()
        if not page:
            return
        after = page[-1].row
        yield page


async def _member_units(
    session: AsyncSession, person_id: int, roles: int, lo: int | None, hi: int | None
) -> list[int]:
    """The units a person is a member of, from the staged aggregate (rarely more than two)."""
    if roles == 0 or lo is None or hi is None:
        return []
    if roles == 1:
        return [lo]
    if roles == 2:
        return [lo, hi]
    found = await session.scalars(
        select(UnitRole.unit_id).where(
            UnitRole.person_id == person_id, UnitRole.role == Role.MEMBER
        )
    )
    return sorted(found)


def _audit_row(now: datetime, person_id: int, details: dict[str, Any]) -> dict[str, Any]:
    return audit_entry(now, "person.import", "person", person_id, details)


def audit_entry(
    now: datetime, action: str, entity: str, entity_id: int, details: dict[str, Any]
) -> dict[str, Any]:
    """An audit row of the import, for :func:`storage.bulk.insert_rows`."""
    return {
        "at": now,
        "actor_id": None,
        "via": VIA_IMPORT,
        "action": action,
        "entity": entity,
        "entity_id": entity_id,
        "details": details,
    }


# --- shared -------------------------------------------------------------------------------


async def import_units_file(
    session: AsyncSession,
    path: str | Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> ImportSummary:
    """Read ``path`` (CSV or XLSX) and import its units, streaming (a whole national tree
    is about 130,000 rows)."""
    header, rows, problems = read_rows(path, limits)
    return await _import_units(session, rows, problems, header, progress)


async def import_members_file(
    session: AsyncSession,
    path: str | Path,
    *,
    limits: Limits = DEFAULT_LIMITS,
    progress: Progress | None = None,
) -> ImportSummary:
    """Read ``path`` (CSV or XLSX) and import its roster, streaming."""
    header, rows, problems = read_rows(path, limits)
    return await _import_members(session, rows, problems, header, progress)
