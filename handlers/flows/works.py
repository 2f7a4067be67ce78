"""Registering a commemorative work (công trình, sản phẩm chào mừng): unit leaders only.

unit (only if the person leads several) → campaign (only if several are open) → name →
occasion (from the campaign file, or typed with its day) → value → planned start → planned
finish → plaque requested → summary with edit → confirm → receipt number.

Works are registered through the year, not only before the January deadline: a work can be
registered until the phase of its occasion ends (storage.campaigns.works_deadline), so the
occasions offered are those whose phase is still open.
"""

from __future__ import annotations

from datetime import date

from handlers.engine.flow import Again, Answer, Ctx, Edit, Finish, Flow, Go, Next, Step
from handlers.engine.prompt import Choice, InputKind, Prompt
from handlers.flows.common import (
    answer_open_campaign,
    ask_open_campaign,
    draft_campaign,
    refuse_if_locked,
    show_date,
)
from handlers.i18n import _, current_locale
from handlers.text import Invalid, clean, format_money
from handlers.wording import skip
from storage.campaigns import (
    Occasion,
    campaign_occasions,
    phase_of,
    works_close,
    works_deadline,
    works_open,
)
from storage.models import Campaign, RegistrationStatus, Unit, Work
from storage.repo import audit, campaign_end, next_receipt_no, units_led_by

WORK = "work"

MAX_NAME = 300  # works.name and works.occasion columns
MIN_NAME = 3


def occasions(campaign: Campaign, today: date) -> list[Occasion]:
    """The campaign file's occasions a work can still be registered for today."""
    return [o for o in campaign_occasions(campaign) if works_open(campaign, today, o.on)]


def works_closed_text(campaign: Campaign) -> str:
    return _(
        "Commemorative works for “{campaign}” could be registered until {day}. If you think "
        "this is a mistake, please contact your union officer."
    ).format(campaign=campaign.name, day=show_date(works_close(campaign)))


def _occasion_on(ctx: Ctx) -> date | None:
    day = ctx.data.get("occasion_on")
    return date.fromisoformat(day) if day else None


def occasion_label(name: str, day: date | None) -> str:
    return f"{name} ({show_date(day)})" if day else name


def campaign_start(campaign: Campaign) -> date:
    """The first day of the campaign's first phase (1 January when it has no phases)."""
    return min((p.starts_on for p in campaign.phases), default=date(campaign.year, 1, 1))


async def _led_unit(ctx: Ctx) -> Unit | None:
    """The unit chosen in this flow, only while the person still leads it."""
    person = ctx.require_person()
    unit_id = ctx.data.get("unit_id")
    return next((u for u in await units_led_by(ctx.session, person.id) if u.id == unit_id), None)


def _dates(ctx: Ctx) -> tuple[date | None, date | None]:
    start, finish = ctx.data.get("start"), ctx.data.get("finish")
    return (
        date.fromisoformat(start) if start else None,
        date.fromisoformat(finish) if finish else None,
    )


# --- unit and campaign -----------------------------------------------------------------------


async def ask_unit(ctx: Ctx) -> Prompt | Go:
    person = ctx.require_person()
    led = await units_led_by(ctx.session, person.id)
    if not led:
        ctx.say(
            _(
                "Commemorative works are registered by unit leaders (union chair or team "
                "leader). If you lead a unit, please ask your union officer for a leader "
                "invitation."
            )
        )
        return Finish()
    if len(led) == 1:
        ctx.data["unit_id"] = led[0].id
        return Next("campaign")
    return Prompt(_("Which unit is the work for?"), tuple(Choice(f"u{u.id}", u.name) for u in led))


async def answer_unit(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    ctx.data["unit_id"] = int(choice[1:]) if choice[1:].isdigit() else None
    if await _led_unit(ctx) is None:
        return Again(_("Please choose one of the units you lead."))
    return Next("campaign")


async def ask_campaign(ctx: Ctx) -> Prompt | Go:
    unit = await _led_unit(ctx)
    if unit is None:
        return Next("unit")
    return await ask_open_campaign(
        ctx,
        unit,
        then="name",
        is_open=lambda campaign, today: today <= works_close(campaign),
        closed_text=works_closed_text,
    )


async def answer_campaign(ctx: Ctx, answer: Answer) -> Go:
    return answer_open_campaign(ctx, answer, then="name")


# --- name and occasion -----------------------------------------------------------------------


async def ask_name(ctx: Ctx) -> Prompt | Go:
    campaign = await draft_campaign(ctx)
    unit = await _led_unit(ctx)
    if campaign is None or unit is None:
        return Next("unit")
    return Prompt(
        _(
            "🏗️ Registering a commemorative work of {unit} for “{campaign}”.\n"
            "What is the name of the work or product?"
        ).format(unit=unit.name, campaign=campaign.name),
        kind=InputKind.TEXT,
    )


async def answer_name(ctx: Ctx, answer: Answer) -> Go:
    try:
        name = clean(answer.text or "", max_length=MAX_NAME)
    except Invalid:
        return Again(
            _("That is a bit long: please keep it under {n} characters.").format(n=MAX_NAME)
        )
    if len(name) < MIN_NAME:
        return Again(_("Please type the full name of the work."))
    ctx.data["name"] = name
    return Next("occasion")


async def ask_occasion(ctx: Ctx) -> Prompt | Go:
    campaign = await draft_campaign(ctx)
    listed = occasions(campaign, ctx.today) if campaign else []
    if not listed:
        # Nothing to choose from: ask for it as text (and keep an edit going to it).
        return Next("occasion_other", edit_chain=True)
    return Prompt(
        _("Which occasion does the work greet?"),
        (
            # The name only: the day is in the summary, and a button must stay short.
            *(Choice(f"o{i}", o.name[:MAX_NAME]) for i, o in enumerate(listed)),
            Choice("other", _("Other occasion")),
        ),
    )


async def answer_occasion(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    campaign = await draft_campaign(ctx)
    listed = occasions(campaign, ctx.today) if campaign else []
    if choice[1:].isdigit() and int(choice[1:]) < len(listed):
        occasion = listed[int(choice[1:])]
        ctx.data["occasion"] = occasion.name[:MAX_NAME]
        ctx.data["occasion_on"] = occasion.on.isoformat() if occasion.on else None
        return Next("value")
    return Next("occasion_other", edit_chain=True)


async def ask_occasion_other(ctx: Ctx) -> Prompt:
    return Prompt(
        _("Please type the occasion, for example “Tháng Công nhân năm 2027”."),
        kind=InputKind.TEXT,
    )


async def answer_occasion_other(ctx: Ctx, answer: Answer) -> Go:
    try:
        occasion = clean(answer.text or "", max_length=MAX_NAME)
    except Invalid:
        return Again(
            _("That is a bit long: please keep it under {n} characters.").format(n=MAX_NAME)
        )
    if len(occasion) < MIN_NAME:
        return Again(_("Please type the occasion in a few words."))
    ctx.data["occasion"] = occasion
    ctx.data["occasion_on"] = None
    return Next("occasion_date", edit_chain=True)


async def ask_occasion_date(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "On what day is the occasion? Type it as day/month/year, e.g. 28/07/2027, or "
            "{skip} if it has no single day."
        ).format(skip=skip(ctx)),
        kind=InputKind.DATE,
        optional=True,
    )


async def answer_occasion_date(ctx: Ctx, answer: Answer) -> Go:
    campaign = await draft_campaign(ctx)
    if campaign is None:
        return Next("campaign")
    if answer.skipped or answer.value is None:
        ctx.data["occasion_on"] = None
        return Next("value")
    day: date = answer.value
    if not works_open(campaign, ctx.today, day):
        phase = phase_of(campaign, day)
        last = works_deadline(campaign, day, ctx.today)
        return Again(
            _(
                "Works for occasions of {phase} could be registered until {last}. Please type "
                "the day of an occasion still ahead, or {skip}."
            ).format(
                skip=skip(ctx),
                phase=phase.name if phase else campaign.name,
                last=show_date(last) if last else show_date(campaign.registration_deadline),
            )
        )
    ctx.data["occasion_on"] = day.isoformat()
    return Next("value")


# --- value and dates -------------------------------------------------------------------------


async def ask_value(ctx: Ctx) -> Prompt:
    return Prompt(
        _("What is the value of the work, in đồng? For example 500 triệu or 1,2 tỷ."),
        kind=InputKind.MONEY,
    )


async def answer_value(ctx: Ctx, answer: Answer) -> Go:
    if not answer.value or int(answer.value) <= 0:
        return Again(_("Please type an amount above zero, for example 500 triệu."))
    ctx.data["value"] = int(answer.value)
    return Next("start")


async def ask_start(ctx: Ctx) -> Prompt:
    return Prompt(
        _("When does the work start (planned)? Type the date as day/month/year, e.g. 01/03/2027."),
        kind=InputKind.DATE,
    )


async def answer_start(ctx: Ctx, answer: Answer) -> Go:
    campaign = await draft_campaign(ctx)
    if campaign is None:
        return Next("campaign")
    start: date = answer.value
    end = campaign_end(campaign)
    if start > end:
        return Again(
            _(
                "The campaign ends on {end}, so the work must start by then. Please type an "
                "earlier start date."
            ).format(end=show_date(end))
        )
    ctx.data["start"] = start.isoformat()
    # Changing the start (also from the summary) always re-checks the finish date.
    return Next("finish", edit_chain=True)


async def ask_finish(ctx: Ctx) -> Prompt | Go:
    start, _finish = _dates(ctx)
    if start is None:
        return Next("start", edit_chain=True)
    return Prompt(
        _("When will it be finished (planned)? It starts on {start}.").format(
            start=show_date(start)
        ),
        kind=InputKind.DATE,
    )


async def answer_finish(ctx: Ctx, answer: Answer) -> Go:
    campaign = await draft_campaign(ctx)
    start, _finish = _dates(ctx)
    if campaign is None or start is None:
        return Next("start", edit_chain=True)
    finish: date = answer.value
    if finish < start:
        return Again(
            _(
                "The finish date cannot be before the start ({start}). Please type a date on "
                "or after it."
            ).format(start=show_date(start))
        )
    first_day = campaign_start(campaign)
    if finish < first_day:
        return Again(
            _(
                "A work counts for this campaign only if it is finished during or after it, "
                "that is on or after {first_day}. Please type a later finish date."
            ).format(first_day=show_date(first_day))
        )
    ctx.data["finish"] = finish.isoformat()
    return Next("plaque")


# --- plaque ----------------------------------------------------------------------------------


async def ask_plaque(ctx: Ctx) -> Prompt:
    return Prompt(
        _("Does the unit request a commemorative plaque for the work (đề nghị gắn biển)?"),
        (Choice("yes", _("Yes")), Choice("no", _("No"))),
        one_per_row=False,
    )


async def answer_plaque(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["plaque"] = answer.choice == "yes"
    return Next("summary")


# --- summary and confirm ---------------------------------------------------------------------


async def ask_summary(ctx: Ctx) -> Prompt | Go:
    campaign = await draft_campaign(ctx)
    unit = await _led_unit(ctx)
    if campaign is None or unit is None:
        return Next("unit")
    start, finish = _dates(ctx)
    if not ctx.data.get("name") or start is None or finish is None:
        return Next("name")
    lines = [
        _("Please check the work:"),
        _("• Campaign: {campaign}").format(campaign=campaign.name),
        _("• Unit: {unit}").format(unit=unit.name),
        _("• Work: {name}").format(name=ctx.data["name"]),
        _("• Occasion: {occasion}").format(
            occasion=occasion_label(ctx.data.get("occasion", ""), _occasion_on(ctx))
        ),
        _("• Value: {amount}").format(
            amount=format_money(int(ctx.data.get("value", 0)), current_locale())
        ),
        _("• Planned: {start} – {finish}").format(start=show_date(start), finish=show_date(finish)),
        _("• Plaque requested: {answer}").format(
            answer=_("Yes") if ctx.data.get("plaque") else _("No")
        ),
    ]
    return Prompt(
        "\n".join(lines),
        (
            Choice("confirm", _("✅ Confirm")),
            Choice("edit_name", _("✏️ Change the name")),
            Choice("edit_occasion", _("✏️ Change the occasion")),
            Choice("edit_value", _("✏️ Change the value")),
            Choice("edit_start", _("✏️ Change the dates")),
            Choice("edit_plaque", _("✏️ Change the plaque request")),
        ),
    )


async def answer_summary(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice.startswith("edit_"):
        return Edit(choice.removeprefix("edit_"))
    return await _save(ctx)


async def _save(ctx: Ctx) -> Go:
    person = ctx.require_person()
    campaign = await draft_campaign(ctx)
    # The role is checked again: it may have been taken away while the draft was open.
    unit = await _led_unit(ctx)
    if unit is None:
        ctx.say(_("You are no longer a leader of this unit, so the work was not saved."))
        return Finish()
    if campaign is None:
        return Next("campaign")
    if not works_open(campaign, ctx.today, _occasion_on(ctx)):
        ctx.say(works_closed_text(campaign))
        return Finish()
    # The approved list is the one sent for the registration period; a work registered
    # later in the year (for an occasion of a later phase) is new, not a change to it.
    in_registration = ctx.today <= campaign.registration_deadline
    if in_registration and await refuse_if_locked(ctx, campaign.id, unit.id):
        return Finish()
    start, finish = _dates(ctx)
    assert start is not None and finish is not None  # the summary checked them
    work = Work(
        receipt_no=await next_receipt_no(ctx.session, campaign),
        campaign_id=campaign.id,
        unit_id=unit.id,
        name=ctx.data["name"],
        occasion=ctx.data["occasion"],
        occasion_on=_occasion_on(ctx),
        value=int(ctx.data["value"]),
        starts_on=start,
        ends_on=finish,
        plaque_requested=bool(ctx.data.get("plaque")),
        status=RegistrationStatus.SUBMITTED,
        source="chat",
        entered_by_id=person.id,
    )
    ctx.session.add(work)
    await ctx.session.flush()
    audit(
        ctx.session,
        action="work.create",
        entity="work",
        entity_id=work.id,
        actor_id=person.id,
        via="chat",
        receipt_no=work.receipt_no,
        unit_id=unit.id,
    )
    ctx.say(
        "\n".join(
            [
                _("Done! The work has been registered for {unit}.").format(unit=unit.name),
                _("Receipt number: {receipt}").format(receipt=work.receipt_no),
                _("You can see it under “My registrations”."),
            ]
        )
    )
    return Finish()


WORK_FLOW = Flow(
    WORK,
    (
        Step("unit", ask_unit, answer_unit),
        Step("campaign", ask_campaign, answer_campaign),
        Step("name", ask_name, answer_name),
        Step("occasion", ask_occasion, answer_occasion),
        Step("occasion_other", ask_occasion_other, answer_occasion_other),
        Step("occasion_date", ask_occasion_date, answer_occasion_date),
        Step("value", ask_value, answer_value),
        Step("start", ask_start, answer_start),
        Step("finish", ask_finish, answer_finish),
        Step("plaque", ask_plaque, answer_plaque),
        Step("summary", ask_summary, answer_summary),
    ),
)
