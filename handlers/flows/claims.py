"""The leader's side of proof: one tap to confirm a claim, and personal codes to hand out.

A claim ("I am this member", "I am new in this unit") arrives as a notification with two
buttons ("!claim_ok:ID", "!claim_no:ID"). The id from a button is never trusted: the person
pressing must lead the claim's unit (or an ancestor), or be an officer above it, and the claim
must still be waiting (another leader may have decided, or the claimant proved it by code).
"""

from __future__ import annotations

from handlers.engine.flow import Ctx, Go
from handlers.engine.prompt import Address, Outgoing, Reply
from handlers.flows.link import tell_signed_out
from handlers.i18n import _, use_locale
from handlers.text import parse_id
from storage.claims import claim_by_id, confirm_claim, refuse_claim, roster_without_chat
from storage.links import PERSONAL_LIFETIME, issue_link_code
from storage.models import (
    ChannelIdentity,
    ClaimStatus,
    IdentityClaim,
    Person,
    Role,
    Unit,
)
from storage.repo import ancestor_ids, audit
from storage.units import has_role_on, is_officer_above

# Codes listed in one message: a unit's roster fits; the CLI prints any number.
MAX_CODES_SHOWN = 60


async def _decidable(ctx: Ctx, arg: str) -> tuple[IdentityClaim, Unit] | None:
    person = ctx.require_person()
    claim_id = parse_id(arg)
    claim = await claim_by_id(ctx.session, claim_id) if claim_id else None
    unit = await ctx.session.get(Unit, claim.unit_id) if claim else None
    if claim is None or unit is None or not await _may_decide(ctx, person, unit):
        # The same words whether the claim exists or not: a button id reveals nothing.
        ctx.say(_("Sorry, only the leader of this union can confirm its members."))
        return None
    if claim.status != ClaimStatus.PENDING:
        ctx.say(_("This request has already been settled."))
        return None
    return claim, unit


async def _may_decide(ctx: Ctx, person: Person, unit: Unit) -> bool:
    if await has_role_on(ctx.session, person.id, ancestor_ids(unit), Role.LEADER):
        return True
    return await is_officer_above(ctx.session, person.id, unit)


def claimant_message(identity: ChannelIdentity, confirmed: bool, locale: str) -> Outgoing:
    """What the claimant is told of the decision (also by `thidua person confirm`)."""
    with use_locale(locale):
        if confirmed:
            text = _(
                "✅ The leader of your union has confirmed you. Welcome! Type /menu to see "
                "what you can do."
            )
        else:
            text = _(
                "The leader of your union did not confirm your request. If this is a mistake, "
                "please talk to them directly, then type /start to try again."
            )
    return Outgoing(Address(identity.channel, identity.external_id), Reply(text))


async def action_confirm(ctx: Ctx, arg: str) -> Go | None:
    """ "✅ Xác nhận": the chat becomes the member it claimed to be (or a new member)."""
    found = await _decidable(ctx, arg)
    if found is None:
        return None
    claim, unit = found
    leader = ctx.require_person()
    settled = await confirm_claim(ctx.session, claim, leader.id, ctx.now)
    if settled is None or settled.person is None:
        ctx.say(_("This request has already been settled."))
        return None
    identity, person = settled.identity, settled.person
    tell_signed_out(ctx, settled.signed_out, person)
    audit(
        ctx.session,
        action="claim.confirm",
        entity="claim",
        entity_id=claim.id,
        actor_id=leader.id,
        via="chat",
        person_id=person.id,
    )
    ctx.others.append(claimant_message(identity, True, ctx.config.default_locale))
    ctx.say(
        _("Confirmed: {name} is now a member of {unit} in the bot.").format(
            name=person.full_name, unit=unit.name
        )
    )
    return None


async def action_refuse(ctx: Ctx, arg: str) -> Go | None:
    """ "✖️ Không phải": the claim is dropped; a self-declared newcomer leaves the unit."""
    found = await _decidable(ctx, arg)
    if found is None:
        return None
    claim, _unit = found
    leader = ctx.require_person()
    settled = await refuse_claim(ctx.session, claim, leader.id, ctx.now)
    if settled is None:
        ctx.say(_("This request has already been settled."))
        return None
    identity = settled.identity
    audit(
        ctx.session,
        action="claim.refuse",
        entity="claim",
        entity_id=claim.id,
        actor_id=leader.id,
        via="chat",
    )
    ctx.others.append(claimant_message(identity, False, ctx.config.default_locale))
    ctx.say(_("Done: the request was not confirmed, and the person has been told."))
    return None


CLAIM_ACTIONS = {"claim_ok": action_confirm, "claim_no": action_refuse}


# --- personal codes ------------------------------------------------------------------------


async def say_personal_codes(ctx: Ctx, unit: Unit) -> None:
    """A printable list: each member who has no chat yet with a fresh personal code."""
    leader = ctx.require_person()
    people = await roster_without_chat(ctx.session, unit.id, MAX_CODES_SHOWN)
    if not people:
        ctx.say(_("Everyone on the list of {unit} already uses the bot.").format(unit=unit.name))
        return
    lines = [
        _(
            "🔑 Personal codes for {unit} (each works once, for 30 days; give each person only "
            "their own code):"
        ).format(unit=unit.name)
    ]
    for number, person in enumerate(people, start=1):
        code, _expires = await issue_link_code(
            ctx.session, person.id, "leader", ctx.now, PERSONAL_LIFETIME
        )
        lines.append(f"{number}. {person.full_name}: {code[:4]}-{code[4:]}")
    lines.append(
        _(
            "Each person starts the bot, types their phone number, then types their code. "
            "A new list replaces the codes of this one."
        )
    )
    audit(
        ctx.session,
        action="personal_codes.issue",
        entity="unit",
        entity_id=unit.id,
        actor_id=leader.id,
        via="chat",
        count=len(people),
    )
    ctx.say("\n".join(lines))
