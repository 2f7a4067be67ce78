"""Onboarding: who are you, which grassroots union, then the main menu.

The phone comes first: a member already on the imported roster is recognised by it and
reaches the menu in two taps (share contact, "yes, that's me"). Everyone else picks their
unit (from the invite, or by typing part of its name) and gives their full name.
"""

from __future__ import annotations

from handlers.engine.flow import Again, Answer, Ctx, Finish, Flow, Go, Next, Step
from handlers.engine.prompt import Choice, InputKind, Prompt
from handlers.i18n import _
from handlers.text import Invalid, fold, given_name, parse_name, parse_phone
from storage.models import Person, Role, Unit
from storage.repo import (
    audit,
    grant_role,
    has_any_identity,
    identity_on_channel,
    person_by_phone,
    search_units,
    unit_path_names,
    units_by_ids,
    usable_invite,
    use_invite,
)

ONBOARDING = "onboarding"


def role_name(role: str) -> str:
    return {
        Role.MEMBER: _("union member"),
        Role.LEADER: _("unit leader"),
        Role.OFFICER: _("upper-level union officer"),
    }.get(Role(role), role)


async def _unit(ctx: Ctx, unit_id: int | None) -> Unit | None:
    if unit_id is None:
        return None
    return (await units_by_ids(ctx.session, [unit_id])).get(unit_id)


# --- phone -----------------------------------------------------------------------------------


async def ask_phone(ctx: Ctx) -> Prompt:
    if "invite" in ctx.data and "invite_checked" not in ctx.data:
        ctx.data["invite_checked"] = True
        invite = await usable_invite(ctx.session, ctx.data["invite"], ctx.now)
        if invite is None:
            ctx.say(
                _(
                    "This invitation code is not valid any more (expired, used up or "
                    "withdrawn). You can still sign up: I will ask for your unit."
                )
            )
        else:
            ctx.data["invite_id"] = invite.id
            ctx.data["invite_unit"] = invite.unit_id
            ctx.data["invite_role"] = invite.role
    return Prompt(
        _(
            "Hello! I am the emulation registration assistant of your trade union.\n"
            "To start, please share your phone number (with the button below, if you see one) "
            "or type it, for example 0912 345 678."
        ),
        kind=InputKind.PHONE,
        request_contact=True,
        allow_back=False,
        allow_cancel=False,
    )


async def answer_phone(ctx: Ctx, answer: Answer) -> Go:
    if answer.contact_phone is not None:
        if not answer.contact_is_own:
            return Again(_("Please share your own phone number, not someone else's contact."))
        try:
            phone = parse_phone(answer.contact_phone)
        except Invalid:
            return Again(_("For now I can only accept Vietnamese phone numbers."))
    else:
        phone = str(answer.value)
    # Telegram's shared contact is the sender's own, verified number; a typed one is a claim.
    verified = answer.contact_phone is not None
    ctx.data["phone"] = phone
    existing = await person_by_phone(ctx.session, phone)
    if existing is None:
        return Next("unit")
    linked = await identity_on_channel(ctx.session, existing.id, ctx.identity.channel)
    if linked is not None and linked.id != ctx.identity.id:
        return Again(
            _(
                "This phone number is already used by another account. If it is yours, "
                "please ask your union officer for help."
            )
        )
    ctx.data["match_id"] = existing.id
    if verified:
        return Next("confirm_match")
    if await has_any_identity(ctx.session, existing.id):
        # Someone typing a member's number must not take over that member's records.
        return Again(
            _(
                "This number already uses the bot in another app. To use the same account "
                "here, type /lienket in that app to get a code, then type /lienket and the "
                "code here."
            )
        )
    # A typed number is only a claim: the roster name, typed back, confirms it without
    # showing the member's details to whoever typed the number.
    return Next("verify_name")


# --- a typed number the roster knows: the name confirms it -------------------------------


async def _match(ctx: Ctx) -> Person | None:
    # Gone from the draft after "No, that's not me" (and Back): no match any more.
    match_id = ctx.data.get("match_id")
    return await ctx.session.get(Person, match_id) if match_id else None


MAX_NAME_TRIES = 3


async def ask_verify_name(ctx: Ctx) -> Prompt:
    return Prompt(
        _("This number is on your union's list. To confirm it is you, please type your full name."),
        (Choice("new", _("I am new here")),),
        kind=InputKind.TEXT,
    )


async def answer_verify_name(ctx: Ctx, answer: Answer) -> Go:
    person = await _match(ctx)
    if person is None or answer.choice == "new":
        ctx.data.pop("match_id", None)
        return Next("unit")
    try:
        typed = parse_name(answer.text or "")
    except Invalid:
        return Again(_("Please type your full name in letters, for example Nguyễn Văn An."))
    if fold(typed) == fold(person.full_name):
        return await _welcome(ctx, person, new=False)
    tries = int(ctx.data.get("name_tries", 0)) + 1
    ctx.data["name_tries"] = tries
    if tries >= MAX_NAME_TRIES:
        ctx.data.pop("match_id", None)
        ctx.say(_("The name does not match the list. I will register you as a new person."))
        return Next("unit")
    return Again(
        _(
            "That name does not match the list for this number. Please check it, or tap "
            "“I am new here”."
        )
    )


# --- a person the roster already knows ---------------------------------------------------


async def ask_confirm_match(ctx: Ctx) -> Prompt | Go:
    person = await _match(ctx)
    if person is None:
        return Next("unit")
    unit = await _unit(ctx, person.unit_id)
    where = ", ".join(p for p in (person.position, unit.name if unit else None) if p)
    text = _("Hello {name}! According to your union's list you are: {where}. Is that you?")
    return Prompt(
        text.format(name=person.full_name, where=where or _("(no unit yet)")),
        (Choice("yes", _("✅ Yes, that's me")), Choice("no", _("No, that's not me"))),
    )


async def answer_confirm_match(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "no":
        ctx.data.pop("match_id", None)
        ctx.say(_("All right, I will register you as a new person."))
        return Next("unit")
    person = await _match(ctx)
    if person is None:
        return Next("unit")
    return await _welcome(ctx, person, new=False)


# --- the unit ------------------------------------------------------------------------------


async def ask_unit(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx, ctx.data.get("invite_unit"))
    if unit is None:
        return Next("unit_search")
    return Prompt(
        _("Your invitation is for “{unit}”. Is this your union?").format(unit=unit.name),
        (Choice("yes", _("✅ Yes")), Choice("search", _("🔎 No, find another unit"), ("no",))),
    )


async def answer_unit(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "yes":
        ctx.data["unit_id"] = ctx.data["invite_unit"]
        return Next("name")
    return Next("unit_search")


async def ask_unit_search(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "Which grassroots union (công đoàn cơ sở) do you belong to? Type part of its name, "
            "for example “May Bắc Kạn”."
        ),
        kind=InputKind.TEXT,
    )


async def _search(ctx: Ctx, text: str) -> Go:
    query = fold(text)
    if len(query) < 2:
        return Again(_("Please type at least two letters of your unit's name."))
    units = await search_units(ctx.session, query)
    if not units:
        return Again(
            _("I found no unit named “{query}”. Try a shorter part of the name.").format(
                query=text[:60]
            )
        )
    ctx.data["candidates"] = [u.id for u in units]
    return Next("unit_pick")


async def answer_unit_search(ctx: Ctx, answer: Answer) -> Go:
    return await _search(ctx, answer.text or "")


async def ask_unit_pick(ctx: Ctx) -> Prompt | Go:
    units = await units_by_ids(ctx.session, ctx.data.get("candidates", []))
    ordered = [units[i] for i in ctx.data.get("candidates", []) if i in units]
    if not ordered:
        return Next("unit_search")
    parents = await units_by_ids(ctx.session, [u.parent_id for u in ordered if u.parent_id])
    choices = []
    for unit in ordered:
        parent = parents.get(unit.parent_id) if unit.parent_id else None
        label = f"{unit.name} — {parent.name}" if parent else unit.name
        choices.append(Choice(f"u{unit.id}", label[:120]))
    return Prompt(
        _("Which one is yours? (Or type another part of the name to search again.)"),
        tuple(choices),
        kind=InputKind.TEXT,
    )


async def answer_unit_pick(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice and answer.choice.startswith("u"):
        unit_id = int(answer.choice[1:])
        if unit_id in ctx.data.get("candidates", []):
            ctx.data["unit_id"] = unit_id
            return Next("name")
    return await _search(ctx, answer.text or "")


# --- the name ------------------------------------------------------------------------------


async def ask_name(ctx: Ctx) -> Prompt:
    choices: tuple[Choice, ...] = ()
    shown = ctx.identity.display_name
    try:
        if shown and len(parse_name(shown).split()) >= 2:
            choices = (Choice("shown", parse_name(shown)),)
    except Invalid:
        pass
    return Prompt(
        _("What is your full name? (for example Nguyễn Văn An)"),
        choices,
        kind=InputKind.TEXT,
    )


async def answer_name(ctx: Ctx, answer: Answer) -> Go:
    raw = ctx.identity.display_name if answer.choice == "shown" else answer.text
    try:
        name = parse_name(raw or "")
    except Invalid as exc:
        if exc.reason == "too_long":
            return Again(_("That name is too long. Please type your full name only."))
        return Again(_("Please type your full name in letters, for example Nguyễn Văn An."))
    unit = await _unit(ctx, ctx.data.get("unit_id"))
    if unit is None:
        return Next("unit_search")
    person = Person(full_name=name, phone=ctx.data.get("phone"), unit_id=unit.id, source="chat")
    ctx.session.add(person)
    await ctx.session.flush()
    await grant_role(ctx.session, person.id, unit.id, Role.MEMBER)
    return await _welcome(ctx, person, new=True)


async def _welcome(ctx: Ctx, person: Person, *, new: bool) -> Go:
    """Link this chat to the person, apply the invitation, and greet them."""
    ctx.identity.person_id = person.id
    if ctx.data.get("phone") and not person.phone:
        person.phone = ctx.data["phone"]
    granted: tuple[str, Unit] | None = None
    invite_id = ctx.data.get("invite_id")
    if invite_id is not None:
        invite = await usable_invite(ctx.session, ctx.data["invite"], ctx.now)
        if invite is not None and await use_invite(ctx.session, invite):
            await grant_role(ctx.session, person.id, invite.unit_id, invite.role)
            granted = (invite.role, invite.unit)
            audit(
                ctx.session,
                action="invite.use",
                entity="invite",
                entity_id=invite.id,
                actor_id=person.id,
                via="chat",
                role=invite.role,
            )
    audit(
        ctx.session,
        action="person.onboard" if new else "person.link",
        entity="person",
        entity_id=person.id,
        actor_id=person.id,
        via="chat",
        channel=ctx.identity.channel,
    )
    ctx.person = person
    ctx.identity.person = person
    unit = await _unit(ctx, person.unit_id)
    path = " › ".join(await unit_path_names(ctx.session, unit)) if unit else ""
    ctx.say(
        _("Thank you, {name}! You are registered with {unit}.").format(
            name=given_name(person.full_name), unit=path or "—"
        )
    )
    if granted and granted[0] != Role.MEMBER:
        ctx.say(
            _("You also have the role of {role} for {unit}.").format(
                role=role_name(granted[0]), unit=granted[1].name
            )
        )
    return Finish()


async def redeem_invite(ctx: Ctx, code: str) -> None:
    """An invitation opened by someone already known: add the role it carries."""
    person = ctx.require_person()
    invite = await usable_invite(ctx.session, code, ctx.now)
    if invite is None or not await use_invite(ctx.session, invite):
        ctx.say(_("This invitation code is not valid any more (expired, used up or withdrawn)."))
        return
    if not await grant_role(ctx.session, person.id, invite.unit_id, invite.role):
        ctx.say(
            _("You already have the role of {role} for {unit}.").format(
                role=role_name(invite.role), unit=invite.unit.name
            )
        )
        return
    audit(
        ctx.session,
        action="invite.use",
        entity="invite",
        entity_id=invite.id,
        actor_id=person.id,
        via="chat",
        role=invite.role,
    )
    ctx.say(
        _("You now have the role of {role} for {unit}.").format(
            role=role_name(invite.role), unit=invite.unit.name
        )
    )


ONBOARDING_FLOW = Flow(
    ONBOARDING,
    (
        Step("phone", ask_phone, answer_phone),
        Step("confirm_match", ask_confirm_match, answer_confirm_match),
        Step("verify_name", ask_verify_name, answer_verify_name),
        Step("unit", ask_unit, answer_unit),
        Step("unit_search", ask_unit_search, answer_unit_search),
        Step("unit_pick", ask_unit_pick, answer_unit_pick),
        Step("name", ask_name, answer_name),
    ),
    needs_person=False,
)
