"""The officers' digest (“Báo cáo tổng hợp”): what it says, and the scheduled pass.

The numbers come from :mod:`storage.stats` (aggregates in SQL); this module words them the
way upper-level summaries are written (domain.md §6): counts by award from the highest level
down, collectives and individuals apart, two-digit counts ("02"), "." thousands, money in
tỷ/triệu đồng. With the text go the registration lists as XLSX (the officers' form of part 2) and a
bar chart of progress per unit; the chart is drawn by a function the composition root
passes in (``chart``), since plotting libraries belong outside the conversation layer.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Callable
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
from storage.registration_forms import build_form, write_form_xlsx
from storage.reminders import KIND_DIGEST, OfficerDue, claim, officers_due
from storage.repo import campaign_end
from storage.schedule import digest_frequency
from storage.stats import DigestData, digest_data

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


def can_send_files(channel: str) -> bool:
    return channel not in NO_FILES


# --- words ------------------------------------------------------------------------------------


def _percent(done: int, total: int, locale: str) -> str:
    if total <= 0:
        return "–"
    value = (Decimal(done) * 100 / Decimal(total)).quantize(Decimal("0.1"))
    return format_decimal(value, format="#,##0.#", locale=locale) + "%"


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


def _status_word(status: str | None) -> str:
    # The same words as the leader's view and the officers' review (handlers.status).
    return list_state_label(status) if status else ""


def digest_text(data: DigestData, now: datetime, policy: ReminderPolicy) -> str:
    """The digest in the current locale, as paragraphs (split later per channel)."""
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
                "Units that sent their list: {sent}/{total} "
                "(approved {approved}, awaiting approval {pending})."
            ).format(
                sent=format_count(sub.submitted, locale),
                total=format_count(sub.expected, locale),
                approved=format_count(sub.approved, locale),
                pending=format_count(sub.pending, locale),
            )
        ]
        if sub.missing:
            lines.append(
                _("Not sent yet ({n}): {names}.").format(
                    n=format_count(sub.missing, locale),
                    names=_names(sub.missing_names, sub.missing),
                )
            )
        if sub.returned:
            lines.append(
                _("Returned to complete ({n}): {names}.").format(
                    n=format_count(sub.returned, locale),
                    names=_names(sub.returned_names, sub.returned),
                )
            )
        paragraphs.append("\n".join(lines))

    results: list[str] = []
    if data.works:
        results.append(
            _("{n} commemorative works registered, with a total value of {value}").format(
                n=format_count(data.works, locale), value=format_money(data.works_value, locale)
            )
        )
    results += [_title_line(t.collectives, t.individuals, t.name, locale) for t in data.titles]
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

    progress = data.progress
    lines = [
        _("Members who registered: {done}/{total} ({percent}).").format(
            done=format_number(progress.registered, locale),
            total=format_number(progress.members, locale),
            percent=_percent(progress.registered, progress.members, locale),
        )
    ]
    if data.children:
        lines.append(_("By unit ({parent}):").format(parent=data.breakdown_parent))
        for child in data.children[:MAX_UNIT_LINES]:
            line = _("• {unit}: {done}/{total} ({percent})").format(
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

    def replies(self, channel: str) -> list[Reply]:
        """The text cut under the channel's limit (at paragraphs, lines or words), then the
        files where the channel can deliver them."""
        parts = split_message(self.text, text_limit(channel))
        replies = [Reply(part) for part in parts]
        if can_send_files(channel):
            replies += [Reply("", file=f) for f in self.files]
        elif self.files:
            replies.append(Reply(_("(The Excel list and the chart can be received on Telegram.)")))
        return replies


async def digest_xlsx(session: AsyncSession, data: DigestData) -> OutFile:
    """The subtree's registration lists in the officers' form (titles, initiatives, works)."""
    form = await build_form(session, data.campaign_code, data.unit_code, "all")
    buffer = io.BytesIO()
    # Building a workbook is CPU work: in a thread, so chats are answered meanwhile.
    await asyncio.to_thread(write_form_xlsx, form, buffer)
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
        digest.files.append(await digest_xlsx(session, data))
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
                    replies = built[locale].replies(officer.channel)
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
