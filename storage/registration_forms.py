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

import asyncio
import unicodedata
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, BinaryIO

from babel.numbers import format_decimal
from sqlalchemy import and_, distinct, func, or_, select
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
from storage.exporters import (
    EXPORT_BATCH,
    LISTED_STATUSES,
    ExportError,
    unit_batches,
    write_csv_row,
)
from storage.models import (
    Campaign,
    Initiative,
    Person,
    Registration,
    Title,
    Unit,
    UnitKind,
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
    # At least this wide even when the column is empty on the first rows.
    min_width: float = 0
    # Kept for the bot and the import (unit code, receipt, state): right of the form, greyed
    # and left out of the printed page.
    system: bool = False


NOTE = "Ghi chú"
AWARD_WIDTH = 24  # "Bằng khen của LĐLĐ tỉnh" on one line

INDIVIDUAL_COLUMNS = (
    Column(STT, "int"),
    Column("Họ và tên", max_width=28),
    Column("Chức vụ – đơn vị", max_width=48),
    Column("Danh hiệu đăng ký", max_width=30, min_width=AWARD_WIDTH),
    Column("Hình thức khen thưởng", max_width=30, min_width=AWARD_WIDTH),
    Column(NOTE, max_width=20, min_width=12),
    Column(UNIT_CODE, "short", 16, system=True),
    Column(RECEIPT, "short", 16, system=True),
    Column(STATUS, max_width=18, system=True),
    Column(LIST_STATUS, max_width=18, system=True),
)
COLLECTIVE_COLUMNS = (
    Column(STT, "int"),
    Column("Tên tập thể", max_width=50),
    Column("Danh hiệu đăng ký", max_width=30, min_width=AWARD_WIDTH),
    Column("Hình thức khen thưởng", max_width=30, min_width=AWARD_WIDTH),
    Column(NOTE, max_width=20, min_width=12),
    Column(UNIT_CODE, "short", 16, system=True),
    Column(RECEIPT, "short", 16, system=True),
    Column(STATUS, max_width=18, system=True),
    Column(LIST_STATUS, max_width=18, system=True),
)
INITIATIVE_COLUMNS = (
    Column(STT, "int"),
    Column("Tên sáng kiến", max_width=40),
    Column("Tác giả, đồng tác giả", max_width=28),
    Column("Đơn vị", max_width=30),
    Column("Lĩnh vực", max_width=18),
    Column("Ngày áp dụng", "date"),
    Column("Giá trị làm lợi (đồng)", "money"),
    Column(NOTE, max_width=20, min_width=12),
    Column(UNIT_CODE, "short", 16, system=True),
    Column(RECEIPT, "short", 16, system=True),
    Column(STATUS, max_width=18, system=True),
    Column(LIST_STATUS, max_width=18, system=True),
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
    Column(NOTE, max_width=20, min_width=12),
    Column(UNIT_CODE, "short", 16, system=True),
    Column(RECEIPT, "short", 16, system=True),
    Column(STATUS, max_width=18, system=True),
    Column(LIST_STATUS, max_width=18, system=True),
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
    # Registrations listed, when a row can hold several (a person with all their titles).
    registrations: int | None = None


@dataclass
class RegistrationForm:
    campaign_code: str
    campaign_name: str
    year: int
    unit_name: str
    sheets: list[Sheet] = field(default_factory=list)
    # The body above the unit, written over it at the top left (as on every union paper).
    issuing_body: str | None = None

    def counts(self) -> dict[str, int]:
        """Registrations (or initiatives, works) per sheet name, for the command's report."""
        return {
            sheet.name: len(sheet.rows) if sheet.registrations is None else sheet.registrations
            for sheet in self.sheets
        }


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

    async def load_paths(self, session: AsyncSession, paths: Iterable[str]) -> None:
        wanted = {int(p) for path in paths for p in path.strip("/").split("/") if p}
        ids = sorted(wanted - set(self.names))
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            rows = await session.execute(select(Unit.id, Unit.name).where(Unit.id.in_(chunk)))
            self.names.update((uid, name) for uid, name in rows)

    def key(self, unit: Unit) -> list[str]:
        return self.key_of_path(unit.path)

    def key_of_path(self, path: str) -> list[str]:
        # Folded once per unit: a province's list has 100,000 rows in a few thousand units.
        cache: dict[str, list[str]] = self.__dict__.setdefault("_folded", {})
        found = cache.get(path)
        if found is None:
            found = [fold(self.names.get(int(p), "")) for p in path.strip("/").split("/") if p]
            cache[path] = found
        return found


def _state(status: str) -> str:
    """The row's own state in the form's words (its list's state is the next column)."""
    return REGISTRATION_STATE_LABELS[registration_state(status)]


def _listed(column: Any) -> Any:
    return column.in_([str(s) for s in LISTED_STATUSES])


@dataclass
class SheetPlan:
    """One table of the form before its rows are read: they come a batch of units at a time
    (storage.exporters.unit_batches), each batch in the form's order and not yet numbered,
    so that a province's list is written without holding it (memory flat in its rows)."""

    name: str
    title: str
    section: str | None
    columns: tuple[Column, ...]
    # Each batch: its rows, and how many registrations (initiatives, works) they list.
    batches: Callable[[], AsyncIterator[tuple[list[tuple[Any, ...]], int]]]
    # Registrations (initiatives, works) listed, counted before any row is read.
    listed: int
    # Whether a row can hold several of them (a person with all their titles).
    grouped: bool
    total: tuple[str, int, int] | None = None
    # The exact row count, for the rare table whose ``listed`` exceeds a sheet.
    count_rows: Callable[[], Awaitable[int]] | None = None


async def plan_form(
    session: AsyncSession,
    campaign_code: str,
    unit_code: str | None = None,
    kind: str = ALL,
    *,
    batch_size: int = EXPORT_BATCH,
) -> tuple[RegistrationForm, list[SheetPlan]]:
    """The form's heading (with no sheets) and its tables, rows not yet read.

    ``kind`` is ``titles`` (individuals and collectives), ``initiatives``, ``works`` or
    ``all``; rows are read about ``batch_size`` at a time. Raises :class:`ExportError` for
    an unknown campaign, unit or kind.
    """
    if kind not in (*KINDS, ALL):
        raise ExportError(f"unknown kind {kind!r}; use one of {', '.join((*KINDS, ALL))}")
    campaign = await session.scalar(select(Campaign).where(Campaign.code == campaign_code))
    if campaign is None:
        raise ExportError(f"unknown campaign {campaign_code!r}")
    root = await _root(session, campaign, unit_code)
    parent = await session.get(Unit, root.parent_id) if root.parent_id is not None else None
    form = RegistrationForm(
        campaign.code,
        campaign.name,
        campaign.year,
        root.name,
        issuing_body=(
            parent.name
            if parent is not None
            # A province's union answers to the national one even when the tree starts there.
            else NATIONAL_BODY
            if root.kind == UnitKind.PROVINCE
            else None
        ),
    )
    tree = UnitNames()
    plans: list[SheetPlan] = []
    if kind in (TITLES, ALL):
        plans.extend(await _title_plans(session, campaign, root, tree, batch_size))
    if kind in (INITIATIVES, ALL):
        plans.append(await _initiative_plan(session, campaign, root, tree, batch_size))
    if kind in (WORKS, ALL):
        plans.append(await _work_plan(session, campaign, root, tree, batch_size))
    return form, plans


async def build_form(
    session: AsyncSession, campaign_code: str, unit_code: str | None = None, kind: str = ALL
) -> RegistrationForm:
    """The form of a campaign for the whole tree (the issuer) or one unit's subtree, every
    row in memory (tests, small callers; :func:`export_form_xlsx` streams).

    ``kind`` is ``titles`` (individuals and collectives), ``initiatives``, ``works`` or
    ``all``. Raises :class:`ExportError` for an unknown campaign, unit or kind.
    """
    form, plans = await plan_form(session, campaign_code, unit_code, kind)
    for plan in plans:
        rows = [row async for batch, _listed in plan.batches() for row in batch]
        form.sheets.append(
            Sheet(
                plan.name,
                plan.title,
                plan.section,
                plan.columns,
                [(number, *row) for number, row in enumerate(rows, start=1)],
                plan.total,
                plan.listed if plan.grouped else None,
            )
        )
    return form


async def _units_in_order(
    session: AsyncSession, tree: UnitNames, counted: Any
) -> tuple[list[int], dict[int, list[str]], dict[int, int]]:
    """The units of ``counted`` (unit id, path, rows) in the form's tree order, with their
    sort keys and row counts, for storage.exporters.unit_batches."""
    per_unit = {int(uid): (str(path), int(count)) for uid, path, count in counted}
    await tree.load_paths(session, (path for path, _count in per_unit.values()))
    place = {uid: tree.key_of_path(path) for uid, (path, _count) in per_unit.items()}
    ordered = sorted(per_unit, key=lambda uid: (place[uid], uid))
    return ordered, place, {uid: count for uid, (_path, count) in per_unit.items()}


def _in_scope(model: Any, campaign: Campaign, root: Unit) -> list[Any]:
    return [
        model.campaign_id == campaign.id,
        _listed(model.status),
        Unit.path.startswith(root.path, autoescape=True),
    ]


async def _per_unit(session: AsyncSession, model: Any, where: list[Any]) -> Any:
    """Rows per unit in the scope: one row per unit, so units are sorted and cut into
    batches without holding any row."""
    return await session.execute(
        select(Unit.id, Unit.path, func.count())
        .select_from(model)
        .join(Unit, model.unit_id == Unit.id)
        .where(*where)
        .group_by(Unit.id, Unit.path)
    )


# A person's registrations are one row (all their titles); a collective's (a unit's, or a
# tổ / phòng named by the leader) are one row of its unit's.
_INDIVIDUAL = and_(Registration.is_collective.is_(False), Registration.person_id.is_not(None))
_COLLECTIVE = or_(Registration.is_collective.is_(True), Registration.person_id.is_(None))
_TITLE_COLUMNS = (
    Registration.receipt_no,
    Registration.title_code,
    Registration.is_collective,
    Registration.status,
    Registration.unit_id,
    Registration.person_id,
    Registration.collective_name,
    Person.full_name,
    Person.position,
)


async def _title_plans(
    session: AsyncSession, campaign: Campaign, root: Unit, tree: UnitNames, batch_size: int
) -> list[SheetPlan]:
    scope = _in_scope(Registration, campaign, root)
    # What each title code shows (titles, then awards, by rank), shared by both sheets.
    shown: dict[str, tuple[str | None, str | None, tuple[bool, int]]] = {}
    heading = _titles_heading(campaign.year)
    plans: list[SheetPlan] = []
    for collective, name, columns in (
        (False, INDIVIDUAL_SHEET, INDIVIDUAL_COLUMNS),
        (True, COLLECTIVE_SHEET, COLLECTIVE_COLUMNS),
    ):
        where = [*scope, _COLLECTIVE if collective else _INDIVIDUAL]
        ordered, place, counts = await _units_in_order(
            session, tree, await _per_unit(session, Registration, where)
        )

        def batches(
            collective: bool = collective,
            where: list[Any] = where,
            ordered: list[int] = ordered,
            place: dict[int, list[str]] = place,
            counts: dict[int, int] = counts,
        ) -> AsyncIterator[tuple[list[tuple[Any, ...]], int]]:
            return _title_batches(
                session, campaign, tree, shown, collective, where, ordered, place, counts,
                batch_size,
            )  # fmt: skip

        async def count_rows(collective: bool = collective, where: list[Any] = where) -> int:
            who = (
                (Registration.unit_id, func.coalesce(Registration.collective_name, ""))
                if collective
                else (Registration.person_id,)
            )
            people = (
                select(*who).join(Unit, Registration.unit_id == Unit.id).where(*where).distinct()
            )
            found = await session.scalar(select(func.count()).select_from(people.subquery()))
            return int(found or 0)

        plans.append(
            SheetPlan(
                name,
                heading,
                name,  # the section above the table: "Cá nhân" / "Tập thể"
                columns,
                batches,
                sum(counts.values()),
                grouped=True,
                count_rows=count_rows,
            )
        )
    return plans


async def _title_batches(
    session: AsyncSession,
    campaign: Campaign,
    tree: UnitNames,
    shown: dict[str, tuple[str | None, str | None, tuple[bool, int]]],
    collective: bool,
    where: list[Any],
    ordered: list[int],
    place: dict[int, list[str]],
    counts: dict[int, int],
    batch_size: int,
) -> AsyncIterator[tuple[list[tuple[Any, ...]], int]]:
    # A person with registrations in two units (moved during the campaign) is one row, under
    # the unit of their first title: read whole, up front (a handful), and left out of the
    # batches of their other units.
    movers: dict[Any, list[Any]] = {}
    if not collective:
        moved = list(
            await session.scalars(
                select(Registration.person_id)
                .join(Unit, Registration.unit_id == Unit.id)
                .where(*where)
                .group_by(Registration.person_id)
                .having(func.count(distinct(Registration.unit_id)) > 1)
            )
        )
        for start in range(0, len(moved), 1000):
            for reg in await session.execute(
                select(*_TITLE_COLUMNS)
                .join(Unit, Registration.unit_id == Unit.id)
                .outerjoin(Person, Registration.person_id == Person.id)
                .where(*where, Registration.person_id.in_(moved[start : start + 1000]))
            ):
                movers.setdefault(reg.person_id, []).append(reg)
    moved_to: dict[int, list[Any]] = {}
    if movers:
        await _show_titles(session, shown, {r.title_code for regs in movers.values() for r in regs})
        for regs in movers.values():
            home = min(regs, key=lambda reg: (shown[reg.title_code][2], reg.title_code,
                                              reg.receipt_no)).unit_id  # fmt: skip
            moved_to.setdefault(home, []).extend(regs)
    states: dict[str, str] = {}
    for batch in unit_batches(ordered, place, counts, batch_size):
        registrations = [
            reg
            for reg in await session.execute(
                select(*_TITLE_COLUMNS)
                .outerjoin(Person, Registration.person_id == Person.id)
                .where(
                    Registration.campaign_id == campaign.id,
                    _listed(Registration.status),
                    _COLLECTIVE if collective else _INDIVIDUAL,
                    Registration.unit_id.in_(batch),
                )
            )
            if reg.person_id not in movers or collective
        ]
        for uid in batch:
            registrations.extend(moved_to.get(uid, ()))
        await _show_titles(session, shown, {r.title_code for r in registrations})
        units = await _units(session, batch)
        lists = await list_states(session, campaign.id, units.values())
        # What each row takes from its unit, looked up once per unit rather than per row.
        unit_facts = {
            uid: (u.name, u.code, tree.key_of_path(u.path), LIST_STATE_LABELS[lists[uid]])
            for uid, u in units.items()
        }
        yield _title_rows(registrations, shown, unit_facts, states), len(registrations)


async def _show_titles(
    session: AsyncSession,
    shown: dict[str, tuple[str | None, str | None, tuple[bool, int]]],
    codes: set[str],
) -> None:
    missing = codes - shown.keys()
    if not missing:
        return
    titles = {
        t.code: t for t in await session.scalars(select(Title).where(Title.code.in_(missing)))
    }
    for code in missing:
        entry = titles.get(code)
        # Titles first, then awards, each from the highest level down (catalogue rank); a
        # code removed from the catalogue is still listed, as its code.
        if entry is None:
            shown[code] = (code, None, (False, 1000))
        elif is_award(entry):
            shown[code] = (None, entry.name, (True, entry.rank))
        else:
            shown[code] = (entry.name, None, (False, entry.rank))


def _title_rows(
    registrations: list[Any],
    shown: dict[str, tuple[str | None, str | None, tuple[bool, int]]],
    unit_facts: dict[int, tuple[str, str, list[str], str]],
    states: dict[str, str],
) -> list[tuple[Any, ...]]:
    """One batch's rows of a title sheet, in the form's order (not numbered)."""
    # One row per person (per collective for the units' list) with all their titles: the
    # form lists people. Receipts and states follow, one line per title, in the same order.
    people: dict[tuple[bool, Any], list[tuple[Any, Any, str | None, str | None]]] = {}
    for reg in registrations:
        title, award, order = shown[reg.title_code]
        collective = reg.is_collective or reg.person_id is None
        # A unit's collectives (tổ, phòng, the whole agency) are rows of their own.
        who = (
            collective,
            (reg.unit_id, reg.collective_name or "") if collective else reg.person_id,
        )
        people.setdefault(who, []).append(
            ((order, reg.title_code, reg.receipt_no), reg, title, award)
        )

    keyed: list[tuple[Any, tuple[Any, ...]]] = []
    for (collective, _id), items in people.items():
        if len(items) == 1:  # most people register one title: no sorting or joining
            _order, first, titles_text, awards_text = items[0]
            titles_text = titles_text or None
            awards_text = awards_text or None
            receipts = first.receipt_no
            status = states.get(first.status) or states.setdefault(
                first.status, _state(first.status)
            )
        else:
            items.sort(key=lambda item: item[0])
            regs = [reg for _order, reg, _t, _a in items]
            titles_text = "\n".join(t for _o, _r, t, _a in items if t) or None
            awards_text = "\n".join(a for _o, _r, _t, a in items if a) or None
            receipts = "\n".join(reg.receipt_no for reg in regs)
            labels = [_state(reg.status) for reg in regs]
            status = labels[0] if len(set(labels)) == 1 else "\n".join(labels)
            first = regs[0]
        unit_name, unit_code, unit_key, list_status = unit_facts[first.unit_id]
        if collective:
            name = (
                f"{first.collective_name}{POSITION_SEPARATOR}{unit_name}"
                if first.collective_name
                else unit_name
            )
            keyed.append(
                (
                    (unit_key, fold(name), str(_id)),
                    (name, titles_text, awards_text, None, unit_code, receipts, status,
                     list_status),
                )
            )  # fmt: skip
            continue
        where = f"{first.position}{POSITION_SEPARATOR}{unit_name}" if first.position else unit_name
        keyed.append(
            (
                (unit_key, fold(first.full_name), first.person_id),
                (first.full_name, where, titles_text, awards_text, None, unit_code, receipts,
                 status, list_status),
            )
        )  # fmt: skip
    return _sorted(keyed)


def _sorted(keyed: list[tuple[Any, tuple[Any, ...]]]) -> list[tuple[Any, ...]]:
    keyed.sort(key=lambda pair: pair[0])
    return [row for _key, row in keyed]


async def _units(session: AsyncSession, ids: Iterable[int]) -> dict[int, Unit]:
    wanted = sorted(set(ids))
    found: dict[int, Unit] = {}
    for start in range(0, len(wanted), 1000):
        chunk = wanted[start : start + 1000]
        found.update(
            (u.id, u) for u in await session.scalars(select(Unit).where(Unit.id.in_(chunk)))
        )
    return found


async def _initiative_plan(
    session: AsyncSession, campaign: Campaign, root: Unit, tree: UnitNames, batch_size: int
) -> SheetPlan:
    where = _in_scope(Initiative, campaign, root)
    ordered, place, counts = await _units_in_order(
        session, tree, await _per_unit(session, Initiative, where)
    )

    async def batches() -> AsyncIterator[tuple[list[tuple[Any, ...]], int]]:
        for batch in unit_batches(ordered, place, counts, batch_size):
            initiatives = list(
                await session.scalars(
                    select(Initiative)
                    .where(
                        Initiative.campaign_id == campaign.id,
                        _listed(Initiative.status),
                        Initiative.unit_id.in_(batch),
                    )
                    .options(selectinload(Initiative.authors))
                )
            )
            units = await _units(session, batch)
            lists = await list_states(session, campaign.id, units.values())
            person_ids = [i.person_id for i in initiatives if i.person_id is not None]
            people = {
                p.id: p
                for p in await session.scalars(select(Person).where(Person.id.in_(person_ids)))
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
                    None,
                    unit.code,
                    item.receipt_no,
                    _state(item.status),
                    LIST_STATE_LABELS[lists[unit.id]],
                )
                keyed.append(((tree.key(unit), fold(item.name), item.receipt_no), row))
            yield _sorted(keyed), len(keyed)

    # The total row says what every count says (storage.counts), not a sum of its own.
    count, total = await initiatives_total(session, campaign.id, root.path)
    return SheetPlan(
        INITIATIVE_SHEET,
        f"DANH SÁCH SÁNG KIẾN ĐĂNG KÝ NĂM {campaign.year}",
        None,
        INITIATIVE_COLUMNS,
        batches,
        sum(counts.values()),
        grouped=False,
        total=(
            f"{TOTAL_LABEL}: {_count(count)} sáng kiến, tổng giá trị làm lợi {money_words(total)}",
            _money_column(INITIATIVE_COLUMNS),
            total,
        ),
    )


async def _work_plan(
    session: AsyncSession, campaign: Campaign, root: Unit, tree: UnitNames, batch_size: int
) -> SheetPlan:
    where = _in_scope(Work, campaign, root)
    ordered, place, counts = await _units_in_order(
        session, tree, await _per_unit(session, Work, where)
    )

    async def batches() -> AsyncIterator[tuple[list[tuple[Any, ...]], int]]:
        for batch in unit_batches(ordered, place, counts, batch_size):
            works = list(
                await session.scalars(
                    select(Work).where(
                        Work.campaign_id == campaign.id,
                        _listed(Work.status),
                        Work.unit_id.in_(batch),
                    )
                )
            )
            units = await _units(session, batch)
            lists = await list_states(session, campaign.id, units.values())
            keyed: list[tuple[Any, tuple[Any, ...]]] = []
            for work in works:
                unit = units[work.unit_id]
                row = (
                    work.name,
                    unit.name,
                    work.occasion,
                    work.value,
                    work.starts_on,
                    work.ends_on,
                    YES if work.plaque_requested else NO,
                    None,
                    unit.code,
                    work.receipt_no,
                    _state(work.status),
                    LIST_STATE_LABELS[lists[unit.id]],
                )
                keyed.append(
                    ((tree.key(unit), work.starts_on, fold(work.name), work.receipt_no), row)
                )
            yield _sorted(keyed), len(keyed)

    count, total = await works_total(session, campaign.id, root.path)
    label = f"{TOTAL_LABEL}: {_count(count)} công trình, tổng trị giá {money_words(total)}"
    return SheetPlan(
        WORK_SHEET,
        f"DANH SÁCH CÔNG TRÌNH, SẢN PHẨM CHÀO MỪNG NĂM {campaign.year}",
        None,
        WORK_COLUMNS,
        batches,
        sum(counts.values()),
        grouped=False,
        total=(label, _money_column(WORK_COLUMNS), total),
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
# Column widths are measured on the first rows only: a province's list has 100,000 rows and
# measuring each cell was most of the time spent writing it.
WIDTH_SAMPLE = 1000


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


_CHAR_WIDTHS: dict[str, float] = {}


def text_width(text: str, *, bold: bool = False) -> float:
    # Each character measured once (a form's sample has a few hundred distinct ones).
    widths = _CHAR_WIDTHS
    total = 0.0
    for ch in text:
        width = widths.get(ch)
        if width is None:
            width = _char_width(ch)
            if len(widths) < 10_000:  # bounded: a hostile name cannot grow it for ever
                widths[ch] = width
        total += width
    return total * (BOLD if bold else 1)


def _lines(text: str, width: float, *, bold: bool = False) -> int:
    """About how many lines ``text`` takes wrapped in a column ``width`` units wide.

    LibreOffice keeps the row heights a file gives (it does not re-measure rows on opening
    an XLSX), so wrapped cells need their height written or the lines overlap. Counted from
    the length (an average letter is 0.9 units), not letter by letter: it runs per cell.
    """
    room = max(1.0, width - 1.5)  # the cell's inner padding
    per_line = max(1, int(room / (0.9 * (BOLD if bold else 1))))
    return sum(max(1, -(-len(part) // per_line)) for part in text.split("\n"))


def _width(column: Column, values: Sequence[Any]) -> float:
    # Headers wrap, so only their longest word must fit; content up to the column's cap.
    longest_word = max(text_width(word, bold=True) for word in column.header.split())
    content = max((text_width(line) for v in values for line in _text(v).split("\n")), default=0.0)
    if column.kind == "money":
        content = max((text_width(f"{v:,}") for v in values if isinstance(v, int)), default=0.0)
    elif column.kind == "date":
        content = text_width("00/00/0000")
    content = max(content, column.min_width)
    return round(min(max(content, longest_word, 4) + 2, column.max_width + 2), 1)


def write_form_xlsx(form: RegistrationForm, target: str | Path | BinaryIO) -> None:
    """The form as a workbook, one sheet per table, ready to print on A4 landscape.

    For a form whose rows are in memory (:func:`build_form`); :func:`export_form_xlsx`
    writes the same workbook reading the rows a batch at a time.
    """
    # Imported here: the running bot only writes workbooks for the digest.
    import xlsxwriter

    # xlsxwriter drops a cell past a sheet's last row without a word: refuse before writing.
    for sheet in form.sheets:
        _check_fits(sheet.name, len(sheet.rows))

    workbook = xlsxwriter.Workbook(target, _WORKBOOK_OPTIONS)
    styles = _Styles(workbook)
    for spec in form.sheets:
        writer = _SheetWriter(workbook, styles, form, spec.name, spec.columns, spec.total)
        writer.begin(spec.title, spec.section, spec.rows[:WIDTH_SAMPLE])
        writer.write_rows(spec.rows)
        writer.end()
    workbook.close()


# Constant memory: each row goes to disk as it is written, so a province's rows take the
# memory of one (rows must then come in order, which the batches of units give).
_WORKBOOK_OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_urls": False,
}


def _check_fits(name: str, rows: int) -> None:
    if rows > MAX_TABLE_ROWS:
        raise ExportError(
            f"the sheet {name!r} would have {rows:,} rows, more than a spreadsheet holds "
            f"({SHEET_ROWS:,} with the heading and signatures); "
            "export one unit's subtree at a time"
        )


async def export_form_xlsx(
    session: AsyncSession,
    campaign_code: str,
    unit_code: str | None,
    kind: str,
    target: str | Path | BinaryIO,
    *,
    advance: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
    batch_size: int = EXPORT_BATCH,
) -> dict[str, int]:
    """:func:`build_form` written as :func:`write_form_xlsx` writes it (the same workbook,
    part for part), its rows read a batch of units at a time and written as they come, so
    that the memory is flat in the number of rows. ``advance`` is told how many
    registrations (initiatives, works) each batch listed, ``on_total`` of their number
    before the first row is read.

    Returns the counts :meth:`RegistrationForm.counts` gives. Raises :class:`ExportError`
    for an unknown campaign, unit or kind, or a table longer than a sheet (before writing).
    """
    import xlsxwriter

    form, plans = await plan_form(session, campaign_code, unit_code, kind, batch_size=batch_size)
    for plan in plans:
        # A row holds at least one registration: only a table listing more is counted.
        if plan.listed > MAX_TABLE_ROWS:
            _check_fits(plan.name, await plan.count_rows() if plan.count_rows else plan.listed)
    if on_total is not None:
        on_total(sum(plan.listed for plan in plans))
    workbook = xlsxwriter.Workbook(target, _WORKBOOK_OPTIONS)
    try:
        counts = await _write_plans(workbook, form, plans, advance)
    except BaseException:
        _discard(workbook)
        raise
    await asyncio.to_thread(workbook.close)
    return counts


def _discard(workbook: Any) -> None:
    """Remove the row files of a workbook that will not be closed (a failed export): in
    constant-memory mode xlsxwriter keeps each sheet's rows in a temporary file it deletes
    only when the workbook is written."""
    for sheet in workbook.worksheets():
        handle = getattr(sheet, "row_data_fh", None)
        name = getattr(sheet, "row_data_filename", None)
        if handle is not None:
            handle.close()
        if name:
            Path(name).unlink(missing_ok=True)


async def _write_plans(
    workbook: Any,
    form: RegistrationForm,
    plans: list[SheetPlan],
    advance: Callable[[int], None] | None,
) -> dict[str, int]:
    styles = _Styles(workbook)
    counts: dict[str, int] = {}
    for plan in plans:
        writer = _SheetWriter(workbook, styles, form, plan.name, plan.columns, plan.total)
        # The column widths come from the first rows: held until there are enough of them.
        sample: list[tuple[Any, ...]] | None = []
        number = 0
        async for batch, listed in plan.batches():
            rows = [(number + index, *row) for index, row in enumerate(batch, start=1)]
            number += len(rows)
            if sample is not None:
                sample.extend(rows)
                if len(sample) < WIDTH_SAMPLE:
                    continue
                writer.begin(plan.title, plan.section, sample[:WIDTH_SAMPLE])
                rows, sample = sample, None
            # Writing is CPU work: in a thread, so chats are answered meanwhile.
            await asyncio.to_thread(writer.write_rows, rows)
            if advance is not None:
                advance(listed)
        if sample is not None:
            writer.begin(plan.title, plan.section, sample)
            writer.write_rows(sample)
            if advance is not None:
                advance(plan.listed)
        writer.end()
        counts[plan.name] = plan.listed if plan.grouped else number
    return counts


async def stream_sheet_csv(
    session: AsyncSession,
    campaign_code: str,
    unit_code: str | None,
    kind: str,
    stream: IO[str],
    *,
    advance: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> dict[str, int]:
    """:func:`write_sheet_csv` of the form's first table, its rows read a batch at a time.
    Returns the counts of that table (as :meth:`RegistrationForm.counts`)."""
    _form, plans = await plan_form(session, campaign_code, unit_code, kind)
    plan = plans[0]
    if on_total is not None:
        on_total(plan.listed)
    write_csv_row(stream, [c.header for c in plan.columns])
    number = 0
    async for batch, listed in plan.batches():
        for row in batch:
            number += 1
            write_csv_row(stream, [_text(v) for v in (number, *row)])
        if advance is not None:
            advance(listed)
    return {plan.name: plan.listed if plan.grouped else number}


# Above the table: the issuing body and the national motto, the place and date, the title.
MOTTO = "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"
NATIONAL_BODY = "Tổng Liên đoàn Lao động Việt Nam"
MOTTO_LINE = "Độc lập – Tự do – Hạnh phúc"
PLACE_AND_DATE = "…………, ngày …… tháng …… năm ……"
PREPARER, PREPARER_NOTE = "NGƯỜI LẬP BIỂU", "(Ký, ghi rõ họ tên)"
SIGNER_FOR, SIGNER, SIGNER_NOTE = "TM. BAN CHẤP HÀNH", "CHỦ TỊCH", "(Ký tên, đóng dấu)"
HEADER_ROW = 8  # issuing body and motto (2 rows), date, blank, title, campaign, section
SHEET_ROWS = 1_048_576  # the most rows a sheet holds (Excel, LibreOffice)
# Under the table: the total row, a blank, the signatures and the print area's room; the last
# row index the print area reaches is HEADER_ROW + rows + 8.
MAX_TABLE_ROWS = SHEET_ROWS - HEADER_ROW - 9


class _Styles:
    """The cell formats of the form, made once per workbook."""

    def __init__(self, workbook: Any) -> None:
        base = {"font_name": FONT_NAME, "font_size": FONT_SIZE}
        cell = {**base, "border": 1, "valign": "top"}

        def make(**options: Any) -> Any:
            return workbook.add_format({**base, **options})

        self.title = make(bold=True, font_size=14, align="center", valign="vcenter")
        # Top-aligned: the motto's two lines sit level with the issuing body's, which wrap.
        self.centre_bold = make(bold=True, align="center", valign="top", text_wrap=True)
        self.motto_line = make(bold=True, align="center", valign="top", underline=1)
        self.centre_italic = make(italic=True, align="center", text_wrap=True)
        self.bold = make(bold=True)
        self.header = make(bold=True, align="center", valign="vcenter", text_wrap=True, border=1)
        # System columns (unit code, receipt, state): greyed, and left out of the print.
        self.system_header = make(
            bold=True,
            align="center",
            valign="vcenter",
            text_wrap=True,
            border=1,
            bg_color="#E7E6E6",
        )
        self.body = {
            "int": workbook.add_format({**cell, "align": "center"}),
            "short": workbook.add_format({**cell, "align": "center", "text_wrap": True}),
            "date": workbook.add_format({**cell, "align": "center", "num_format": DATE_FORMAT}),
            "money": workbook.add_format({**cell, "align": "right", "num_format": MONEY_FORMAT}),
            "text": workbook.add_format({**cell, "align": "left", "text_wrap": True}),
        }
        self.total_label = make(bold=True, border=1, valign="vcenter", text_wrap=True)
        self.total_money = make(bold=True, border=1, align="right", num_format=MONEY_FORMAT)
        self.total_blank = make(border=1)


class _SheetWriter:
    """One sheet of the form: :meth:`begin` (widths from a sample of the first rows, the
    heading and the table's header), :meth:`write_rows` as often as rows come (numbered, in
    order), then :meth:`end` (total, signatures, page setup)."""

    def __init__(
        self,
        workbook: Any,
        styles: _Styles,
        form: RegistrationForm,
        name: str,
        columns: tuple[Column, ...],
        total: tuple[str, int, int] | None,
    ) -> None:
        self.sheet = workbook.add_worksheet(name)
        self.styles = styles
        self.form = form
        self.columns = columns
        self.total = total
        # The form proper ends before the system columns; headings and signatures span it.
        self.form_last = max(i for i, c in enumerate(columns) if not c.system)
        self.left_end = max(1, self.form_last // 2 - 1)
        self.right_start = self.left_end + 1
        self.widths: list[float] = []
        self.row = HEADER_ROW - 1

    def begin(self, title: str, section: str | None, sample: Sequence[tuple[Any, ...]]) -> None:
        sheet, styles, form, columns = self.sheet, self.styles, self.form, self.columns
        widths = self.widths
        for index, column in enumerate(columns):
            shown = [r[index] for r in sample]
            if self.total is not None and index + 1 == self.total[1]:
                shown.append(self.total[2])
            widths.append(_width(column, shown))
            sheet.set_column(index, index, widths[-1])

        left_end, right_start, form_last = self.left_end, self.right_start, self.form_last
        issuer = (form.issuing_body or "").upper()
        sheet.set_row(0, LINE_HEIGHT * max(1, _lines(issuer, sum(widths[: left_end + 1]))))
        _span(sheet, 0, 0, left_end, issuer, styles.centre_bold)
        _span(sheet, 0, right_start, form_last, MOTTO, styles.centre_bold)
        unit = form.unit_name.upper()
        sheet.set_row(1, LINE_HEIGHT * max(1, _lines(unit, sum(widths[: left_end + 1]), bold=True)))
        _span(sheet, 1, 0, left_end, unit, styles.centre_bold)
        _span(sheet, 1, right_start, form_last, MOTTO_LINE, styles.motto_line)
        _span(sheet, 2, right_start, form_last, PLACE_AND_DATE, styles.centre_italic)
        sheet.set_row(4, 21)
        _span(sheet, 4, 0, form_last, title, styles.title)
        _span(sheet, 5, 0, form_last, form.campaign_name, styles.centre_italic)
        if section:
            sheet.write_string(6, 0, section, styles.bold)

        header_row = HEADER_ROW - 1
        header = [(c.header, w) for c, w in zip(columns, widths, strict=True)]
        sheet.set_row(header_row, LINE_HEIGHT * max(_lines(h, w, bold=True) for h, w in header))
        for index, column in enumerate(columns):
            style = styles.system_header if column.system else styles.header
            sheet.write_string(header_row, index, column.header, style)

        # Per column, not per cell: the format, and the room a text has before it wraps.
        self.formats = [styles.body[c.kind] for c in columns]
        # Lines per text and column, counted once: a unit's name and the list states repeat
        # on every row of the unit.
        self.rooms: list[tuple[int, float, float, dict[str, int]]] = [
            (index, width - 1.5, width, {}) for index, width in enumerate(widths)
        ]

    def write_rows(self, rows: Iterable[tuple[Any, ...]]) -> None:
        sheet, rooms, formats = self.sheet, self.rooms, self.formats
        write_string, write_blank = sheet.write_string, sheet.write_blank
        row = self.row
        for values in rows:
            row += 1
            lines = 1
            for index, room, width, counted in rooms:
                value = values[index]
                if value.__class__ is str and (len(value) * 0.9 > room or "\n" in value):
                    taken = counted.get(value)
                    if taken is None:
                        if len(counted) > 10_000:  # bounded: names do not repeat
                            counted.clear()
                        taken = counted[value] = _lines(value, width)
                    if taken > lines:
                        lines = taken
            if lines > 1:
                sheet.set_row(row, LINE_HEIGHT * lines)
            for index, value in enumerate(values):
                # Text and blanks are most cells: written directly; the rest by their type.
                if value is None:
                    write_blank(row, index, None, formats[index])
                elif value.__class__ is str:
                    # Always a string: "=..." typed in a chat is text, not a formula.
                    write_string(row, index, value, formats[index])
                else:
                    _cell(sheet, row, index, value, formats[index])
        self.row = row
        _forget_written_heights(sheet, row)

    def end(self) -> None:
        sheet, styles, widths, row = self.sheet, self.styles, self.widths, self.row
        left_end, right_start, form_last = self.left_end, self.right_start, self.form_last
        if self.total is not None:
            label, money_index, amount = self.total
            row += 1
            span = sum(widths[: money_index - 1])
            sheet.set_row(row, LINE_HEIGHT * _lines(label, span, bold=True))
            # The label spans the columns left of the amount, so the long sentence fits.
            sheet.merge_range(row, 0, row, money_index - 2, label, styles.total_label)
            sheet.write_number(row, money_index - 1, amount, styles.total_money)
            for index in range(money_index, len(self.columns)):
                sheet.write_blank(row, index, None, styles.total_blank)

        # Signatures under the table: who drew up the list, and the union's chair.
        row += 2
        _span(sheet, row, 0, left_end, PREPARER, styles.centre_bold)
        _span(sheet, row, right_start, form_last, SIGNER_FOR, styles.centre_bold)
        _span(sheet, row + 1, right_start, form_last, SIGNER, styles.centre_bold)
        _span(sheet, row + 2, 0, left_end, PREPARER_NOTE, styles.centre_italic)
        _span(sheet, row + 2, right_start, form_last, SIGNER_NOTE, styles.centre_italic)

        # The header stays in view while scrolling and is printed on every page.
        sheet.freeze_panes(HEADER_ROW, 0)
        sheet.repeat_rows(HEADER_ROW - 1)
        sheet.print_area(0, 0, row + 6, form_last)
        sheet.set_landscape()
        sheet.set_paper(9)  # A4
        # Fit every column on the page width; as many pages down as the rows need.
        sheet.fit_to_pages(1, 0)
        sheet.center_horizontally()
        # Room under the table for the page number: LibreOffice clips a footer squeezed into
        # the default 0.3" between the footer line and the bottom margin.
        sheet.set_margins(left=0.4, right=0.4, top=0.6, bottom=0.8)
        sheet.set_footer(f'&C&"{FONT_NAME},Regular"&10Trang &P/&N', {"margin": 0.3})


def _forget_written_heights(sheet: Any, last: int) -> None:
    """Drop the heights of rows xlsxwriter has written to disk (all but ``last``).

    It keeps every ``set_row`` for the life of a sheet (to place images, which the form has
    none of), even in constant-memory mode where the row is already written: a province's
    wrapped rows held about 200 MB of them. The row being written keeps its height.
    """
    for table in (getattr(sheet, "row_info", None), getattr(sheet, "row_sizes", None)):
        if isinstance(table, dict) and len(table) > 1:
            kept = table.get(last)
            table.clear()
            if kept is not None:
                table[last] = kept


def _span(sheet: Any, row: int, first: int, last: int, text: str, style: Any) -> None:
    if last > first:
        sheet.merge_range(row, first, row, last, text, style)
    else:
        sheet.write_string(row, first, text, style)


def _cell(sheet: Any, row: int, column: int, value: Any, style: Any) -> None:
    if value is None:
        sheet.write_blank(row, column, None, style)
    elif isinstance(value, str):
        # Always a string: "=..." typed in a chat is text, not a formula.
        sheet.write_string(row, column, value, style)
    elif isinstance(value, bool):
        sheet.write_string(row, column, YES if value else NO, style)
    elif isinstance(value, int | float | Decimal):
        sheet.write_number(row, column, value, style)
    elif isinstance(value, datetime):
        sheet.write_datetime(row, column, value, style)
    elif isinstance(value, date):
        sheet.write_datetime(row, column, datetime(value.year, value.month, value.day), style)
    else:
        sheet.write_string(row, column, str(value), style)
