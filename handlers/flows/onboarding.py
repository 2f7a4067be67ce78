"""Onboarding: who are you, which grassroots union, then the main menu.

The phone comes first. A roster claim needs proof: Telegram's own shared contact (the
sender's verified number) reaches the menu in two taps (share contact, "yes, that's me").
A typed number is only a claim: it is proven by a personal code from the leader (or a
/lienket code from another app), or it waits as "chờ xác nhận" until a leader of the unit
confirms it with one tap (handlers.flows.claims). Before proof the replies are the same
whether the number is on the roster or not, and wrong codes are counted in the database.
Anyone new picks their unit (from the invite, or by typing part of its name) and gives their
full name.
"""

from __future__ import annotations

from datetime import timedelta

from handlers.engine.flow import Again, Answer, Ctx, Finish, Flow, Go, Next, Step
from handlers.engine.prompt import Choice, InputKind, Prompt, Reply
from handlers.flows.link import channel_label, tell_code_issuer, tell_signed_out
from handlers.i18n import _
from handlers.notify import notify
from handlers.text import (
    Invalid,
    fold,
    given_name,
    parse_name,
    parse_phone,
    without_diacritics,
)
from handlers.wording import press
from storage import refcache
from storage.claims import (
    LOOK_UP,
    MAX_FAILURES,
    attach_identity,
    chat_key,
    clear_failures,
    failure_count,
    open_claim,
    pending_claim,
    person_and_other_chat,
    phone_key,
    recent_claims,
    record_failure,
    withdraw_claims,
)
from storage.links import normalise_link_code, usable_link_code, use_link_code
from storage.models import ChannelIdentity, IdentityClaim, Person, Role, Unit
from storage.repo import (
    audit,
    grant_role,
    person_by_phone,
    search_units,
    unit_path_names,
    units_by_ids,
    usable_invite,
    use_invite,
)
from storage.units import leaders_or_officers_above, people_with_role

ONBOARDING = "onboarding"
# Leaders hear of at most this many claims a day from one chat or for one phone.
CLAIM_NOTICES = 3
CLAIM_NOTICE_WINDOW = timedelta(hours=24)


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


async def ask_phone(ctx: Ctx) -> Prompt | Go:
    if not ctx.first_contact and await pending_claim(ctx.session, ctx.identity.id) is not None:
        return Next("waiting")
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
    hello = (
        _(
            "Hello! I am the emulation registration assistant of your trade union.\n"
            "To start, please tap “{button}” below or type your phone number, for example "
            "0912 345 678."
        ).format(button=_("📱 Share my phone number").lstrip("📱 "))
        if ctx.shows_contact_button
        else _(
            "Hello! I am the emulation registration assistant of your trade union.\n"
            "To start, please type your phone number, for example 0912 345 678."
        )
    )
    return Prompt(
        hello,
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
    ctx.data["phone"] = phone
    # Telegram's shared contact is the sender's own, verified number: proof. So is an
    # invitation to lead or to be an officer, which the operator hands to one person.
    verified = answer.contact_phone is not None
    ctx.data["verified"] = verified
    if not (verified or _invited_to_lead(ctx)):
        # A typed number is only a claim. Whatever the roster says about it, the next
        # question is the same, so the reply tells a stranger nothing.
        return Next("code")
    existing = await person_by_phone(ctx.session, phone)
    if existing is None:
        return Next("unit")
    ctx.data["match_id"] = existing.id
    return Next("confirm_match")


def _invited_to_lead(ctx: Ctx) -> bool:
    return ctx.data.get("invite_role") in (Role.LEADER, Role.OFFICER)


async def _match(ctx: Ctx) -> Person | None:
    # Gone from the draft after "No, that's not me" (and Back): no match any more.
    match_id = ctx.data.get("match_id")
    return await ctx.session.get(Person, match_id) if match_id else None


# --- a typed number: a personal code, or the leader confirms -------------------------------


async def ask_code(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "If your union leader gave you a personal code, or you got a /lienket code in "
            "another app, type it here.\n"
            "If you have no code, {nocode}: the leader of your union will confirm you."
        ).format(nocode=_no_code(ctx, 1)),
        (Choice("nocode", _("I have no code")),),
        kind=InputKind.TEXT,
    )


async def answer_code(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "nocode":
        return Next("unit")
    return await try_code(ctx, answer.text or "")


def _proof_keys(ctx: Ctx) -> list[str]:
    keys = [chat_key(ctx.identity.channel, ctx.identity.external_id)]
    if ctx.data.get("phone"):
        keys.append(phone_key(ctx.data["phone"]))
    return keys


async def try_code(ctx: Ctx, text: str) -> Go:
    """A personal or link code typed during onboarding: its person, or one try fewer."""
    keys = _proof_keys(ctx)
    if await failure_count(ctx.session, keys, ctx.now) >= MAX_FAILURES:
        return Again(_locked_text(ctx))
    code = normalise_link_code(text)
    link = await usable_link_code(ctx.session, code, ctx.now) if code else None
    person = await ctx.session.get(Person, link.person_id) if link else None
    if link is None or person is None:
        failures = await record_failure(ctx.session, keys, ctx.now)
        if failures >= MAX_FAILURES:
            if failures == MAX_FAILURES:
                await _tell_leader_of_lockout(ctx)
            return Again(_locked_text(ctx))
        return Again(
            _(
                "This code does not work: it may be mistyped, used already or expired. "
                "Please check it and type it again, or {nocode}."
            ).format(nocode=_no_code(ctx))
        )
    if not await use_link_code(ctx.session, link, ctx.identity.id, ctx.now):
        return Again(_("This code has just been used. Please ask your union leader for a new one."))
    await clear_failures(ctx.session, keys)
    # The code named the person; the typed phone adds nothing to a known person.
    ctx.data.pop("phone", None)
    await tell_code_issuer(ctx, person, link.issued_via, ctx.identity.channel)
    return await _welcome(ctx, person, new=False, method="code")


def _no_code(ctx: Ctx, number: int | None = None) -> str:
    """ "bấm “Tôi không có mã”"; on a text-only channel "gõ số 1" at the code question (its
    only choice), else the words (a refused code may come from another step)."""
    return press(ctx, _("I have no code"), number)


def _locked_text(ctx: Ctx) -> str:
    return _(
        "Too many wrong codes. For your safety, codes are not accepted for this number and "
        "this chat until tomorrow. The leader of your union can still confirm you ({nocode} "
        "if you have not asked them yet)."
    ).format(nocode=_no_code(ctx))


async def _tell_leader_of_lockout(ctx: Ctx) -> None:
    """The leader of the member whose number was tried hears of it, once per lockout."""
    phone = ctx.data.get("phone")
    person = await person_by_phone(ctx.session, phone) if phone else None
    if person is None or person.unit_id is None:
        return
    leaders = await people_with_role(ctx.session, person.unit_id, Role.LEADER)
    name = person.full_name

    def make(_leader: Person) -> Reply:
        return Reply(
            _(
                "⚠️ Someone typed wrong codes {n} times for the phone number of {name}, so "
                "codes for this number are locked until tomorrow. If {name} did not try to "
                "sign in, please tell them and your union officer."
            ).format(n=MAX_FAILURES, name=name)
        )

    await notify(ctx, leaders, make)


# --- a claim waiting for the leader --------------------------------------------------------


async def ask_waiting(ctx: Ctx) -> Prompt | Go:
    if ctx.person is not None:
        return Finish()
    claim = await pending_claim(ctx.session, ctx.identity.id)
    if claim is None:
        return Next("phone")
    # After /huy the draft is empty: wrong codes still count against the claimed phone.
    ctx.data.setdefault("phone", claim.phone)
    # The unit the claimant chose, not the roster's: the same words whoever the number is.
    unit_name = ctx.data.get("claimed_unit_name")
    if not unit_name:
        unit = await _unit(ctx, claim.unit_id)
        unit_name = unit.name if unit else "—"
    return Prompt(
        _(
            "Your request is waiting for the leader of {unit} to confirm it (chờ xác nhận). "
            "I will tell you here as soon as they do.\n"
            "If the leader gave you a personal code, you can type it here."
        ).format(unit=unit_name),
        (Choice("restart", _("↩️ Start again")),),
        kind=InputKind.TEXT,
        allow_back=False,
        allow_cancel=False,
    )


async def answer_waiting(ctx: Ctx, answer: Answer) -> Go:
    if ctx.person is not None:
        return Finish()  # confirmed meanwhile: straight to the menu
    if await pending_claim(ctx.session, ctx.identity.id) is None:
        # Settled meanwhile (confirmed, refused): whatever was typed, start from the phone.
        ctx.data.clear()
        return Next("phone")
    if answer.choice == "restart":
        await withdraw_claims(ctx.session, ctx.identity.id, ctx.now)
        ctx.data.clear()
        return Next("phone")
    return await try_code(ctx, answer.text or "")


async def _open_claim(
    ctx: Ctx, unit: Unit, name: str, person: Person | None = None, *, withdrawn: bool = False
) -> None:
    """Ask the leader to confirm this chat; the claimant's reply reads the same for all.

    ``person`` is a newcomer just created with a verified phone (who waits only for the
    membership); otherwise the claim is for the roster person with the typed phone, if any,
    or for a newcomer to be created when the leader confirms. ``withdrawn``: the chat's
    pending claims were withdrawn in this unit of work already (by linking it).
    """
    phone = ctx.data.get("phone")
    rostered = None
    if person is None and phone:
        rostered = await person_by_phone(ctx.session, phone)
    # The roster's own unit decides about its member; a newcomer's chosen unit about them.
    deciding = unit
    if rostered is not None and rostered.unit_id is not None:
        deciding = await _unit(ctx, rostered.unit_id) or unit
    target = person or rostered
    # A leader is asked about a chat or a phone a few times a day at most: starting again
    # and again (or from many browsers) keeps the claim but does not flood their chat.
    asked_before = await recent_claims(
        ctx.session, ctx.identity.id, phone, ctx.now - CLAIM_NOTICE_WINDOW
    )
    claim = await open_claim(
        ctx.session,
        ctx.identity,
        person_id=target.id if target else None,
        unit_id=deciding.id,
        full_name=name,
        phone=phone,
        now=ctx.now,
        withdrawn=withdrawn,
    )
    if asked_before < CLAIM_NOTICES:
        await ask_leader_to_confirm(ctx, claim, deciding, rostered)
    audit(
        ctx.session,
        action="claim.open",
        entity="claim",
        entity_id=claim.id,
        actor_id=person.id if person else None,
        via="chat",
        channel=ctx.identity.channel,
    )


async def ask_leader_to_confirm(
    ctx: Ctx, claim: IdentityClaim, unit: Unit, rostered: Person | None
) -> None:
    """One tap for the unit's leader (or the officers above, when it has none)."""
    leaders = await leaders_or_officers_above(ctx.session, unit)
    shown = ctx.identity.display_name or "—"
    channel = channel_label(ctx.identity.channel)
    name, phone = claim.full_name, claim.phone or "—"
    roster_name = rostered.full_name if rostered else ""
    roster_where = f" ({rostered.position})" if rostered and rostered.position else ""

    def make(_leader: Person) -> Reply:
        lines = [
            _(
                "🙋 A request to join {unit}: “{name}”, phone {phone}, from {shown} on "
                "{channel}. Is this a member of your union?"
            ).format(unit=unit.name, name=name, phone=phone, shown=shown, channel=channel)
        ]
        if rostered is not None:
            lines.append(
                _("On your list this phone number belongs to {roster}{where}.").format(
                    roster=roster_name, where=roster_where
                )
            )
        else:
            lines.append(_("This phone number is not on your list."))
        return Reply(
            "\n".join(lines),
            (
                Choice(f"!claim_ok:{claim.id}", _("✅ Confirm")),
                Choice(f"!claim_no:{claim.id}", _("✖️ Not our member")),
            ),
        )

    await notify(ctx, leaders, make)


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
        # The number stays the roster person's: the leader sorts out who is who.
        ctx.data.pop("match_id", None)
        ctx.say(_("All right. Please tell me your union and your name; your leader will check it."))
        return Next("unit")
    match_id = ctx.data.get("match_id")
    # The person, their other chat on this app and whether they hold a role, in one read.
    found = await person_and_other_chat(ctx.session, match_id, ctx.identity) if match_id else None
    if found is None:
        return Next("unit")
    refcache.note_roles(ctx.session, found.person.id, found.has_roles)
    return await _welcome(ctx, found.person, new=False, other_chat=found.other_chat)


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
    if len(name.split()) >= 2 and without_diacritics(name):
        # "nguyen van an" would be printed so on the unit's list and the certificates:
        # asked once, kept as typed if the person wishes (some phones have no Vietnamese
        # keyboard).
        ctx.data["plain_name"] = name
        return Next("name_diacritics")
    return await _register_name(ctx, name)


async def ask_name_diacritics(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "Could you write your name “{name}” with its diacritics? For example “Nguyễn Văn "
            "An”. Your name is printed on your unit's list as you write it here."
        ).format(name=ctx.data.get("plain_name", "")),
        (
            Choice("again", _("✍️ Write it again")),
            Choice("typed", _("➕ Keep it as typed")),
        ),
        kind=InputKind.TEXT,
    )


async def answer_name_diacritics(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "again":
        ctx.data.pop("plain_name", None)
        return Next("name")
    if answer.choice == "typed":
        kept = ctx.data.pop("plain_name", "")
        return await _register_name(ctx, kept) if kept else Next("name")
    # The name typed again straight away: taken as written, diacritics or not (asked once).
    try:
        name = parse_name(answer.text or "")
    except Invalid:
        return Again(_("Please type your full name in letters, for example Nguyễn Văn An."))
    ctx.data.pop("plain_name", None)
    return await _register_name(ctx, name)


async def _register_name(ctx: Ctx, name: str) -> Go:
    unit = await _unit(ctx, ctx.data.get("unit_id"))
    if unit is None:
        return Next("unit_search")
    phone = ctx.data.get("phone")
    rostered = await person_by_phone(ctx.session, phone) if phone else None
    if rostered is None and (ctx.data.get("verified") or _invited_to_lead(ctx)):
        person = Person(full_name=name, phone=phone, unit_id=unit.id, source="chat")
        ctx.session.add(person)
        await ctx.session.flush()
        # Created just now: no chat of theirs to unlink, no role to look up for the menu.
        refcache.note_roles(ctx.session, person.id, has_roles=False)
        if _invited_to_lead(ctx):
            await grant_role(ctx.session, person.id, unit.id, Role.MEMBER)
            return await _welcome(ctx, person, new=True, other_chat=None)
        # A verified phone proves who, not where: membership waits for the leader (a member
        # invitation, shared with a whole unit, does not stand in for them).
        welcome = await _welcome(ctx, person, new=True, member_invite=False, other_chat=None)
        await _open_claim(ctx, unit, name, person=person, withdrawn=True)
        ctx.say(
            _(
                "I have asked the leader of {unit} to confirm that you are a member. You "
                "can already register for yourself."
            ).format(unit=unit.name)
        )
        return welcome
    # A typed number (or a roster number its holder says is not theirs): never a second
    # person with a rostered number; the leader decides, and the reply reads the same.
    await _open_claim(ctx, unit, name)
    ctx.data["claimed_unit_name"] = unit.name
    ctx.say(
        _(
            "Thank you! I have asked the leader of {unit} to confirm you. I will tell you here "
            "as soon as they do; until then no registration can be made."
        ).format(unit=unit.name)
    )
    return Next("waiting")


async def _welcome(
    ctx: Ctx,
    person: Person,
    *,
    new: bool,
    method: str = "phone",
    member_invite: bool = True,
    other_chat: ChannelIdentity | object | None = LOOK_UP,
) -> Go:
    """Link this chat to the person (after proof), apply the invitation, and greet them.
    ``other_chat``: their chat on this app, when the caller read it (attach_identity)."""
    old = await attach_identity(ctx.session, ctx.identity, person, ctx.now, other_chat=other_chat)
    tell_signed_out(ctx, old, person)
    if ctx.data.get("phone") and not person.phone:
        person.phone = ctx.data["phone"]
    granted: tuple[str, Unit] | None = None
    invite_id = ctx.data.get("invite_id")
    if invite_id is not None and (member_invite or _invited_to_lead(ctx)):
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
        method=method,
        **({"unlinked_identity_id": old.id} if old is not None else {}),
    )
    ctx.person = person
    unit = await _unit(ctx, person.unit_id)
    path = " › ".join(await unit_path_names(ctx.session, unit)) if unit else ""
    ctx.say(
        _("Thank you, {name}! You are registered with {unit}.").format(
            name=given_name(person.full_name), unit=path or "—"
        )
    )
    if old is not None:
        ctx.say(
            _("Your account is now in this chat; the older chat on {app} is signed out.").format(
                app=channel_label(ctx.identity.channel)
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


async def ask_old_name_check(ctx: Ctx) -> Go:
    return Next("code")


async def answer_old_name_check(ctx: Ctx, answer: Answer) -> Go:
    return Next("code")


ONBOARDING_FLOW = Flow(
    ONBOARDING,
    (
        Step("phone", ask_phone, answer_phone),
        Step("confirm_match", ask_confirm_match, answer_confirm_match),
        Step("code", ask_code, answer_code),
        Step("waiting", ask_waiting, answer_waiting),
        Step("unit", ask_unit, answer_unit),
        Step("unit_search", ask_unit_search, answer_unit_search),
        Step("unit_pick", ask_unit_pick, answer_unit_pick),
        Step("name", ask_name, answer_name),
        Step("name_diacritics", ask_name_diacritics, answer_name_diacritics),
        # Conversations saved at the typed-name check of earlier versions (it let anyone who
        # knew a member's name become them) go on at the code question.
        Step("verify_name", ask_old_name_check, answer_old_name_check),
    ),
    needs_person=False,
)
