"""“Thông tin phong trào” (/phongtrao): what the running campaign is about, for everyone.

The launch plan as the member needs it on a phone: the theme, the registration deadline,
the phases with the days left, the movements, the targets, and the plan document itself
where the channel can carry files (a one-line notice where it cannot, as for the digest).
"""

from __future__ import annotations

from datetime import date

from babel.numbers import format_decimal
from sqlalchemy import select

from handlers.digest import can_send_files
from handlers.engine.flow import Ctx, Go, Switch
from handlers.engine.prompt import OutFile, Reply
from handlers.i18n import _, current_locale
from handlers.reminders import days_left_text
from handlers.text import format_date
from storage.campaigns import (
    Target,
    campaign_movements,
    campaign_targets,
    campaign_theme,
    title_names,
)
from storage.models import Campaign, CampaignPhase, Title, Unit
from storage.repo import campaigns_for_unit, titles_by_code

# Campaigns shown at once (a unit is rarely under more than one or two).
MAX_CAMPAIGNS = 3


def _day(value: date) -> str:
    return format_date(value, current_locale())


def _share(target: Target) -> str:
    # The percent sign goes in with the number: "{share} % of" reads as a %-placeholder to
    # gettext tools ("% o"), which then refuse the catalogue.
    number = format_decimal(target.share, format="#,##0.##", locale=current_locale()) + " %"
    if target.of == "collectives":
        return _("{share} of collectives").format(share=number)
    return _("{share} of members").format(share=number)


def phase_state(phase: CampaignPhase, today: date) -> str:
    """ "đang diễn ra, còn 20 ngày", "bắt đầu ngày 01/07/2027" or "đã kết thúc"."""
    if today < phase.starts_on:
        return _("starts on {day}").format(day=_day(phase.starts_on))
    if today <= phase.ends_on:
        return _("under way, {left}").format(left=days_left_text(phase.ends_on, today))
    return _("ended")


def campaign_info_text(
    campaign: Campaign,
    issuer: str,
    titles: dict[str, Title],
    today: date,
    names: dict[str, str] | None = None,
) -> str:
    """The plan in a few short paragraphs, in the current locale."""
    paragraphs = []
    head = [f"📢 {campaign.name}"]
    theme = campaign_theme(campaign)
    if theme:
        head.append(_("Theme: {theme}").format(theme=theme))
    head.append(_("Launched by: {unit}").format(unit=issuer))
    deadline = campaign.registration_deadline
    if today <= deadline:
        head.append(
            _("Registration deadline: {day} ({left}).").format(
                day=_day(deadline), left=days_left_text(deadline, today)
            )
        )
    else:
        head.append(_("Registration closed on {day}.").format(day=_day(deadline)))
    paragraphs.append("\n".join(head))

    if campaign.phases:
        lines = [_("Phases:")]
        for phase in campaign.phases:
            line = _("• {phase} ({start} – {end}): {state}").format(
                phase=phase.name,
                start=_day(phase.starts_on),
                end=_day(phase.ends_on),
                state=phase_state(phase, today),
            )
            if phase.works_until and phase.works_until != phase.ends_on:
                line += "; " + _("works taken until {day}").format(day=_day(phase.works_until))
            if phase.theme:
                line += "\n  " + _("Theme: {theme}").format(theme=phase.theme)
            lines.append(line)
        paragraphs.append("\n".join(lines))

    movements = campaign_movements(campaign)
    if movements:
        paragraphs.append(
            "\n".join([_("Movements:"), *(f"• {movement}" for movement in movements)])
        )

    targets = campaign_targets(campaign)
    if targets:
        lines = [_("Targets:")]
        for target in targets:
            title = titles.get(target.code)
            name = (names or {}).get(target.code) or (title.name if title else target.code)
            lines.append(f"• {name}: {_share(target)}")
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


async def plan_document(ctx: Ctx, campaign: Campaign) -> OutFile | None:
    """The plan document as a file to send (read only now: it is kept out of other loads)."""
    if not campaign.plan_file_name:
        return None
    # By id: the campaign may be the process's cached one, shared and detached
    # (storage.refcache), which has no session to load a deferred column through.
    content = await ctx.session.scalar(
        select(Campaign.plan_file_content).where(Campaign.id == campaign.id)
    )
    if not content:
        return None
    return OutFile(
        campaign.plan_file_name,
        content,
        campaign.plan_file_mime or "application/octet-stream",
    )


async def show_campaign_info(ctx: Ctx) -> None:
    """Say what the campaigns running for the person's unit are about."""
    person = ctx.require_person()
    unit = await ctx.session.get(Unit, person.unit_id) if person.unit_id else None
    campaigns = await campaigns_for_unit(ctx.session, unit, ctx.today) if unit else []
    if not campaigns:
        ctx.say(_("There is no emulation campaign running for your unit at the moment."))
        return
    channel = ctx.identity.channel
    for campaign in campaigns[:MAX_CAMPAIGNS]:
        issuer = await ctx.session.get(Unit, campaign.issuer_unit_id)
        titles = await titles_by_code(ctx.session, [t.code for t in campaign_targets(campaign)])
        names = await title_names(ctx.session, campaign)
        ctx.say(
            campaign_info_text(campaign, issuer.name if issuer else "", titles, ctx.today, names)
        )
        if not campaign.plan_file_name:
            continue
        if can_send_files(channel, ctx.config.linked_file_channels):
            document = await plan_document(ctx, campaign)
            if document is not None:
                ctx.said.append(Reply("", file=document))
        else:
            ctx.say(
                _(
                    "(The plan document “{name}” can be received on Telegram or in the web chat.)"
                ).format(name=campaign.plan_file_name)
            )


async def cmd_campaign_info(ctx: Ctx, _arg: str) -> Go | None:
    """/phongtrao: the campaign's theme, phases, movements, targets and plan document."""
    if ctx.person is None:
        ctx.say(_("First, let me get to know you."))
        return Switch("onboarding")
    await show_campaign_info(ctx)
    return None
