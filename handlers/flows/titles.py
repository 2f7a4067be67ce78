"""Registering a personal emulation title for a running campaign.

campaign (only if several are open) → title → eligibility notes (only when a rule has
something to say) → optional commitment → summary with edit → confirm → receipt number.
"""

from __future__ import annotations

from handlers.engine.flow import Again, Answer, Ctx, Edit, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, InputKind, Prompt
from handlers.flows.common import (
    answer_open_campaign,
    ask_open_campaign,
    deadline_passed_text,
    refuse_if_locked,
    registration_open,
    show_date,
    status_label,
    title_aliases,
    title_button,
    title_label,
    title_short,
)
from handlers.i18n import _
from handlers.receipts import receipt_file
from handlers.rules import Note, PersonFacts, effective_rules, individual_notes, required_titles
from handlers.text import Invalid, clean
from handlers.wording import skip
from storage.campaigns import title_names
from storage.models import (
    Campaign,
    Person,
    Registration,
    RegistrationStatus,
    Title,
    TitleTarget,
    Unit,
)
from storage.repo import (
    LiveRegistration,
    Standing,
    audit,
    campaign_by_id,
    person_standing,
    receipt_unless_registered,
    titles_by_code,
)
from storage.units import leads_unit_of

TITLES = "title"
MAX_COMMITMENT = 500


async def _campaign(ctx: Ctx) -> Campaign | None:
    campaign_id = ctx.data.get("campaign_id")
    return await campaign_by_id(ctx.session, campaign_id) if campaign_id else None


async def _registrant(ctx: Ctx) -> Person:
    """Whom the registration is for: the person chatting, or the roster member a leader
    registers on behalf of (``for_person_id``, set by the leader's "on_behalf" flow)."""
    for_id = ctx.data.get("for_person_id")
    if for_id is None:
        return ctx.require_person()
    person = await ctx.session.get(Person, int(for_id))
    if person is None:
        raise RuntimeError(f"person {for_id} registered on behalf of is gone")
    return person


async def _standing(ctx: Ctx, campaign_id: int, person_id: int) -> Standing:
    """The person's registrations, history and initiatives in the campaign: read once per
    answer (the duplicate check and the eligibility notes of one title choice share it)."""
    key = ("standing", campaign_id, person_id)
    standing = ctx.memo.get(key)
    if standing is None:
        standing = ctx.memo[key] = await person_standing(ctx.session, campaign_id, person_id)
    return standing


async def _individual_titles(ctx: Ctx, campaign: Campaign) -> list[Title]:
    titles = await titles_by_code(ctx.session, campaign.title_codes)
    return [
        titles[c]
        for c in campaign.title_codes
        if c in titles and titles[c].target in (TitleTarget.INDIVIDUAL, TitleTarget.BOTH)
    ]


# --- campaign ------------------------------------------------------------------------------


async def ask_campaign(ctx: Ctx) -> Prompt | Go:
    person = await _registrant(ctx)
    unit = await ctx.session.get(Unit, person.unit_id) if person.unit_id else None
    return await ask_open_campaign(ctx, unit, then="title")


async def answer_campaign(ctx: Ctx, answer: Answer) -> Go:
    return answer_open_campaign(ctx, answer, then="title")


# --- title ---------------------------------------------------------------------------------


async def ask_title(ctx: Ctx) -> Prompt | Go:
    campaign = await _campaign(ctx)
    if campaign is None:
        return Next("campaign")
    titles = await _individual_titles(ctx, campaign)
    if not titles:
        ctx.say(_("This campaign has no personal titles to register."))
        return Finish()
    names = await title_names(ctx.session, campaign)
    return Prompt(
        _("Which title or award do you register for in “{campaign}”? (deadline {deadline})").format(
            campaign=campaign.name, deadline=show_date(campaign.registration_deadline)
        ),
        tuple(
            Choice(t.code, title_button(t, names), (*title_aliases(t), title_label(t, names)))
            for t in titles
        ),
    )


async def answer_title(ctx: Ctx, answer: Answer) -> Go:
    person = await _registrant(ctx)
    code = answer.choice or ""
    standing = await _standing(ctx, ctx.data["campaign_id"], person.id)
    existing = standing.registered.get(code)
    ctx.data["title"] = code
    ctx.data.pop("also", None)
    if existing is not None:
        ctx.data["existing_id"] = existing.id
        ctx.memo[("registration", existing.id)] = existing
        return Next("duplicate", edit_chain=True)
    return Next("eligibility", edit_chain=True)


async def ask_duplicate(ctx: Ctx) -> Prompt | Go:
    existing_id = ctx.data.get("existing_id")
    # Just read by the title's answer, or read again (asked again later, after a restart).
    existing: LiveRegistration | Registration | None = ctx.memo.get(("registration", existing_id))
    if existing is None:
        existing = await ctx.session.get(Registration, existing_id)
    if existing is None:
        return Next("eligibility")
    title = (await titles_by_code(ctx.session, [existing.title_code]))[existing.title_code]
    campaign = await _campaign(ctx)
    names = await title_names(ctx.session, campaign) if campaign else {}
    return _duplicate_prompt(title_label(title, names), existing.receipt_no, existing.status)


def _duplicate_prompt(title: str, receipt: str, status: str) -> Prompt:
    return Prompt(
        _(
            "You have already registered “{title}” in this campaign (receipt {receipt}, "
            "{status}). What would you like to do?"
        ).format(title=title, receipt=receipt, status=status_label(status)),
        (
            Choice("mine", _("📋 See my registrations")),
            Choice("other", _("Choose another title")),
        ),
    )


async def answer_duplicate(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "mine":
        return Switch("mine")
    return Next("title", edit_chain=True)


# --- eligibility ---------------------------------------------------------------------------


async def _notes(ctx: Ctx, campaign: Campaign, title: Title) -> list[Note]:
    person = await _registrant(ctx)
    rules = effective_rules(title.code, title.rules, campaign.settings)
    standing = await _standing(ctx, campaign.id, person.id)
    registered = set(standing.registered) | set(ctx.data.get("also", []))
    history = rules.get("requires_history")
    approved = {}
    if history:
        approved[history["title"]] = standing.approved_years(history["title"])
    names = {
        code: title_label(t)
        for code, t in (
            await titles_by_code(
                ctx.session,
                required_titles(rules) + ([history["title"]] if history else []),
            )
        ).items()
    }
    # An initiative (as author or co-author) meets the CSTĐCS rule; their total benefit,
    # by who the author is, the LĐST one.
    facts = PersonFacts(
        registered=registered,
        approved_years=approved,
        has_initiative=standing.initiatives > 0,
        total_initiative_benefit=standing.initiative_benefit,
        author_category=standing.author_category,
    )
    return individual_notes(rules, facts, year=campaign.year, title_names=names)


async def ask_eligibility(ctx: Ctx) -> Prompt | Go:
    campaign = await _campaign(ctx)
    titles = await titles_by_code(ctx.session, [ctx.data.get("title", "")])
    if campaign is None or not titles:
        return Next("title")
    title = titles[ctx.data["title"]]
    notes = await _notes(ctx, campaign, title)
    if not notes:
        return Next("commitment")
    offers = [n.offer_title for n in notes if n.offer_title]
    offered = await titles_by_code(ctx.session, [o for o in offers if o])
    names = await title_names(ctx.session, campaign)
    choices = [
        Choice(f"add_{code}", _("➕ Also register {title}").format(title=title_short(t, names)))
        for code, t in offered.items()
        if code in campaign.title_codes
    ]
    choices.append(Choice("go", _("➡️ Register it anyway")))
    choices.append(Choice("other", _("Choose another title")))
    lines = [_("Please note, for “{title}”:").format(title=title_label(title, names))]
    lines += [f"• {n.text}" for n in notes]
    return Prompt("\n".join(lines), tuple(choices))


async def answer_eligibility(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice == "other":
        return Next("title")
    if choice.startswith("add_"):
        also = set(ctx.data.get("also", []))
        also.add(choice[4:])
        ctx.data["also"] = sorted(also)
    return Next("commitment")


# --- commitment ----------------------------------------------------------------------------


async def ask_commitment(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            # No "110% of": gettext would read "% o" as a %-format and flag the message.
            "Would you like to add a short commitment or target? For example: “Production "
            "plan at 110%, no safety incidents”. If not, {skip}."
        ).format(skip=skip(ctx)),
        kind=InputKind.TEXT,
        optional=True,
    )


async def answer_commitment(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped:
        ctx.data["commitment"] = None
        return Next("summary")
    try:
        ctx.data["commitment"] = clean(answer.text or "", multiline=True, max_length=MAX_COMMITMENT)
    except Invalid:
        return Again(
            _("That is a bit long: please keep it under {n} characters.").format(n=MAX_COMMITMENT)
        )
    return Next("summary")


# --- summary and confirm -------------------------------------------------------------------


async def ask_summary(ctx: Ctx) -> Prompt | Go:
    person = await _registrant(ctx)
    campaign = await _campaign(ctx)
    codes = [ctx.data.get("title", ""), *ctx.data.get("also", [])]
    titles = await titles_by_code(ctx.session, codes)
    if campaign is None or ctx.data.get("title") not in titles:
        return Next("title")
    unit = await ctx.session.get(Unit, person.unit_id) if person.unit_id else None
    names = await title_names(ctx.session, campaign)
    lines = [
        _("Please check your registration:"),
        _("• Campaign: {campaign}").format(campaign=campaign.name),
        _("• Name: {name}").format(name=person.full_name),
        _("• Unit: {unit}").format(unit=unit.name if unit else "—"),
        _("• Title: {title}").format(title=title_label(titles[ctx.data["title"]], names)),
    ]
    for code in ctx.data.get("also", []):
        if code in titles:
            lines.append(_("• Also: {title}").format(title=title_label(titles[code], names)))
    lines.append(_("• Commitment: {text}").format(text=ctx.data.get("commitment") or _("(none)")))
    lines.append(
        _("Registration deadline: {deadline}").format(
            deadline=show_date(campaign.registration_deadline)
        )
    )
    return Prompt(
        "\n".join(lines),
        (
            Choice("confirm", _("✅ Confirm")),
            Choice("edit_title", _("✏️ Change the title")),
            Choice("edit_commitment", _("✏️ Change the commitment")),
        ),
    )


async def answer_summary(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "edit_title":
        return Edit("title")
    if answer.choice == "edit_commitment":
        return Edit("commitment")
    return await _save(ctx)


async def _save(ctx: Ctx) -> Go:
    person = await _registrant(ctx)
    entered_by = ctx.require_person()
    on_behalf = entered_by.id != person.id
    campaign = await _campaign(ctx)
    if campaign is None:
        return Next("campaign")
    if not registration_open(campaign, ctx.today):
        ctx.say(deadline_passed_text(campaign))
        return Finish()
    # Roles can change while a leader is in the middle of the flow: checked at the write.
    if on_behalf and not await leads_unit_of(ctx.session, entered_by.id, person):
        ctx.say(_("You are no longer a leader of this member's unit."))
        return Finish()
    if await refuse_if_locked(ctx, campaign.id, person.unit_id):
        return Finish()
    codes = [*ctx.data.get("also", []), ctx.data["title"]]
    titles = await titles_by_code(ctx.session, codes)
    saved: list[Registration] = []
    for code in codes:
        if code not in titles:
            continue
        receipt = await receipt_unless_registered(ctx.session, campaign, person.id, code)
        if receipt is None:
            # Registered in the meantime (another device, another message): keep the first.
            continue
        registration = Registration(
            receipt_no=receipt,
            campaign_id=campaign.id,
            title_code=code,
            is_collective=False,
            person_id=person.id,
            unit_id=person.unit_id,
            status=RegistrationStatus.SUBMITTED,
            commitment=ctx.data.get("commitment") if code == ctx.data["title"] else None,
            source="leader" if on_behalf else "chat",
            entered_by_id=entered_by.id,
        )
        ctx.session.add(registration)
        await ctx.session.flush()
        audit(
            ctx.session,
            action="registration.create",
            entity="registration",
            entity_id=registration.id,
            actor_id=entered_by.id,
            via="leader" if on_behalf else "chat",
            receipt_no=registration.receipt_no,
            title=code,
            **({"on_behalf_of": person.id} if on_behalf else {}),
        )
        saved.append(registration)
    if not saved:
        return Again(_("This title is already registered. Please choose another one."))
    names = await title_names(ctx.session, campaign)
    lines = [
        _("Done! The registration of {name} has been recorded.").format(name=person.full_name)
        if on_behalf
        else _("Done! Your registration has been recorded.")
    ]
    for registration in saved:
        lines.append(
            _("• {title}: receipt number {receipt}").format(
                title=title_label(titles[registration.title_code], names),
                receipt=registration.receipt_no,
            )
        )
    if not on_behalf:
        lines.append(
            _("You can change your mind until {deadline} under “My registrations”.").format(
                deadline=show_date(campaign.registration_deadline)
            )
        )
    ctx.say("\n".join(lines))
    if not on_behalf:
        # Something to keep and show: the receipt as a picture card.
        unit = person.unit.name if person.unit else ""
        day = show_date(ctx.today)
        for registration in saved:
            card = await receipt_file(
                ctx,
                name=person.full_name,
                unit=unit,
                title=title_label(titles[registration.title_code]),
                receipt=registration.receipt_no,
                day=day,
            )
            if card is not None:
                ctx.say(_("Your receipt card: keep it to show if asked."), file=card)
    return Finish()


TITLES_FLOW = Flow(
    TITLES,
    (
        Step("campaign", ask_campaign, answer_campaign),
        Step("title", ask_title, answer_title),
        Step("duplicate", ask_duplicate, answer_duplicate),
        Step("eligibility", ask_eligibility, answer_eligibility),
        Step("commitment", ask_commitment, answer_commitment),
        Step("summary", ask_summary, answer_summary),
    ),
)
