"""Export a campaign's registrations for officers (CSV or XLSX).

One row per registration, with what an officer needs to check and compile the list: the
receipt number, who (a person, or the unit for collective titles), the unit and where it
sits in the tree, the title, its status and dates. Channel ids and other internals stay out.
"""

from __future__ import annotations

import re
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import IO, Any, BinaryIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.counts import (
    COUNTED,
    LIST_STATE_LABELS,
    REGISTRATION_STATE_LABELS,
    list_states,
    registration_state,
)
from storage.models import Campaign, Person, Registration, Title, Unit

PATH_SEPARATOR = " › "
MAX_WIDTH = 100
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"

# Drafts were never sent and withdrawn ones were taken back: neither is on an officer's list
# (storage.counts.COUNTED, the same rows every count counts).
LISTED_STATUSES = COUNTED

SOURCE_LABELS: dict[str, str] = {
    "chat": "Tự đăng ký qua chatbot",
    "leader": "Công đoàn đăng ký hộ",
    "import": "Nhập từ tệp",
}

HEADERS = (
    "Số đăng ký",
    "Họ và tên / Tập thể",
    "Điện thoại",
    "Chức vụ",
    "Đơn vị",
    "Thuộc (đường dẫn đơn vị)",
    "Mã danh hiệu",
    "Danh hiệu / hình thức khen thưởng",
    "Cá nhân / Tập thể",
    "Trạng thái",
    "Danh sách đơn vị",
    "Nguồn",
    "Ngày đăng ký",
    "Ngày cập nhật",
)


class ExportError(ValueError):
    """The export cannot be made (unknown campaign or unit); the message is for the user."""


@dataclass(frozen=True)
class RegistrationRow:
    receipt_no: str
    name: str
    phone: str | None
    position: str | None
    unit_name: str
    unit_path: str
    title_code: str
    title_name: str
    kind: str  # "Cá nhân" or "Tập thể"
    status: str  # the registration's own state: Đã đăng ký / Đã rút
    list_status: str  # its unit list's: Chưa gửi / Chờ duyệt / Trả lại (bổ sung) / Đã duyệt
    source: str
    created: date
    updated: date

    def values(self) -> tuple[Any, ...]:
        return astuple(self)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        # Hosts without tz data still get Vietnam's offset (no daylight saving there).
        return timezone(timedelta(hours=7))


def _local_date(moment: datetime, zone: tzinfo) -> date:
    # A registration at 23:30 UTC is made the next morning in Vietnam.
    return moment.astimezone(zone).date()


# Registrations read per batch when streaming: a few thousand plain rows at a time keep the
# memory of an export flat however many registrations the campaign has.
EXPORT_BATCH = 2000
# The most units one batch looks up (an IN list every database takes).
_UNITS_PER_BATCH = 1000


async def stream_registration_rows(
    session: AsyncSession,
    campaign_code: str,
    unit_code: str | None = None,
    *,
    statuses: Iterable[str] = LISTED_STATUSES,
    timezone_name: str = DEFAULT_TIMEZONE,
    batch_size: int = EXPORT_BATCH,
    on_total: Callable[[int], None] | None = None,
) -> AsyncIterator[RegistrationRow]:
    """The registrations of a campaign, for the whole tree or one unit's subtree, a batch
    at a time (memory bounded by the batch and the number of units, not of registrations).

    Ordered by the unit's place in the tree, collective titles first, then by name.
    ``on_total`` is told how many rows will come before the first one does.
    Raises :class:`ExportError` for an unknown campaign or unit.
    """
    campaign = await session.scalar(select(Campaign).where(Campaign.code == campaign_code))
    if campaign is None:
        raise ExportError(f"unknown campaign {campaign_code!r}")
    wanted_statuses = [str(s) for s in statuses]
    in_scope = [
        Registration.campaign_id == campaign.id,
        Registration.status.in_(wanted_statuses),
    ]
    if unit_code is not None:
        root = await session.scalar(select(Unit).where(Unit.code == unit_code))
        if root is None:
            raise ExportError(f"unknown unit code {unit_code!r}")
        # The subtree is one prefix match on the materialised path.
        in_scope.append(Unit.path.startswith(root.path, autoescape=True))

    # How many registrations each unit has: one row per unit, so the units are sorted and
    # cut into batches without holding any registration.
    per_unit = {
        int(uid): (str(path), int(count))
        for uid, path, count in await session.execute(
            select(Unit.id, Unit.path, func.count(Registration.id))
            .join(Registration, Registration.unit_id == Unit.id)
            .where(*in_scope)
            .group_by(Unit.id, Unit.path)
        )
    }
    if on_total is not None:
        on_total(sum(count for _path, count in per_unit.values()))
    ancestor_ids = sorted(
        {
            int(part)
            for path, _count in per_unit.values()
            for part in path.strip("/").split("/")
            if part
        }
    )
    names: dict[int, str] = {}
    for start in range(0, len(ancestor_ids), 1000):
        chunk = ancestor_ids[start : start + 1000]
        names.update(
            (int(uid), str(name))
            for uid, name in (
                await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(chunk)))
            )
        )
    path_names = {
        uid: [names.get(int(part), "?") for part in path.strip("/").split("/") if part]
        for uid, (path, _count) in per_unit.items()
    }
    place = {uid: tuple(n.casefold() for n in path_names[uid]) for uid in per_unit}
    ordered = sorted(per_unit, key=lambda uid: (place[uid], uid))

    titles: dict[str, str] = {}
    zone = _zone(timezone_name)
    counts = {uid: count for uid, (_path, count) in per_unit.items()}
    for batch in unit_batches(ordered, place, counts, batch_size):
        for row in await _batch_rows(
            session, campaign.id, wanted_statuses, batch, titles, zone, path_names
        ):
            yield row


def unit_batches(
    ordered: Sequence[int],
    place: Mapping[int, Any],
    counts: Mapping[int, int],
    batch_size: int = EXPORT_BATCH,
) -> Iterator[list[int]]:
    """Units already in tree order, cut into batches of about ``batch_size`` rows (at most
    :data:`_UNITS_PER_BATCH` units), so that sorting each batch's rows on their own gives the
    order of the whole list: units whose ``place`` (their sort key in the tree) is the same
    sort together row by row, so a batch never ends between them.

    The flat CSV export and the registration form (storage.registration_forms) both stream
    their rows a batch at a time through this.
    """
    batch: list[int] = []
    pending = 0
    for index, uid in enumerate(ordered):
        batch.append(uid)
        pending += counts[uid]
        following = ordered[index + 1] if index + 1 < len(ordered) else None
        if following is not None and place[following] == place[uid]:
            continue
        if following is not None and pending < batch_size and len(batch) < _UNITS_PER_BATCH:
            continue
        yield batch
        batch, pending = [], 0


async def _batch_rows(
    session: AsyncSession,
    campaign_id: int,
    statuses: list[str],
    unit_ids: list[int],
    titles: dict[str, str],
    zone: tzinfo,
    path_names: dict[int, list[str]],
) -> list[RegistrationRow]:
    """One batch's rows, sorted, read as plain rows; ``titles`` caches title names."""
    found = (
        await session.execute(
            select(
                Registration.receipt_no,
                Registration.is_collective,
                Registration.collective_name,
                Registration.unit_id,
                Registration.title_code,
                Registration.status,
                Registration.source,
                Registration.created_at,
                Registration.updated_at,
                Person.full_name,
                Person.phone,
                Person.position,
            )
            .outerjoin(Person, Person.id == Registration.person_id)
            .where(
                Registration.campaign_id == campaign_id,
                Registration.status.in_(statuses),
                Registration.unit_id.in_(unit_ids),
            )
        )
    ).all()
    missing = {r.title_code for r in found} - titles.keys()
    if missing:
        titles.update(
            (str(code), str(name))
            for code, name in await session.execute(
                select(Title.code, Title.name).where(Title.code.in_(missing))
            )
        )
    units = list(await session.scalars(select(Unit).where(Unit.id.in_(unit_ids))))
    unit_names = {u.id: u.name for u in units}
    # The one status model (storage.counts) says which list each unit's rows are on.
    lists = await list_states(session, campaign_id, units)
    keyed: list[tuple[tuple[Any, ...], RegistrationRow]] = []
    for r in found:
        # A collective registration is listed under its collective's name (a tổ, phòng named
        # by the leader) or the unit's, without a phone. A row without a person is listed as
        # its unit, as the collective ones are.
        individual = not r.is_collective and r.full_name is not None
        unit_name = unit_names[r.unit_id]
        row = RegistrationRow(
            receipt_no=r.receipt_no,
            name=r.full_name if individual else (r.collective_name or unit_name),
            phone=r.phone if individual else None,
            position=r.position if individual else None,
            unit_name=unit_name,
            unit_path=PATH_SEPARATOR.join(path_names[r.unit_id]),
            title_code=r.title_code,
            title_name=titles.get(r.title_code, r.title_code),
            kind="Cá nhân" if individual else "Tập thể",
            status=REGISTRATION_STATE_LABELS[registration_state(r.status)],
            list_status=LIST_STATE_LABELS[lists[r.unit_id]],
            source=SOURCE_LABELS.get(r.source, r.source),
            created=_local_date(r.created_at, zone),
            updated=_local_date(r.updated_at, zone),
        )
        sort_key = (
            [n.casefold() for n in path_names[r.unit_id]],
            individual,
            row.name.casefold(),
            row.title_code,
            row.receipt_no,
        )
        keyed.append((tuple(sort_key), row))
    keyed.sort(key=lambda pair: pair[0])
    return [row for _key, row in keyed]


async def registration_rows(
    session: AsyncSession,
    campaign_code: str,
    unit_code: str | None = None,
    *,
    statuses: Iterable[str] = LISTED_STATUSES,
    timezone_name: str = DEFAULT_TIMEZONE,
) -> list[RegistrationRow]:
    """All of :func:`stream_registration_rows` in one list (small exports, tests)."""
    return [
        row
        async for row in stream_registration_rows(
            session, campaign_code, unit_code, statuses=statuses, timezone_name=timezone_name
        )
    ]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return str(value)


# A spreadsheet runs a cell starting with one of these as a formula (CSV injection): a name
# or text typed in a chat or a roster must stay text when an officer opens the file.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Vietnamese Excel splits CSV on ";" (the list separator of the locale), others on "," or a
# tab: a formula may also start right after any of them, inside what we wrote as one cell.
_INNER_FORMULA = re.compile(r"([;,\t\r\n] *)('*[=+\-@])")
_INNER_GUARDED = re.compile(r"([;,\t\r\n] *)'('*[=+\-@])")
# A cell holding any of these is quoted, so no spreadsheet splits it, whatever its separator.
_QUOTE_WHEN = frozenset(',;"\r\n\t')


def _needs_guard(text: str) -> bool:
    # Apostrophes already in front are guarded too, so reading back is exact.
    return text.lstrip("'").startswith(FORMULA_STARTS)


def guard_formula(text: str) -> str:
    """Text a spreadsheet will not evaluate: a leading apostrophe (which Excel hides) in
    front of the cell and of every part after a separator that starts like a formula."""
    text = _INNER_FORMULA.sub(r"\1'\2", text)
    return "'" + text if _needs_guard(text) else text


def unguard_formula(text: str) -> str:
    """The text :func:`guard_formula` guarded, as it was (for reading our CSV files back)."""
    text = text[1:] if text.startswith("'") and _needs_guard(text[1:]) else text
    return _INNER_GUARDED.sub(r"\1\2", text)


def csv_cell(value: str) -> str:
    """One CSV cell: guarded, and quoted when it holds a separator of any locale."""
    text = guard_formula(value)
    if _QUOTE_WHEN.intersection(text) or text != text.strip():
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv_row(stream: IO[str], cells: Sequence[str]) -> None:
    """A CSV line (RFC 4180, CRLF), each cell through :func:`csv_cell`."""
    stream.write(",".join(csv_cell(cell) for cell in cells) + "\r\n")


async def stream_csv(
    rows: AsyncIterable[RegistrationRow],
    stream: IO[str],
    advance: Callable[[int], None] | None = None,
) -> int:
    """:func:`write_csv` for rows that come as they are read; ``advance`` is told of each
    row written. Returns how many rows were written."""
    write_csv_row(stream, HEADERS)
    written = 0
    async for row in rows:
        write_csv_row(stream, [_text(v) for v in row.values()])
        written += 1
        if advance is not None:
            advance(1)
    return written


def write_csv(rows: Iterable[RegistrationRow], stream: IO[str]) -> None:
    """Header and rows as CSV, dates as dd/mm/yyyy.

    Open files with ``encoding="utf-8-sig"``: the BOM is what makes Excel read the
    Vietnamese letters correctly.
    """
    write_csv_row(stream, HEADERS)
    for row in rows:
        write_csv_row(stream, [_text(v) for v in row.values()])


def write_xlsx(rows: Sequence[RegistrationRow], target: str | Path | BinaryIO) -> None:
    """A workbook with one sheet: bold frozen header, fitted widths, real date cells."""
    # Imported here: openpyxl costs memory the running bot should not pay for.
    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Đăng ký"
    sheet.append(list(HEADERS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    sheet.freeze_panes = "A2"

    widths = [len(h) for h in HEADERS]
    for row in rows:
        values = row.values()
        sheet.append(list(values))
        current = sheet.max_row
        for index, value in enumerate(values, start=1):
            cell = sheet.cell(row=current, column=index)
            if isinstance(value, date):
                cell.number_format = "DD/MM/YYYY"
            elif isinstance(value, str):
                # Text cells keep "0912..." phone numbers and receipt codes as typed, and a
                # leading "=" is text, not a formula (openpyxl would write one).
                cell.number_format = "@"
                cell.data_type = "s"
            widths[index - 1] = max(widths[index - 1], len(_text(value)))
    for index, width in enumerate(widths, start=1):
        # Capped so one very deep unit path cannot push every other column off screen.
        sheet.column_dimensions[get_column_letter(index)].width = min(width + 2, MAX_WIDTH)
    sheet.auto_filter.ref = sheet.dimensions
    workbook.save(target)
