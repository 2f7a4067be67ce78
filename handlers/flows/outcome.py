"""Members hear what became of their unit's list: approved, returned (with the reason), or
reopened. Through the outbox like every message to others; held until the quiet hours end;
not sent to people who muted the bot's reminders.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select

from handlers.engine.flow import Ctx
from handlers.engine.prompt import Reply
from handlers.i18n import _
from handlers.notify import notify
from handlers.reminders import QuietHours
from storage.list_people import registrants_of
from storage.models import AuditEntry, Campaign, Person, Role, UnitSubmission
from storage.repo import campaign_by_id, titles_by_code
from storage.units import people_with_role


class Outcome(StrEnum):
    APPROVED = "approved"
    RETURNED = "returned"
    REOPENED = "reopened"


def _after_quiet_hours(ctx: Ctx) -> datetime | None:
    """When news decided now may go out: now, or the end of tonight's quiet hours."""
    quiet = QuietHours(ctx.config.quiet_start, ctx.config.quiet_end)
    local = ctx.now.astimezone(ctx.config.tz)
    release = quiet.release(local)
    return None if release == local else release


async def _who_asked_to_reopen(ctx: Ctx, submission: UnitSubmission) -> set[int]:
    since = submission.decided_at
    rows = await ctx.session.scalars(
        select(AuditEntry.actor_id).where(
            AuditEntry.action == "submission.reopen_request",
            AuditEntry.entity_id == submission.id,
            *((AuditEntry.at >= since,) if since else ()),
        )
    )
    return {r for r in rows if r is not None}


async def tell_members(ctx: Ctx, submission: UnitSubmission, outcome: Outcome) -> int:
    """Queue the news for the members on the list (leaders have theirs); returns how many."""
    campaign = await campaign_by_id(ctx.session, submission.campaign_id)
    if campaign is None:
        return 0
    on_list = await registrants_of(ctx.session, campaign.id, submission.unit)
    wanted = set(on_list)
    if outcome is Outcome.REOPENED:
        wanted |= await _who_asked_to_reopen(ctx, submission)
    wanted -= set(await people_with_role(ctx.session, submission.unit_id, Role.LEADER))
    wanted.discard(ctx.require_person().id)
    if not wanted:
        return 0
    muted = set(
        await ctx.session.scalars(
            select(Person.id).where(Person.id.in_(wanted), Person.reminders_muted.is_(True))
        )
    )
    wanted -= muted
    codes = sorted({code for codes in on_list.values() for code in codes})
    titles = await titles_by_code(ctx.session, codes)
    names = {code: (titles[code].abbreviation or titles[code].name) for code in titles}
    message = _News(campaign, submission, outcome, on_list, names)
    before = len(ctx.others)
    told = await notify(ctx, wanted, message)
    hold = _after_quiet_hours(ctx)
    for out in ctx.others[before:]:
        out.not_before = hold
    return told


class _News:
    """The message, built in each member's own language."""

    def __init__(
        self,
        campaign: Campaign,
        submission: UnitSubmission,
        outcome: Outcome,
        on_list: dict[int, list[str]],
        names: dict[str, str],
    ) -> None:
        self.campaign = campaign.name
        self.unit = submission.unit.name
        self.reason = submission.reason or "—"
        self.outcome = outcome
        self.on_list = on_list
        self.names = names

    def __call__(self, member: Person) -> Reply:
        codes = self.on_list.get(member.id, [])
        mine = ", ".join(self.names.get(code, code) for code in codes)
        fmt = {"unit": self.unit, "campaign": self.campaign, "reason": self.reason}
        if self.outcome is Outcome.APPROVED:
            text = _(
                "✅ Good news: the list of {unit} for “{campaign}” has been approved by the "
                "upper level."
            ).format(**fmt)
        elif self.outcome is Outcome.RETURNED:
            text = _(
                "↩️ The list of {unit} for “{campaign}” was returned to the unit for "
                "completion.\nReason: {reason}\nYour union leader will fix it and send it "
                "again; if your own registration needs a change, make it now under /cuatoi."
            ).format(**fmt)
        else:
            text = _(
                "🔓 The approved list of {unit} for “{campaign}” was reopened, so registrations "
                "can be added or changed again until it is sent up.\nReason: {reason}"
            ).format(**fmt)
        if mine:
            text += "\n" + _("Your registration: {titles}.").format(titles=mine)
        return Reply(text)
