"""Said at the first step: the unit's approved list stops this registration, and whom to ask.

Before, a member learnt it only at "✅ Xác nhận", after answering every question. Now the
campaign step says so, names the officer who approved the list, and offers a button that
asks them to reopen it (the officer gets the request with their "🔓 Mở lại" button).
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from handlers.engine.flow import Ctx, Go
from handlers.engine.prompt import Choice, Reply
from handlers.i18n import _, current_locale
from handlers.notify import notify
from handlers.text import format_date, parse_id
from storage.list_people import approved_list_covering
from storage.models import AuditEntry, Campaign, Person, UnitSubmission
from storage.repo import campaign_by_id
from storage.units import officers_above, submission_by_id

ASK_REOPEN = "xinmolai"
# One request per person and list a day is enough for the officer to notice.
ASK_AGAIN_AFTER = timedelta(days=1)


async def locked_list(ctx: Ctx, campaign: Campaign, unit_id: int | None) -> UnitSubmission | None:
    """The approved list that would refuse a registration of ``unit_id`` in ``campaign``."""
    if unit_id is None:
        return None
    return await approved_list_covering(ctx.session, campaign.id, unit_id)


async def _approvers(ctx: Ctx, submission: UnitSubmission) -> list[int]:
    """Who can reopen it: the officer who approved it, else the officers above the unit."""
    if submission.decided_by_id is not None:
        return [submission.decided_by_id]
    return await officers_above(ctx.session, submission.unit)


async def say_locked(ctx: Ctx, campaign: Campaign, submission: UnitSubmission) -> None:
    """The notice at the start, with the person to ask and the button to ask them."""
    approvers = await _approvers(ctx, submission)
    officer = await ctx.session.get(Person, approvers[0]) if approvers else None
    who = officer.full_name if officer else _("the upper-level union officer")
    decided = submission.decided_at
    when = (
        format_date(decided.astimezone(ctx.config.tz).date(), current_locale()) if decided else "—"
    )
    text = _(
        "The list of {unit} for “{campaign}” was approved by {officer} on {date}, so "
        "registrations cannot be added or changed now. If you need a change, ask {officer} "
        "to reopen the list."
    ).format(unit=submission.unit.name, campaign=campaign.name, officer=who, date=when)
    choices: tuple[Choice, ...] = ()
    if approvers:
        choices = (Choice(f"!{ASK_REOPEN}:{submission.id}", _("🙋 Ask to reopen the list")),)
    ctx.say(text, choices=choices)


async def action_ask_reopen(ctx: Ctx, arg: str) -> Go | None:
    """ "🙋 Xin mở lại danh sách": the officer who approved it is asked, once a day."""
    person = ctx.require_person()
    submission_id = parse_id(arg)
    submission = await submission_by_id(ctx.session, submission_id) if submission_id else None
    campaign = await campaign_by_id(ctx.session, submission.campaign_id) if submission else None
    covering = await locked_list(ctx, campaign, person.unit_id) if campaign is not None else None
    if submission is None or campaign is None or covering is None or covering.id != submission.id:
        ctx.say(_("The list is no longer approved, so you can register now. 👍"))
        return None
    asked = await ctx.session.scalar(
        select(AuditEntry.id).where(
            AuditEntry.action == "submission.reopen_request",
            AuditEntry.entity_id == submission.id,
            AuditEntry.actor_id == person.id,
            AuditEntry.at > ctx.now - ASK_AGAIN_AFTER,
        )
    )
    if asked is not None:
        ctx.say(_("You already asked today. The officer has your request."))
        return None
    unit_name = person.unit.name if person.unit else "—"

    def request(_officer: Person) -> Reply:
        return Reply(
            _(
                "🙋 {person} ({unit}) asks you to reopen the approved list of {list_unit} in "
                "“{campaign}”, to register or change a registration."
            ).format(
                person=person.full_name,
                unit=unit_name,
                list_unit=submission.unit.name,
                campaign=campaign.name,
            ),
            choices=(Choice(f"!reopen:{submission.id}", _("🔓 Reopen")),),
        )

    told = await notify(ctx, await _approvers(ctx, submission), request)
    # Written with the engine's clock (not the database's), which "once a day" is read by.
    ctx.session.add(
        AuditEntry(
            at=ctx.now,
            action="submission.reopen_request",
            entity="unit_submission",
            entity_id=submission.id,
            actor_id=person.id,
            via="chat",
            details={"unit_id": submission.unit_id},
        )
    )
    if told:
        ctx.say(_("I have passed your request on. You will be told when the list is reopened."))
    else:
        ctx.say(
            _(
                "The officer has not used the bot yet, so I could not pass your request on. "
                "Please contact them directly."
            )
        )
    return None


LOCKED_ACTIONS = {ASK_REOPEN: action_ask_reopen}
