"""Small pieces several flows share: labels, dates and deadlines in the person's language."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date

from handlers.engine.flow import Answer, Ctx, Finish, Go, Next
from handlers.engine.prompt import MAX_LABEL, SHORTER_FORMS, Choice, Prompt
from handlers.flows.locked import locked_list, say_locked
from handlers.i18n import _, current_locale
from handlers.status import registration_state_label
from handlers.text import format_date
from storage.models import Campaign, Title, Unit
from storage.repo import campaign_by_id, campaigns_for_unit
from storage.units import registrations_locked


def title_label(title: Title, names: Mapping[str, str] | None = None) -> str:
    """ "Lao động tiên tiến (LĐTT)": the full name people know, with the short form.

    ``names`` are the campaign's own names (storage.campaigns.title_names): "Bằng khen của
    Công đoàn ngành Giáo dục" where the catalogue says "Bằng khen của LĐLĐ tỉnh".
    """
    name = (names or {}).get(title.code, title.name)
    if title.abbreviation:
        return f"{name} ({title.abbreviation})"
    return name


def title_button(title: Title, names: Mapping[str, str] | None = None) -> str:
    """A title on a button (≤ MAX_LABEL characters, so a 360-px phone shows it whole): the
    full label when it fits, else the name shortened the way officers write it
    ("Tập thể LĐ xuất sắc (TTLĐXS)", "Bằng khen của CĐ ngành Giáo dục")."""
    label = title_label(title, names)
    if len(label) <= MAX_LABEL:
        return label
    name = (names or {}).get(title.code, title.name)
    abbreviation = title.abbreviation
    for long, short in SHORTER_FORMS:
        name = name.replace(long, short)
        label = f"{name} ({abbreviation})" if abbreviation and abbreviation not in name else name
        if len(label) <= MAX_LABEL:
            return label
    return abbreviation or label


def title_short(title: Title, names: Mapping[str, str] | None = None) -> str:
    """ "TTLĐXS" inside a sentence or a button; the (campaign's) name when there is none."""
    return title.abbreviation or (names or {}).get(title.code, title.name)


def title_aliases(title: Title) -> tuple[str, ...]:
    return tuple(a for a in (title.abbreviation, title.code) if a)


def status_label(status: str) -> str:
    """The registration's own state (handlers.status: its list's state is said beside it)."""
    return registration_state_label(status)


def show_date(value: date) -> str:
    return format_date(value, current_locale())


def registration_open(campaign: Campaign, today: date) -> bool:
    return today <= campaign.registration_deadline


def deadline_passed_text(campaign: Campaign) -> str:
    return _(
        "Registration for “{campaign}” closed on {deadline}. If you think this is a mistake, "
        "please contact your union officer."
    ).format(campaign=campaign.name, deadline=show_date(campaign.registration_deadline))


# --- choosing the campaign (titles, initiatives, works) ------------------------------------


async def ask_open_campaign(
    ctx: Ctx,
    unit: Unit | None,
    then: str,
    *,
    is_open: Callable[[Campaign, date], bool] = registration_open,
    closed_text: Callable[[Campaign], str] = deadline_passed_text,
    # The approved list stops changes during the registration period only: a work registered
    # later in the year is new, not a change to it.
    lock_applies: Callable[[Campaign, date], bool] = registration_open,
) -> Prompt | Go:
    """The campaign step: skipped when one campaign is open for ``unit``, a choice when several.

    Stores ``campaign_id`` in the draft and moves on to ``then``; ends the flow, saying why,
    when nothing is open (none running, the deadline has passed, or the unit's approved list
    stops changes where ``lock_applies``: said here, not at the confirmation). Works pass
    their own ``is_open`` (they are registered through the year, until their phase ends).
    """
    running = await campaigns_for_unit(ctx.session, unit, ctx.today) if unit else []
    open_ = [c for c in running if is_open(c, ctx.today)]
    if not open_:
        if running:
            ctx.say(closed_text(running[-1]))
        else:
            ctx.say(_("There is no emulation campaign open for your unit at the moment."))
        return Finish()
    unit_id = unit.id if unit else None
    locks = {
        c.id: await locked_list(ctx, c, unit_id) if lock_applies(c, ctx.today) else None
        for c in open_
    }
    if all(locks.values()):
        first = open_[0]
        lock = locks[first.id]
        assert lock is not None
        await say_locked(ctx, first, lock)
        return Finish()
    open_ = [c for c in open_ if locks[c.id] is None]
    if len(open_) == 1:
        ctx.data["campaign_id"] = open_[0].id
        return Next(then)
    return Prompt(
        _("Several campaigns are open. Which one do you want to register for?"),
        tuple(Choice(f"c{c.id}", c.name) for c in open_),
    )


def answer_open_campaign(ctx: Ctx, answer: Answer, then: str) -> Go:
    ctx.data["campaign_id"] = int((answer.choice or "c0")[1:])
    return Next(then)


async def draft_campaign(ctx: Ctx) -> Campaign | None:
    """The campaign chosen earlier in this flow, if any."""
    campaign_id = ctx.data.get("campaign_id")
    return await campaign_by_id(ctx.session, campaign_id) if campaign_id else None


async def refuse_if_locked(ctx: Ctx, campaign_id: int, unit_id: int | None) -> bool:
    """True (after saying why) when the upper level has approved the list covering the unit.

    Every flow that adds or withdraws a registration calls this before writing: once approved,
    changes go through the officer reopening the list.
    """
    if unit_id is None:
        return False
    locked_by = await registrations_locked(ctx.session, campaign_id, unit_id)
    if locked_by is None:
        return False
    ctx.say(
        _(
            "The list of {unit} has already been approved by the upper level, so registrations "
            "cannot be changed now. Please ask your union officer to reopen it."
        ).format(unit=locked_by.name)
    )
    return True
