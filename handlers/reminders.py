"""Reminders before deadlines: when they are due, who gets which words, and the pass itself.

The timing is pure arithmetic on a campaign and a moment (``now`` is always passed in, so
tests move a clock through a campaign). A campaign has *anchors*, the registration deadline
and the end of each phase; each anchor has *due points*, 7, 3 and 1 days before it unless the
campaign file says otherwise. A due point falling in the quiet hours is released when they
end (a 22:00 due time goes out at 08:00 the next morning).

The pass (:func:`reminder_pass`) is idempotent and catches up once: for every anchor not yet
passed it takes only the latest due point already released, and sends it to whoever has not
had that due point yet (the ``reminder_log``). Run it twice, in two processes at the same
time, or after a week of downtime: each person gets each reminder at most once, and missed
slots are not replayed one by one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from handlers.engine.flow import TEXT_ONLY_CHANNELS
from handlers.engine.prompt import Address, Choice, Outgoing, Reply
from handlers.engine.runner import queue_outgoing
from handlers.i18n import _, current_locale, use_locale
from handlers.text import format_count, format_date, format_number
from storage.models import Campaign, SubmissionStatus, Unit
from storage.reminders import (
    KIND_LEADER,
    KIND_MEMBER,
    Recipient,
    addressed,
    claim,
    leader_unit_ids,
    leaders_due,
    led_units,
    members_due,
    submission_statuses,
)
from storage.schedule import reminder_settings
from storage.stats import Progress, progress_under

log = logging.getLogger(__name__)

BATCH = 500


# Notification buttons ("!action:argument", see handlers.flows.notices).
START_TITLE = "!start:title"
RESUME = "!resume:"
MUTE = "!remind:off"


# --- time -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuietHours:
    """No reminders from ``start`` (evening) to ``end`` (morning), local time."""

    start: time = time(20, 0)
    end: time = time(8, 0)

    def is_quiet(self, moment: time) -> bool:
        if self.start == self.end:
            return False
        if self.start > self.end:  # over midnight: 20:00–08:00
            return moment >= self.start or moment < self.end
        return self.start <= moment < self.end

    def release(self, local: datetime) -> datetime:
        """The first moment from ``local`` on that is outside the quiet hours."""
        if not self.is_quiet(local.timetz().replace(tzinfo=None)):
            return local
        opening = datetime.combine(local.date(), self.end, tzinfo=local.tzinfo)
        if opening <= local:
            opening = datetime.combine(local.date() + timedelta(days=1), self.end, local.tzinfo)
        return opening


@dataclass(frozen=True)
class ReminderPolicy:
    """The bot-wide settings the timing depends on (bot.config builds it)."""

    timezone: str = "Asia/Ho_Chi_Minh"
    quiet: QuietHours = field(default_factory=QuietHours)
    default_locale: str = "vi"
    # Where the reminder's buttons show; elsewhere it says what to type.
    text_only_channels: frozenset[str] = TEXT_ONLY_CHANNELS
    # Channels that cannot carry files but offer them as signed links (THIDUA_PUBLIC_URL):
    # the scheduled digest queues its files for them too.
    linked_file_channels: frozenset[str] = frozenset()

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)

    def is_quiet(self, moment: datetime) -> bool:
        return self.quiet.is_quiet(self.local(moment).time())

    def release(self, moment: datetime) -> datetime:
        """When something due at ``moment`` may go out (UTC)."""
        return self.quiet.release(self.local(moment)).astimezone(UTC)

    def at(self, day: date, clock: time) -> datetime:
        """A local wall-clock time as an aware UTC moment."""
        return datetime.combine(day, clock, tzinfo=self.tz).astimezone(UTC)


@dataclass(frozen=True)
class Anchor:
    """A date people must be reminded of: the registration deadline or a phase's end."""

    key: str  # "deadline", "phase1", "phase2", ...
    last_day: date
    phase: str | None = None


@dataclass(frozen=True)
class DuePoint:
    anchor: Anchor
    offset_days: int
    due_at: datetime  # as configured (UTC)
    send_at: datetime  # after the quiet hours (UTC)

    @property
    def key(self) -> str:
        """Stable across restarts; a moved deadline makes new keys, hence new reminders."""
        return f"{self.anchor.key}:{self.anchor.last_day.isoformat()}:-{self.offset_days}d"


def anchors(campaign: Campaign) -> list[Anchor]:
    found = [Anchor("deadline", campaign.registration_deadline)]
    found += [Anchor(f"phase{p.position}", p.ends_on, p.name) for p in campaign.phases]
    return found


def due_points(campaign: Campaign, policy: ReminderPolicy) -> list[DuePoint]:
    """Every due point of the campaign, in sending order."""
    settings = reminder_settings(campaign.settings or {})
    clock = settings.at or policy.quiet.end
    points = []
    for anchor in anchors(campaign):
        for offset in settings.offsets:
            due = policy.at(anchor.last_day - timedelta(days=offset), clock)
            points.append(DuePoint(anchor, offset, due, policy.release(due)))
    points.sort(key=lambda p: (p.send_at, p.anchor.key))
    return points


def _still_open(point: DuePoint, policy: ReminderPolicy) -> bool:
    """Sent on or before the anchor's last day (a reminder after the fact is noise)."""
    return policy.local(point.send_at).date() <= point.anchor.last_day


def current_due(campaign: Campaign, now: datetime, policy: ReminderPolicy) -> list[DuePoint]:
    """What a pass at ``now`` sends: per anchor not yet passed, the latest released point.

    Nothing during the quiet hours. Older points of the same anchor are not replayed: after
    downtime people get one reminder (with the days actually left), not one per slot missed.
    """
    if policy.is_quiet(now):
        return []
    today = policy.local(now).date()
    latest: dict[str, DuePoint] = {}
    for point in due_points(campaign, policy):
        if point.send_at <= now and today <= point.anchor.last_day:
            latest[point.anchor.key] = point  # sorted by send_at: the last one wins
    return [p for p in latest.values() if _still_open(p, policy)]


def upcoming_sends(campaign: Campaign, now: datetime, policy: ReminderPolicy) -> list[datetime]:
    """The moments after ``now`` at which a reminder pass has something new to send."""
    times = {
        p.send_at
        for p in due_points(campaign, policy)
        if p.send_at > now and _still_open(p, policy)
    }
    return sorted(times)


# --- words ------------------------------------------------------------------------------------


def days_left_text(last_day: date, today: date) -> str:
    days = (last_day - today).days
    if days <= 0:
        return _("today is the last day")
    if days == 1:
        return _("1 day left")
    return _("{n} days left").format(n=days)


def _show_date(day: date) -> str:
    return format_date(day, current_locale())


def member_reply(
    campaign: Campaign, point: DuePoint, has_draft: bool, today: date, buttons: bool = True
) -> Reply:
    """The reminder to one member, in the current locale; ``buttons``: their channel shows
    them (else the text names the command to type, not the button to tap)."""
    deadline = campaign.registration_deadline
    left = days_left_text(deadline, today)
    mute = Choice(MUTE, _("🔕 Mute reminders"))
    if has_draft:
        text = (
            _(
                "⏰ Reminder: you still have an unfinished registration for “{campaign}”. "
                "Registration closes at the end of {deadline} ({left}). Tap “Continue "
                "registering” to finish it where you stopped."
            )
            if buttons
            else _(
                "⏰ Reminder: you still have an unfinished registration for “{campaign}”. "
                "Registration closes at the end of {deadline} ({left}). Type /start to finish "
                "it where you stopped."
            )
        ).format(campaign=campaign.name, deadline=_show_date(deadline), left=left)
        # Chats without buttons (Zalo) need the words to type.
        text += "\n" + _("(You can also type /start to continue, or /tatnhac to stop reminders.)")
        return Reply(text, choices=(Choice(RESUME, _("▶️ Continue registering")), mute))
    if point.anchor.phase is not None:
        text = _(
            "⏰ Reminder: {phase} of “{campaign}” ends on {end}. You have not registered "
            "anything yet; registration is open until the end of {deadline} ({left})."
        ).format(
            phase=point.anchor.phase,
            campaign=campaign.name,
            end=_show_date(point.anchor.last_day),
            deadline=_show_date(deadline),
            left=left,
        )
    else:
        text = _(
            "⏰ Reminder: “{campaign}” takes registrations until the end of {deadline} "
            "({left}). You have not registered anything yet. Only those who register at the "
            "start are considered for the titles at the year-end review."
        ).format(campaign=campaign.name, deadline=_show_date(deadline), left=left)
    text += "\n" + _("(You can also type /dangky to register, or /tatnhac to stop reminders.)")
    return Reply(text, choices=(Choice(START_TITLE, _("📝 Register now")), mute))


def submission_text(status: str | None) -> str:
    labels = {
        SubmissionStatus.NOT_SENT: _("not sent yet"),
        SubmissionStatus.PENDING: _("sent, awaiting approval"),
        SubmissionStatus.RETURNED: _("returned for completion"),
        SubmissionStatus.APPROVED: _("approved"),
    }
    return labels.get(SubmissionStatus(status or SubmissionStatus.NOT_SENT), status or "")


def leader_reply(
    campaign: Campaign,
    point: DuePoint,
    units: list[tuple[str, Progress, str | None]],
    today: date,
) -> Reply:
    """A leader's reminder: before the registration deadline, each led unit's progress and
    whether its list went up; before a phase ends, the phase's review (sơ kết đợt), since
    registration closed months ago."""
    locale = current_locale()
    if point.anchor.phase is not None:
        return phase_review_reply(campaign, point, [name for name, _p, _s in units], today)
    head = _(
        "⏰ Reminder for unit leaders: registration for “{campaign}” closes at the end of "
        "{deadline} ({left})."
    ).format(
        campaign=campaign.name,
        deadline=_show_date(campaign.registration_deadline),
        left=days_left_text(campaign.registration_deadline, today),
    )
    lines = [head]
    for name, progress, status in units:
        lines.append(
            _(
                "• {unit}: {done}/{total} members registered, {missing} not yet; "
                "list sent upward: {status}."
            ).format(
                unit=name,
                done=format_number(progress.registered, locale),
                total=format_number(progress.members, locale),
                missing=format_count(progress.missing, locale),
                status=submission_text(status),
            )
        )
    lines.append(_("Open the menu (/menu) to see who has not registered and to send the list."))
    return Reply("\n".join(lines), choices=(Choice(MUTE, _("🔕 Mute reminders")),))


def phase_review_reply(
    campaign: Campaign, point: DuePoint, unit_names: list[str], today: date
) -> Reply:
    """Before a phase ends: prepare its review (sơ kết đợt) and follow up the works."""
    lines = [
        _(
            "⏰ {phase} of “{campaign}” ends on {end} ({left}). Please prepare the phase "
            "review (sơ kết đợt) of {units}: how the registered targets are being met, the "
            "commemorative works of the phase and their plaques, and the collectives and "
            "people who stood out, to be commended."
        ).format(
            phase=point.anchor.phase,
            campaign=campaign.name,
            end=_show_date(point.anchor.last_day),
            left=days_left_text(point.anchor.last_day, today),
            units="; ".join(unit_names) or _("your unit"),
        ),
        _("Under “My registrations” (/cuatoi) you can mark a work's plaque as put up."),
    ]
    return Reply("\n".join(lines), choices=(Choice(MUTE, _("🔕 Mute reminders")),))


# --- the pass ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One reminder handed to the outbox (or, in a dry run, that would be)."""

    person_id: int
    name: str
    kind: str  # "member" or "leader"
    detail: str  # "register", "draft", "progress" or "review" (a phase's sơ kết)
    channel: str
    external_id: str
    due_key: str
    text: str


@dataclass
class PassReport:
    campaign_code: str
    at: datetime
    quiet: bool = False
    due: list[str] = field(default_factory=list)
    messages: list[Planned] = field(default_factory=list)


async def load_campaign(session: AsyncSession, campaign_id: int) -> tuple[Campaign, Unit] | None:
    campaign = await session.scalar(
        select(Campaign)
        .where(Campaign.id == campaign_id)
        .options(selectinload(Campaign.phases), selectinload(Campaign.issuer))
    )
    if campaign is None:
        return None
    return campaign, campaign.issuer


async def reminder_pass(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign_id: int,
    now: datetime,
    policy: ReminderPolicy,
    *,
    dry_run: bool = False,
    batch: int = BATCH,
) -> PassReport:
    """Send the reminders due at ``now`` for one campaign; returns what was sent.

    Each batch is one transaction: the log rows and the outbox rows commit together, so a
    crash half-way loses nothing and doubles nothing (the next pass picks up the rest).
    """
    async with sessionmaker() as session:
        loaded = await load_campaign(session, campaign_id)
    if loaded is None:
        return PassReport("?", now)
    campaign, issuer = loaded
    report = PassReport(campaign.code, now, quiet=policy.is_quiet(now))
    points = current_due(campaign, now, policy)
    report.due = [p.key for p in points]
    today = policy.local(now).date()
    for point in points:
        if today <= campaign.registration_deadline:
            await _remind_members(
                sessionmaker, campaign, issuer, point, today, policy, report, dry_run, batch
            )
        await _remind_leaders(
            sessionmaker, campaign, issuer, point, today, policy, report, dry_run, batch
        )
    if report.messages:
        log.info(
            "campaign %s: %d reminder(s) %s for %s",
            campaign.code,
            len(report.messages),
            "planned" if dry_run else "queued",
            ", ".join(report.due),
        )
    return report


async def _remind_members(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign: Campaign,
    issuer: Unit,
    point: DuePoint,
    today: date,
    policy: ReminderPolicy,
    report: PassReport,
    dry_run: bool,
    batch: int,
) -> None:
    async with sessionmaker() as reader:
        async for candidates in members_due(
            reader, campaign.id, issuer.path, point.key, batch=batch
        ):
            drafts = {c.person_id for c in candidates if c.has_draft}
            async with sessionmaker() as session, session.begin():
                entries: list[tuple[Recipient, str, Reply]] = []
                for member in await addressed(session, candidates):
                    has_draft = member.person_id in drafts
                    with use_locale(member.locale or policy.default_locale):
                        buttons = member.channel not in policy.text_only_channels
                        reply = member_reply(campaign, point, has_draft, today, buttons)
                    entries.append((member, "draft" if has_draft else "register", reply))
                await _send(session, campaign, KIND_MEMBER, point, entries, report, dry_run)


async def _remind_leaders(
    sessionmaker: async_sessionmaker[AsyncSession],
    campaign: Campaign,
    issuer: Unit,
    point: DuePoint,
    today: date,
    policy: ReminderPolicy,
    report: PassReport,
    dry_run: bool,
    batch: int,
) -> None:
    progress: dict[int, Progress] | None = None
    names: dict[int, str] = {}
    async with sessionmaker() as reader:
        async for candidates in leaders_due(
            reader, campaign.id, issuer.path, point.key, batch=batch
        ):
            async with sessionmaker() as session, session.begin():
                if progress is None:
                    # Counted once per pass for every led unit: one GROUP BY, not one per
                    # leader.
                    progress = await progress_under(
                        session,
                        campaign.id,
                        issuer.path,
                        await leader_unit_ids(session, issuer.path),
                    )
                led = await led_units(session, [c.person_id for c in candidates], issuer.path)
                unit_ids = sorted({u for units in led.values() for u in units})
                statuses = await submission_statuses(session, campaign.id, unit_ids)
                names.update(
                    (uid, name)
                    for uid, name in await session.execute(
                        select(Unit.id, Unit.name).where(Unit.id.in_(unit_ids))
                    )
                )
                entries: list[tuple[Recipient, str, Reply]] = []
                for leader in await addressed(session, candidates):
                    units = [
                        (names.get(u, "?"), progress.get(u, Progress()), statuses.get(u))
                        for u in led.get(leader.person_id, [])
                    ]
                    with use_locale(leader.locale or policy.default_locale):
                        reply = leader_reply(campaign, point, units, today)
                    # Before a phase ends it is the phase's review, not the registrations.
                    detail = "review" if point.anchor.phase is not None else "progress"
                    entries.append((leader, detail, reply))
                await _send(session, campaign, KIND_LEADER, point, entries, report, dry_run)


async def _send(
    session: AsyncSession,
    campaign: Campaign,
    kind: str,
    point: DuePoint,
    entries: list[tuple[Recipient, str, Reply]],
    report: PassReport,
    dry_run: bool,
) -> None:
    """Log and queue a batch; in a dry run only report it. Only the people whose log row is
    new in this transaction get a message (another process may have taken the others)."""
    if dry_run:
        won = {(r.person_id, point.key) for r, _detail, _reply in entries}
    else:
        won = await claim(
            session, campaign.id, kind, [(r.person_id, point.key, d) for r, d, _r in entries]
        )
    outgoing = []
    for recipient, detail, reply in entries:
        if (recipient.person_id, point.key) not in won:
            continue
        outgoing.append(Outgoing(Address(recipient.channel, recipient.external_id), reply))
        report.messages.append(
            Planned(
                recipient.person_id,
                recipient.full_name,
                kind,
                detail,
                recipient.channel,
                recipient.external_id,
                point.key,
                reply.text,
            )
        )
    if not dry_run:
        queue_outgoing(session, outgoing)
