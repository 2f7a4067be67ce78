"""Reminders and digests as the person sees them: muting, the reminder buttons, /tonghop.

- /tatnhac and /batnhac, and the “🔕 Tắt nhắc nhở / 🔔 Bật nhắc nhở” menu entry, switch a
  person's reminders (and scheduled digests) off and on.
- Reminder buttons are notification actions (see Engine.actions): ``!start:title`` opens a
  registration flow, ``!resume:`` re-asks the question a half-finished registration stopped
  at, ``!remind:off`` mutes.
- /tonghop gives an officer the summary report of their units, now.
"""

from __future__ import annotations

from collections.abc import Collection

from handlers.digest import build_digest
from handlers.engine.flow import Again, Ctx, Finish, Go, Switch
from handlers.engine.prompt import Choice
from handlers.engine.runner import CommandFn
from handlers.i18n import _
from handlers.reminders import ReminderPolicy
from storage.models import Person
from storage.repo import audit
from storage.stats import campaigns_covering, officer_units

# Digests one /tonghop may produce (units × campaigns); a person is rarely officer of more.
MAX_DIGESTS = 4
NOT_A_DRAFT = ("", "menu", "onboarding")


def reminder_choice(person: Person) -> Choice:
    """The menu entry that switches reminders, labelled with what it will do."""
    if person.reminders_muted:
        return Choice("remind_on", _("🔔 Turn reminders on"))
    return Choice("remind_off", _("🔕 Mute reminders"))


def set_muted(ctx: Ctx, muted: bool) -> None:
    """Switch the person's reminders and say so."""
    person = ctx.require_person()
    if person.reminders_muted != muted:
        person.reminders_muted = muted
        audit(
            ctx.session,
            action="reminders.mute" if muted else "reminders.unmute",
            entity="person",
            entity_id=person.id,
            actor_id=person.id,
            via="chat",
        )
    if muted:
        ctx.say(
            _(
                "🔕 Reminders are off. You will not get deadline reminders or scheduled reports "
                "any more; type /batnhac to turn them back on."
            )
        )
    else:
        ctx.say(_("🔔 Reminders are on again. Type /tatnhac to turn them off."))


async def cmd_mute(ctx: Ctx, _arg: str) -> Go | None:
    """/tatnhac: no more reminders."""
    if ctx.person is None:
        return Switch("onboarding")
    set_muted(ctx, True)
    return None


async def cmd_unmute(ctx: Ctx, _arg: str) -> Go | None:
    """/batnhac: reminders again."""
    if ctx.person is None:
        return Switch("onboarding")
    set_muted(ctx, False)
    return None


async def action_remind(ctx: Ctx, arg: str) -> Go | None:
    """The “🔕 Tắt nhắc nhở” button under a reminder (``!remind:off``; ``on`` undoes it)."""
    set_muted(ctx, arg != "on")
    return None


def start_action(flows: Collection[str]) -> CommandFn:
    """``!start:<flow>``: the “📝 Đăng ký ngay” button; only flows that exist are opened."""

    async def action(ctx: Ctx, arg: str) -> Go | None:
        if arg not in flows:
            ctx.say(_("This button is no longer valid."))
            return None
        if ctx.flow == arg:
            # Already in it: going on beats starting over and losing the answers given.
            return Again(_("Let us continue where you stopped:"))
        return Switch(arg)

    return action


async def action_resume(ctx: Ctx, _arg: str) -> Go | None:
    """``!resume:``: ask again the question an unfinished registration stopped at."""
    if ctx.flow in NOT_A_DRAFT:
        ctx.say(_("There is no unfinished registration any more. Here is the menu:"))
        return Finish()
    return Again(_("Let us continue where you stopped:"))


async def cmd_digest(ctx: Ctx, arg: str) -> Go | None:
    """/tonghop [CAMPAIGN]: the summary report of the officer's units, with the files."""
    if ctx.person is None:
        ctx.say(_("First, let me get to know you."))
        return Switch("onboarding")
    units = await officer_units(ctx.session, ctx.person.id)
    if not units:
        ctx.say(
            _(
                "The summary report is for union officers of the upper levels. If you should "
                "receive it, please ask your union to give you the officer role."
            )
        )
        return None
    policy = ReminderPolicy(timezone=ctx.config.timezone, default_locale=ctx.config.default_locale)
    wanted = arg.strip().upper()
    made = 0
    for unit in units:
        for campaign in await campaigns_covering(ctx.session, unit, ctx.today):
            if wanted and campaign.code.upper() != wanted:
                continue
            if made == MAX_DIGESTS:
                ctx.say(_("There are more reports; type /tonghop followed by a campaign code."))
                return None
            digest = await build_digest(
                ctx.session, campaign, unit, ctx.now, policy, chart=ctx.config.digest_chart
            )
            linked = ctx.config.linked_file_channels
            ctx.said.extend(digest.replies(ctx.identity.channel, linked))
            made += 1
    if not made:
        ctx.say(_("No campaign is running in the area of your units at the moment."))
    return None


def reminder_actions(flows: Collection[str]) -> dict[str, CommandFn]:
    """The notification actions of reminders; ``flows`` are those ``!start:`` may open."""
    return {"start": start_action(flows), "resume": action_resume, "remind": action_remind}
