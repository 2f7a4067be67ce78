"""Import the organisation tree and member rosters from CSV or XLSX files.

Officers keep their unit lists and rosters in Excel; these functions turn such a file into
units, people and member roles. Every import is all-or-nothing: all rows are checked first
and, if any is wrong, :class:`ImportFailed` lists every problem with the row number the
officer sees in the spreadsheet, and nothing is written. Functions never commit; the caller
owns the transaction.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuditEntry, Person, Role, Unit, UnitKind, UnitRole

# text.py is pure (no platform, no database): the same fold()/parse_phone() must be used
# here and in the conversation, or "Công ty May" stored here would not be found there.
from storage.normalize import Invalid, clean, fold, parse_name, parse_phone
from storage.types import Progress

if TYPE_CHECKING:
    from openpyxl import Workbook

VIA_IMPORT = "import"

# Backends cap the number of bound parameters in one statement; IN (...) lists are chunked.
_CHUNK = 1000


class ImportFailed(Exception):
    """The file cannot be imported; ``problems`` says why, one plain sentence per problem."""

    def __init__(self, problems: Sequence[str]) -> None:
        # In file order, whichever check found them: the officer fixes the file top down.
        self.problems = sorted(problems, key=_row_of)
        super().__init__("; ".join(self.problems))


def _row_of(problem: str) -> int:
    match = re.match(r"row (\d+):", problem)
    return int(match.group(1)) if match else 0


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


def _rows_from_table(table: Iterable[Sequence[Any]]) -> tuple[list[str], list[Row]]:
    """Header and data rows from raw cells; blank rows are skipped but keep their number."""
    iterator = iter(table)
    header_cells = next(iterator, None)
    if header_cells is None or not any(_cell_text(c) for c in header_cells):
        raise ImportFailed(["row 1: the file is empty or its first row (the header) is blank"])
    header = [_header_key(_cell_text(c)) for c in header_cells]
    rows: list[Row] = []
    problems: list[str] = []
    for number, cells in enumerate(iterator, start=2):
        texts = [_cell_text(c) for c in cells]
        if not any(texts):
            continue
        values: dict[str, str] = {}
        for index, text in enumerate(texts):
            name = header[index] if index < len(header) else ""
            if not name:
                if text:
                    problems.append(
                        f"row {number}: value {text!r} in column {index + 1}, which has no header"
                    )
                continue
            values[name] = text
        for name in header:
            if name:
                values.setdefault(name, "")
        rows.append(Row(number, values))
    if problems:
        raise ImportFailed(problems)
    return header, rows


def sniff_delimiter(first_line: str) -> str:
    # Vietnamese Excel saves "CSV" with ";" because "," is the decimal separator there.
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def csv_cells(raw: bytes) -> list[list[str]]:
    """The cells of a UTF-8 CSV file (BOM or not; "," ";" or tab delimited)."""
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first_line))
    try:
        return list(reader)
    except csv.Error as exc:
        raise ImportFailed([f"row {reader.line_num}: the CSV is malformed ({exc})"]) from exc


def read_csv(source: str | Path | bytes | BinaryIO) -> tuple[list[str], list[Row]]:
    """Header and rows of a UTF-8 CSV (BOM or not; "," ";" or tab delimited)."""
    if isinstance(source, bytes):
        raw = source
    elif isinstance(source, str | Path):
        raw = Path(source).read_bytes()
    else:
        raw = source.read()
    return _rows_from_table(csv_cells(raw))


def open_workbook(source: str | Path | BinaryIO) -> Workbook:
    """An XLSX workbook opened read-only; a file that is not one says so in plain words."""
    # Imported here: openpyxl is heavy and the running bot never reads spreadsheets.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        return load_workbook(source, read_only=True, data_only=True)
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, InvalidFileException, OSError, KeyError, ValueError) as exc:
        raise ImportFailed(
            [f"the file is not a readable XLSX workbook ({exc}); save it again from Excel"]
        ) from exc


def read_xlsx(source: str | Path | BinaryIO) -> tuple[list[str], list[Row]]:
    """Header and rows of the first sheet of an XLSX workbook."""
    workbook = open_workbook(source)
    try:
        sheet = workbook.worksheets[0]
        return _rows_from_table(sheet.iter_rows(values_only=True))
    finally:
        workbook.close()


def read_table(path: str | Path) -> tuple[list[str], list[Row]]:
    """Read a CSV or XLSX file, chosen by its extension."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return read_xlsx(path)
    if suffix in (".csv", ".txt", ""):
        return read_csv(path)
    if suffix == ".xls":
        raise ImportFailed(["old .xls files are not supported; save the file as .xlsx or CSV"])
    raise ImportFailed([f"unsupported file type {suffix!r}; use .csv or .xlsx"])


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


async def _load_by(session: AsyncSession, column: Any, keys: Iterable[Any]) -> list[Any]:
    """Rows whose ``column`` is in ``keys``, in chunks the backends accept."""
    keys = list(dict.fromkeys(keys))
    entity = column.class_
    found: list[Any] = []
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        found.extend(await session.scalars(select(entity).where(column.in_(chunk))))
    return found


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


@dataclass
class _UnitLine:
    row: int
    code: str
    name: str
    parent_code: str | None
    kind: UnitKind | None


def _validate_unit_rows(rows: Sequence[Row]) -> tuple[list[_UnitLine], list[str]]:
    lines: list[_UnitLine] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for row in rows:
        before = len(problems)
        code = row.values.get("code", "")
        name = row.values.get("name", "")
        parent_code = row.values.get("parent_code", "") or None
        kind_text = row.values.get("kind", "")
        if not code:
            problems.append(f"row {row.number}: code is empty")
        elif len(code) > 64:
            problems.append(f"row {row.number}: code {code!r} is longer than 64 characters")
        elif code in seen:
            problems.append(f"row {row.number}: code {code!r} already appears in row {seen[code]}")
        else:
            seen[code] = row.number
        if not name:
            problems.append(f"row {row.number}: name is empty")
        elif len(name) > 300:
            problems.append(f"row {row.number}: name is longer than 300 characters")
        if parent_code is not None and parent_code == code:
            problems.append(f"row {row.number}: unit {code!r} cannot be its own parent")
        kind: UnitKind | None = None
        if kind_text:
            try:
                kind = parse_kind(kind_text)
            except Invalid:
                problems.append(
                    f"row {row.number}: unknown kind {kind_text!r}; use one of "
                    "tld, province, upper, grassroots, department, team (or the Vietnamese "
                    "name, e.g. 'LĐLĐ tỉnh', 'công đoàn cấp trên cơ sở', 'CĐCS', "
                    "'công đoàn bộ phận', 'tổ công đoàn')"
                )
        if len(problems) == before:
            lines.append(_UnitLine(row.number, code, name, parent_code, kind))
    return lines, problems


async def import_units(
    session: AsyncSession, rows: Sequence[Row], progress: Progress | None = None
) -> ImportSummary:
    """Create or update units from rows with ``code, name, parent_code[, kind]``.

    Parents may come after their children in the file or already be in the database. An
    existing code is updated (name, kind, parent); a unit that moves takes its whole subtree
    along, and every path below it is rewritten. Raises :class:`ImportFailed` (and writes
    nothing) on any bad row, unknown parent or cycle.
    """
    if rows:
        header = list(rows[0].values)
        _check_columns(header, UNIT_COLUMNS, UNIT_OPTIONAL)
    lines, problems = _validate_unit_rows(rows)

    # The whole tree as (code -> parent code) is small even for a national tree, and a cycle
    # can run through units that are not in the file (A moved under B, B already under A).
    tree = (await session.execute(select(Unit.id, Unit.code, Unit.parent_id))).all()
    code_of = {uid: code for uid, code, _parent in tree}
    final_parent: dict[str, str | None] = {
        code: code_of.get(parent) if parent is not None else None for _uid, code, parent in tree
    }
    # Codes of every row, valid or not: a child of a bad row gets no second, confusing error.
    file_codes = {row.values.get("code", "") for row in rows}
    for line in lines:
        parent_code = line.parent_code
        if parent_code and parent_code not in final_parent and parent_code not in file_codes:
            problems.append(
                f"row {line.row}: unknown parent_code {parent_code!r} "
                "(not in this file nor in the database)"
            )
    if problems:
        raise ImportFailed(problems)
    for line in lines:
        final_parent[line.code] = line.parent_code

    # A cycle is reported once, on the first row (in file order) that belongs to it.
    reported: set[str] = set()
    for line in lines:
        if line.code in reported:
            continue
        chain = [line.code]
        current = final_parent.get(line.code)
        while current is not None and current not in chain:
            chain.append(current)
            current = final_parent.get(current)
        if current == line.code:
            reported.update(chain)
            loop = " → ".join([*chain, line.code])
            problems.append(
                f"row {line.row}: parent_code {line.parent_code!r} makes a cycle ({loop})"
            )
    if problems:
        raise ImportFailed(problems)

    depth: dict[str, int] = {}

    def depth_of(code: str) -> int:
        walk: list[str] = []
        current: str | None = code
        while current is not None and current not in depth:
            walk.append(current)
            current = final_parent.get(current)
        base = depth[current] if current is not None else -1
        for node in reversed(walk):
            base += 1
            depth[node] = base
        return depth[code]

    # Shallow first: a unit's final parent (and that parent's final path) is settled before
    # the unit itself is placed, whatever the order of the file.
    ordered = sorted(lines, key=lambda line: (depth_of(line.code), line.row))
    wanted = {line.code for line in lines} | {
        line.parent_code for line in lines if line.parent_code
    }
    units: dict[str, Unit] = {u.code: u for u in await _load_by(session, Unit.code, wanted)}

    summary = ImportSummary("units")
    levels: dict[int, list[_UnitLine]] = {}
    for line in ordered:
        levels.setdefault(depth[line.code], []).append(line)
    for level in sorted(levels):
        created: list[tuple[_UnitLine, Unit]] = []
        for line in levels[level]:
            if progress is not None:
                progress(1)
            parent = units[line.parent_code] if line.parent_code else None
            unit = units.get(line.code)
            if unit is None:
                unit = Unit(
                    code=line.code,
                    name=line.name,
                    search_name=fold(line.name),
                    kind=str(line.kind or guess_kind(line.name) or UnitKind.GRASSROOTS),
                    parent_id=parent.id if parent else None,
                    path="/",
                )
                session.add(unit)
                units[line.code] = unit
                created.append((line, unit))
                continue
            changes = await _update_unit(session, unit, line, parent, code_of)
            if changes:
                summary.updated += 1
                _audit(
                    session,
                    "unit.import",
                    "unit",
                    unit.id,
                    {"row": line.row, "code": unit.code, "created": False, "changes": changes},
                )
            else:
                summary.unchanged += 1
        if not created:
            continue
        # One flush per tree level, not per unit: the ids (part of the paths) of a whole level
        # come back at once, and the next level's parents are then known.
        await session.flush()
        for line, unit in created:
            parent = units[line.parent_code] if line.parent_code else None
            unit.path = f"{parent.path if parent else '/'}{unit.id}/"
            summary.created += 1
            _audit(
                session,
                "unit.import",
                "unit",
                unit.id,
                {
                    "row": line.row,
                    "code": unit.code,
                    "created": True,
                    "name": unit.name,
                    "kind": unit.kind,
                    "parent_code": line.parent_code,
                },
            )
    await session.flush()
    return summary


async def _update_unit(
    session: AsyncSession,
    unit: Unit,
    line: _UnitLine,
    parent: Unit | None,
    code_of: dict[int, str],
) -> dict[str, list[Any]]:
    """Apply one row to an existing unit; the changes as {field: [old, new]}."""
    changes: dict[str, list[Any]] = {}
    if unit.name != line.name:
        changes["name"] = [unit.name, line.name]
        unit.name = line.name
        unit.search_name = fold(line.name)
    if line.kind is not None and unit.kind != line.kind:
        changes["kind"] = [unit.kind, str(line.kind)]
        unit.kind = str(line.kind)
    new_parent_id = parent.id if parent else None
    if unit.parent_id != new_parent_id:
        old_parent_code = code_of.get(unit.parent_id) if unit.parent_id else None
        changes["parent_code"] = [old_parent_code, line.parent_code]
        old_path, descendants = await _move(session, unit, parent)
        changes["path"] = [old_path, unit.path]
        if descendants:
            changes["descendants_moved"] = [None, descendants]
    return changes


async def _move(session: AsyncSession, unit: Unit, parent: Unit | None) -> tuple[str, int]:
    """Re-parent ``unit`` and rewrite the path of its subtree; (old path, descendants)."""
    old_path = unit.path
    # Loaded before the unit's own path changes, so the prefix still matches the subtree.
    descendants = list(
        await session.scalars(
            select(Unit).where(Unit.path.startswith(old_path, autoescape=True), Unit.id != unit.id)
        )
    )
    unit.parent_id = parent.id if parent else None
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    for child in descendants:
        child.path = unit.path + child.path[len(old_path) :]
    return old_path, len(descendants)


# --- members ------------------------------------------------------------------------------

MEMBER_COLUMNS = ("unit_code", "full_name", "phone")
MEMBER_OPTIONAL = ("position",)

_PHONE_ERRORS = {
    "empty": "phone is empty",
    "foreign_phone": "phone {raw!r} is not a Vietnamese number",
}


def _normalise_phone(raw: str) -> str:
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


async def import_members(
    session: AsyncSession, rows: Sequence[Row], progress: Progress | None = None
) -> ImportSummary:
    """Create or update people from a roster with ``unit_code, full_name, phone[, position]``.

    A person already known by the same phone is updated, not duplicated; each gets the
    "member" role on their unit (a member who moved loses the member role on the old unit).
    Raises :class:`ImportFailed` (and writes nothing) on any bad row.
    """
    if rows:
        _check_columns(list(rows[0].values), MEMBER_COLUMNS, MEMBER_OPTIONAL)
    problems: list[str] = []
    lines: list[_MemberLine] = []
    phone_rows: dict[str, int] = {}
    for row in rows:
        before = len(problems)
        unit_code = row.values.get("unit_code", "")
        raw_name = row.values.get("full_name", "")
        raw_phone = row.values.get("phone", "")
        position = row.values.get("position", "") or None
        if not unit_code:
            problems.append(f"row {row.number}: unit_code is empty")
        name = ""
        try:
            name = parse_name(raw_name)
        except Invalid as exc:
            if not raw_name:
                problems.append(f"row {row.number}: full_name is empty")
            elif exc.reason == "too_long":
                problems.append(f"row {row.number}: full_name is longer than 100 characters")
            else:
                problems.append(f"row {row.number}: full_name {raw_name!r} is not a person's name")
        phone = ""
        try:
            phone = _normalise_phone(raw_phone)
        except Invalid as exc:
            message = _PHONE_ERRORS.get(
                exc.reason, "phone {raw!r} is not a valid Vietnamese phone number (0xxxxxxxxx)"
            )
            problems.append(f"row {row.number}: " + message.format(raw=raw_phone))
        if phone:
            if phone in phone_rows:
                problems.append(
                    f"row {row.number}: phone {phone} already appears in row {phone_rows[phone]}"
                )
            else:
                phone_rows[phone] = row.number
        if position is not None and len(position) > 200:
            problems.append(f"row {row.number}: position is longer than 200 characters")
        if len(problems) == before:
            lines.append(_MemberLine(row.number, unit_code, name, phone, position))

    units = {u.code: u for u in await _load_by(session, Unit.code, (ln.unit_code for ln in lines))}
    for line in lines:
        if line.unit_code not in units:
            problems.append(f"row {line.row}: unknown unit_code {line.unit_code!r}")
    if problems:
        raise ImportFailed(problems)

    people: dict[str, Person] = {}
    # Several people with one phone can exist (made before import); the oldest one wins.
    for person in sorted(
        await _load_by(session, Person.phone, phone_rows), key=lambda p: p.id, reverse=True
    ):
        if person.phone is not None:
            people[person.phone] = person
    person_ids = [p.id for p in people.values()]
    member_roles: dict[int, list[UnitRole]] = {}
    for role in await _load_by(session, UnitRole.person_id, person_ids):
        if role.role == Role.MEMBER:
            member_roles.setdefault(role.person_id, []).append(role)

    summary = ImportSummary("members")
    applied: list[tuple[_MemberLine, Person, bool, dict[str, list[Any]]]] = []
    for line in lines:
        unit = units[line.unit_code]
        person = people.get(line.phone)
        changes: dict[str, list[Any]] = {}
        if person is None:
            person = Person(
                full_name=line.full_name,
                phone=line.phone,
                position=line.position,
                unit_id=unit.id,
                source="roster",
            )
            session.add(person)
            people[line.phone] = person
            applied.append((line, person, True, changes))
            continue
        if person.full_name != line.full_name:
            changes["full_name"] = [person.full_name, line.full_name]
            person.full_name = line.full_name
        # An empty position in the roster means "not given", not "erase it".
        if line.position is not None and person.position != line.position:
            changes["position"] = [person.position, line.position]
            person.position = line.position
        if person.unit_id != unit.id:
            changes["unit_id"] = [person.unit_id, unit.id]
            person.unit_id = unit.id
        applied.append((line, person, False, changes))
    # One flush for all new people (not one per row): their ids are needed for the roles.
    await session.flush()

    for line, person, created, changes in applied:
        if progress is not None:
            progress(1)
        unit = units[line.unit_code]
        roles = member_roles.get(person.id, [])
        old_units = sorted(r.unit_id for r in roles)
        if unit.id not in old_units:
            session.add(UnitRole(person_id=person.id, unit_id=unit.id, role=Role.MEMBER))
        for stale in roles:
            if stale.unit_id != unit.id:
                # The roster says where the member belongs now; leader/officer roles stay.
                await session.delete(stale)
        if not created and old_units != [unit.id]:
            changes["member_of_unit_ids"] = [old_units, [unit.id]]

        if created:
            summary.created += 1
            details: dict[str, Any] = {
                "row": line.row,
                "created": True,
                "full_name": person.full_name,
                "phone": person.phone,
                "unit_code": unit.code,
            }
        elif changes:
            summary.updated += 1
            details = {"row": line.row, "created": False, "changes": changes}
        else:
            summary.unchanged += 1
            continue
        _audit(session, "person.import", "person", person.id, details)
    await session.flush()
    return summary


# --- shared -------------------------------------------------------------------------------


def _audit(
    session: AsyncSession, action: str, entity: str, entity_id: int, details: dict[str, Any]
) -> None:
    session.add(
        AuditEntry(
            via=VIA_IMPORT, action=action, entity=entity, entity_id=entity_id, details=details
        )
    )


async def import_units_file(
    session: AsyncSession, path: str | Path, progress: Progress | None = None
) -> ImportSummary:
    """Read ``path`` (CSV or XLSX) and import its units."""
    _header, rows = read_table(path)
    _require_rows(_header, rows, UNIT_COLUMNS, UNIT_OPTIONAL)
    return await import_units(session, rows, progress)


async def import_members_file(
    session: AsyncSession, path: str | Path, progress: Progress | None = None
) -> ImportSummary:
    """Read ``path`` (CSV or XLSX) and import its roster."""
    _header, rows = read_table(path)
    _require_rows(_header, rows, MEMBER_COLUMNS, MEMBER_OPTIONAL)
    return await import_members(session, rows, progress)


def _require_rows(
    header: Sequence[str], rows: Sequence[Row], required: Sequence[str], optional: Sequence[str]
) -> None:
    # Checked on the header itself, so a header-only file still gets the column message.
    _check_columns(header, required, optional)
    if not rows:
        raise ImportFailed(["the file has a header but no data rows"])
