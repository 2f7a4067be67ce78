"""The officers' digest (“Báo cáo tổng hợp”): what it says, and the scheduled pass.

The numbers come from :mod:`storage.stats` (aggregates in SQL); this module words them the
way upper-level summaries are written (domain.md §6, in seed 002's order): the works by
occasion, the awards from the highest level down, the collective titles, Chiến sĩ thi đua of
every level as one total, the initiatives; collectives and individuals apart, two-digit
counts ("02", zero as "0"), "." thousands, money in tỷ/triệu đồng, fractions in words, units
in natural order, and progress against the plan's targets. With the text go the registration
lists as XLSX (the officers' form of part 2) and a bar chart of progress per unit; the chart
is drawn by a function the composition root passes in (``chart``), since plotting libraries
belong outside the conversation layer.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from babel.numbers import format_decimal
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.prompt import Address, OutFile, Outgoing, Reply
from handlers.engine.runner import queue_outgoing
from handlers.i18n import _, current_locale, use_locale
from handlers.reminders import PassReport, Planned, ReminderPolicy, load_campaign
from handlers.status import list_state_label
from handlers.text import format_count, format_date, format_money, format_number, split_message
from storage.models import Campaign, Unit
from storage.normalize import natural_key
from storage.registration_forms import MAX_TABLE_ROWS, export_form_xlsx
from storage.reminders import KIND_DIGEST, OfficerDue, claim, officers_due
from storage.repo import campaign_end
from storage.schedule import digest_frequency
from storage.stats import DigestData, TargetProgress, TitleCount, digest_data

log = logging.getLogger(__name__)

ChartFn = Callable[[DigestData], bytes | None]

# Message limits of the platforms (docs/platforms.md); an unknown channel gets the smallest.
TEXT_LIMITS = {"telegram": 4096, "zalo": 2000, "zalo_oa": 2000, "web": 4000}
DEFAULT_TEXT_LIMIT = 2000
# Channels that cannot deliver a document: the files are left out (and said so).
NO_FILES = frozenset({"zalo", "zalo_oa"})
# Lines of the per-unit breakdown in the text; the XLSX and the chart carry the rest.
MAX_UNIT_LINES = 20
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def text_limit(channel: str) -> int:
    return TEXT_LIMITS.get(channel, DEFAULT_TEXT_LIMIT)


def can_send_files(channel: str, linked: Collection[str] = ()) -> bool:
    """Whether files go to ``channel``; ``linked``: channels that offer them as links."""
    return channel not in NO_FILES or channel in linked


# --- words ------------------------------------------------------------------------------------

# The order of the officers' own summary (domain.md §6, seed 002): the works, then the awards
# from the highest body down (Cờ before Bằng khen of the same body), the collective titles,
# every level of Chiến sĩ thi đua as one line, the rest; the initiatives close it. A title
# the catalogue adds later goes by its rank just before LĐTT.
DIGEST_ORDER = (
    "CO_CP",
    "CO_TLD",
    "BK_TLD",
    "CO_TINH",
    "BK_TINH",
    "GK",
    "CDCS_HTXS",
    "CDCS_VM",
    "GVN_DVN",
    "XSD",
    "TTLDXS",
    "TTLDTT",
    "CSTD",  # Chiến sĩ thi đua các cấp, counted together
    "LDTT",
    "LDST",
)
# Occasions listed under the works line; the XLSX has every work.
MAX_OCCASION_LINES = 10


def is_cstd(code: str) -> bool:
    """A level of Chiến sĩ thi đua (CSTDCS, CSTD_TINH, CSTD_TLD, CSTDTQ)."""
    return code.startswith("CSTD")


def _order(title: TitleCount) -> tuple[float, int, str]:
    code = "CSTD" if is_cstd(title.code) else title.code
    if code in DIGEST_ORDER:
        return (DIGEST_ORDER.index(code), title.rank, title.code)
    return (DIGEST_ORDER.index("LDTT") - 0.5, title.rank, title.code)


def _percent(done: int | Decimal, total: int | Decimal, locale: str) -> str:
    if total <= 0:
        return "–"
    return _percent_value(Decimal(done) * 100 / Decimal(total), locale)


def _percent_value(value: Decimal, locale: str) -> str:
    """91,8 % (Vietnamese writes a space before the sign), 91.8% in English."""
    shown = format_decimal(value.quantize(Decimal("0.1")), format="#,##0.#", locale=locale)
    return f"{shown} %" if locale == "vi" else f"{shown}%"


def _names(names: list[str], total: int) -> str:
    shown = "; ".join(names)
    if total > len(names):
        shown += _(" and {n} more").format(n=format_number(total - len(names), current_locale()))
    return shown


def _title_line(collectives: int, individuals: int, name: str, locale: str) -> str:
    if collectives and individuals:
        return _("{c} collectives, {i} individuals registered for {title}").format(
            c=format_count(collectives, locale), i=format_count(individuals, locale), title=name
        )
    if collectives:
        return _("{c} collectives registered for {title}").format(
            c=format_count(collectives, locale), title=name
        )
    return _("{i} individuals registered for {title}").format(
        i=format_count(individuals, locale), title=name
    )


def _cstd_line(titles: list[TitleCount], locale: str) -> str:
    """ "05 cá nhân đăng ký đạt CSTĐ các cấp (Chiến sĩ thi đua cơ sở 04, … cấp tỉnh 01)"."""
    levels = [t for t in titles if is_cstd(t.code) and t.individuals]
    line = _("{i} individuals registered for Chiến sĩ thi đua at every level").format(
        i=format_count(sum(t.individuals for t in levels), locale)
    )
    if levels:
        line += " ({parts})".format(
            parts=", ".join(f"{t.name} {format_count(t.individuals, locale)}" for t in levels)
        )
    return line


def _works_lines(data: DigestData, locale: str) -> str:
    line = _("{n} commemorative works registered, with a total value of {value}").format(
        n=format_count(data.works, locale), value=format_money(data.works_value, locale)
    )
    requested = sum(o.plaques_requested for o in data.occasions)
    if requested:
        line += _(
            " ({requested} with a plaque requested, {installed} with the plaque put up)"
        ).format(
            requested=format_count(requested, locale),
            installed=format_count(sum(o.plaques_installed for o in data.occasions), locale),
        )
    if data.occasions:
        line += _(", by occasion:")
    lines = [line]
    for occasion in data.occasions[:MAX_OCCASION_LINES]:
        name = occasion.name
        if occasion.on is not None:
            name += f" ({format_date(occasion.on, locale)})"
        lines.append(
            _("   – {occasion}: {n} works, {value}").format(
                occasion=name,
                n=format_count(occasion.works, locale),
                value=format_money(occasion.value, locale),
            )
        )
    if len(data.occasions) > MAX_OCCASION_LINES:
        lines.append(
            _("   – and {n} more occasions (see the attached file)").format(
                n=format_number(len(data.occasions) - MAX_OCCASION_LINES, locale)
            )
        )
    return "\n".join(lines)


def _target_line(target: TargetProgress, locale: str) -> str:
    if target.base <= 0:
        return _("• {title}: {done} registered — target {target}").format(
            title=target.label,
            done=format_number(target.done, locale),
            target=_percent_value(target.share, locale),
        )
    return _("• {title}: {done}/{total} = {percent} — target {target}").format(
        title=target.label,
        done=format_number(target.done, locale),
        total=format_number(target.base, locale),
        percent=_percent(target.done, target.base, locale),
        target=_percent_value(target.share, locale),
    )


def _status_word(status: str | None) -> str:
    # The same words as the leader's view and the officers' review (handlers.status).
    return list_state_label(status) if status else ""


def digest_text(data: DigestData, now: datetime, policy: ReminderPolicy) -> str:
    """The digest in the current locale, as paragraphs (split later per channel).

    It reads like the officer's own report: counts as "02" (zero as "0"), fractions in words
    ("1 trên 2 đơn vị", never "01/02", which reads like a date), units in natural order.
    """
    locale = current_locale()
    local = policy.local(now)
    paragraphs: list[str] = []
    paragraphs.append(
        _(
            "📊 Summary report: {campaign}\n"
            "{unit}, as of {time} on {date} (registration deadline {deadline})."
        ).format(
            campaign=data.campaign_name,
            unit=data.unit_name,
            time=local.strftime("%H:%M"),
            date=format_date(local.date(), locale),
            deadline=format_date(data.deadline, locale),
        )
    )

    sub = data.submissions
    if sub.expected:
        lines = [
            _(
                "Units that sent their list: {sent} of {total} units "
                "(approved {approved}, awaiting approval {pending})."
            ).format(
                sent=format_number(sub.submitted, locale),
                total=format_number(sub.expected, locale),
                approved=format_number(sub.approved, locale),
                pending=format_number(sub.pending, locale),
            )
        ]
        if sub.missing:
            lines.append(
                _("Not sent yet ({n}): {names}.").format(
                    n=format_number(sub.missing, locale),
                    names=_names(sub.missing_names, sub.missing),
                )
            )
        if sub.returned:
            lines.append(
                _("Returned to complete ({n}): {names}.").format(
                    n=format_number(sub.returned, locale),
                    names=_names(sub.returned_names, sub.returned),
                )
            )
        paragraphs.append("\n".join(lines))

    # (place in the order, line): the works first, the initiatives last.
    entries: list[tuple[tuple[float, int, str], str]] = []
    if data.works:
        entries.append(((-1, 0, ""), _works_lines(data, locale)))
    for title in data.titles:
        if not is_cstd(title.code):
            entries.append(
                (
                    _order(title),
                    _title_line(title.collectives, title.individuals, title.name, locale),
                )
            )
    if entries or data.initiatives:
        # Every level of Chiến sĩ thi đua on one line, said even when none registered.
        entries.append(((DIGEST_ORDER.index("CSTD"), 0, ""), _cstd_line(data.titles, locale)))
    entries.sort(key=lambda entry: entry[0])
    results = [line for _place, line in entries]
    if data.initiatives:
        results.append(
            _("{n} initiatives registered, with an expected benefit of {value}").format(
                n=format_count(data.initiatives, locale),
                value=format_money(data.initiatives_benefit, locale),
            )
        )
    if results:
        paragraphs.append(
            _("Registered so far, from the highest level down:")
            + "\n"
            + "\n".join(f"• {line};" for line in results[:-1])
            + ("\n" if len(results) > 1 else "")
            + f"• {results[-1]}."
        )
        paragraphs.append(
            _("In total: {c} collective and {i} individual title registrations.").format(
                c=format_count(data.collectives, locale), i=format_count(data.individuals, locale)
            )
        )
    else:
        paragraphs.append(_("Nothing has been registered yet."))

    if data.targets:
        paragraphs.append(
            "\n".join(
                [_("Progress against the plan's targets:")]
                + [_target_line(t, locale) for t in data.targets]
            )
        )

    progress = data.progress
    lines = [
        _("Members who registered: {done} of {total} ({percent}).").format(
            done=format_number(progress.registered, locale),
            total=format_number(progress.members, locale),
            percent=_percent(progress.registered, progress.members, locale),
        )
    ]
    if data.children:
        lines.append(_("By unit ({parent}):").format(parent=data.breakdown_parent))
        children = sorted(data.children, key=lambda c: (natural_key(c.name), c.unit_id))
        for child in children[:MAX_UNIT_LINES]:
            line = _("• {unit}: {done} of {total} members ({percent})").format(
                unit=child.name,
                done=format_number(child.progress.registered, locale),
                total=format_number(child.progress.members, locale),
                percent=_percent(child.progress.registered, child.progress.members, locale),
            )
            if child.submission:
                line += f", {_status_word(child.submission).lower()}"
            lines.append(line)
        if len(data.children) > MAX_UNIT_LINES:
            lines.append(
                _("… and {n} more units (see the attached file).").format(
                    n=format_number(len(data.children) - MAX_UNIT_LINES, locale)
                )
            )
    paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


# --- the digest as messages -------------------------------------------------------------------


@dataclass
class Digest:
    data: DigestData
    text: str
    files: list[OutFile] = field(default_factory=list)

    def replies(self, channel: str, linked: Collection[str] = ()) -> list[Reply]:
        """The text cut under the channel's limit (at paragraphs, lines or words), then the
        files where the channel can deliver them."""
        parts = split_message(self.text, text_limit(channel))
        replies = [Reply(part) for part in parts]
        if can_send_files(channel, linked):
            replies += [Reply("", file=f) for f in self.files]
        elif self.files:
            replies.append(Reply(_("(The Excel list and the chart can be received on Telegram.)")))
        return replies


def list_fits_a_sheet(data: DigestData) -> bool:
    """Whether each table of the subtree's form fits in one sheet, from the digest's counts
    (a row holds at least one registration, initiative or work), before reading its rows."""
    largest = max(data.individuals, data.collectives, data.works, data.initiatives)
    return largest <= MAX_TABLE_ROWS


async def digest_xlsx(session: AsyncSession, data: DigestData) -> OutFile:
    """The subtree's registration lists in the officers' form (titles, initiatives, works)."""
    buffer = io.BytesIO()
    # Rows read and written a batch of units at a time (the writing in a thread, so chats
    # are answered meanwhile): a province's list is never held whole.
    await export_form_xlsx(session, data.campaign_code, data.unit_code, "all", buffer)
    return OutFile(_file_name(data, "xlsx"), buffer.getvalue(), XLSX_MIME)


def _file_name(data: DigestData, extension: str) -> str:
    safe = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in data.unit_code
    )
    return f"tong-hop-{data.campaign_code}-{safe}.{extension}"


async def build_digest(
    session: AsyncSession,
    campaign: Campaign,
    unit: Unit,
    now: datetime,
    policy: ReminderPolicy,
    *,
    chart: ChartFn | None = None,
    with_files: bool = True,
) -> Digest:
    """The digest of ``unit``'s subtree for ``campaign``, in the current locale."""
    data = await digest_data(session, campaign, unit)
    digest = Digest(data, digest_text(data, now, policy))
    if with_files:
        if list_fits_a_sheet(data):
            digest.files.append(await digest_xlsx(session, data))
        else:
            # A nation's list is longer than a spreadsheet: said in the text, rather than a
            # file cut short or millions of rows read only to be refused.
            digest.text += "\n\n" + _(
                "(The Excel list has more rows than a spreadsheet holds; "
                "ask for the list of each unit below.)"
            )
        if chart is not None and data.children:
            # Drawing takes a few hundred milliseconds: not on the event loop. The locale
            # is a context variable, copied into the thread with the call.
            png = await asyncio.to_thread(chart, data)
            if png:
                digest.files.append(OutFile(_file_name(data, "png"), png, "image/png"))
    return digest


# --- the schedule -----------------------------------------------------------------------------


def digest_slots(
    campaign: Campaign, policy: ReminderPolicy, start: date, end: date
) -> list[datetime]:
    """The digest times between two local dates: every morning (daily) or Mondays (weekly),
    when the quiet hours end (08:00 by default), as long as the campaign runs."""
    frequency = digest_frequency(campaign.settings or {})
    if frequency == "off":
        return []
    last = min(end, campaign_end(campaign))
    slots = []
    day = start
    while day <= last:
        if frequency == "daily" or day.weekday() == 0:
            slots.append(policy.release(policy.at(day, policy.quiet.end)))
        day += timedelta(days=1)
    return slots


def current_digest_slot(
    campaign: Campaign, now: datetime, policy: ReminderPolicy
) -> datetime | None:
    """The latest slot already reached and not older than the campaign (catch up once)."""
    if policy.is_quiet(now):
        return None
    today = policy.local(now).date()
    slots = [
        s
        for s in digest_slots(campaign, policy, today - timedelta(days=7), today)
        if campaign.created_at <= s <= now
    ]
    return slots[-1] if slots else None


def next_digest_slot(campaign: Campaign, now: datetime, policy: ReminderPolicy) -> datetime | None:
    today = policy.local(now).date()
    upcoming = [
        s for s in digest_slots(campaign, policy, today, today + timedelta(days=8)) if s > now
    ]
    return upcoming[0] if upcoming else None


async def digest_pass(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign_id: int,
    now: datetime,
    policy: ReminderPolicy,
    *,
    chart: ChartFn | None = None,
    dry_run: bool = False,
) -> PassReport:
    """Send the scheduled digest of the current slot to every officer who has not had it.

    Per officer unit, one transaction: the digest is built once, each of the unit's
    officers is logged and queued (text parts and files) together.
    """
    async with sessionmaker() as session:
        loaded = await load_campaign(session, campaign_id)
    if loaded is None:
        return PassReport("?", now)
    campaign, issuer = loaded
    report = PassReport(campaign.code, now, quiet=policy.is_quiet(now))
    slot = current_digest_slot(campaign, now, policy)
    if slot is None:
        return report
    prefix = f"digest:{policy.local(slot).date().isoformat()}"
    report.due = [prefix]
    async with sessionmaker() as session:
        officers = await officers_due(session, campaign, issuer.path, prefix)
    by_unit: dict[int, list[OfficerDue]] = {}
    for officer in officers:
        by_unit.setdefault(officer.unit_id, []).append(officer)
    for unit_id, recipients in by_unit.items():
        async with sessionmaker() as session, session.begin():
            unit = await session.get(Unit, unit_id)
            if unit is None:
                continue
            key = f"{prefix}:u{unit_id}"
            if dry_run:
                won = {(r.person_id, key) for r in recipients}
            else:
                won = await claim(
                    session,
                    campaign.id,
                    KIND_DIGEST,
                    [(r.person_id, key, None) for r in recipients],
                )
            recipients = [r for r in recipients if (r.person_id, key) in won]
            if not recipients:
                continue
            # Built once per locale: officers of one unit usually share it.
            built: dict[str, Digest] = {}
            outgoing = []
            for officer in recipients:
                locale = officer.locale or policy.default_locale
                with use_locale(locale):
                    if locale not in built:
                        built[locale] = await build_digest(
                            session,
                            campaign,
                            unit,
                            now,
                            policy,
                            chart=chart,
                            with_files=not dry_run,
                        )
                    replies = built[locale].replies(officer.channel, policy.linked_file_channels)
                address = Address(officer.channel, officer.external_id)
                outgoing += [Outgoing(address, reply) for reply in replies]
                report.messages.append(
                    Planned(
                        officer.person_id,
                        officer.full_name,
                        KIND_DIGEST,
                        unit.code,
                        officer.channel,
                        officer.external_id,
                        key,
                        built[locale].text,
                    )
                )
            if not dry_run:
                queue_outgoing(session, outgoing)
    return report
