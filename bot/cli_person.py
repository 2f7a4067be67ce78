"""`thidua person ...`: personal data requests (Nghị định 13/2023/NĐ-CP).

- ``requests``: the erasure requests people made with /dulieucuatoi that are not done yet.
- ``erase --phone PHONE | --id ID [--yes]``: anonymise the person (storage.personal): name,
  phone, chat accounts and conversations go; registrations stay in the statistics. Without
  ``--yes`` it only shows what would be erased.
- ``code --phone PHONE | --id ID | --unit CODE``: personal codes (single use, 30 days) that
  prove a roster member when they start the bot and type their phone; printable.
- ``unlink --channel CH --chat EXTERNAL_ID | --phone PHONE --channel CH``: detach a chat
  account from its person (a lost or stolen phone, a shared computer).
- ``claims`` / ``confirm --claim ID [--refuse]``: claims waiting for a leader, settled by the
  operator when a unit has no leader in the bot.
- ``merge --keep ID --from ID``: one human recorded as two persons: registrations, chats and
  everything else move to ``--keep``, the audit log keeps its entries.
"""

from __future__ import annotations

import argparse

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import CliError, _with_session
from bot.config import Settings
from handlers.engine.runner import queue_outgoing
from handlers.flows.claims import claimant_message
from handlers.flows.link import tell_signed_out_message
from storage.claims import (
    MergeError,
    confirm_claim,
    merge_people,
    pending_claims,
    refuse_claim,
    roster_without_chat,
    unlink_identity,
)
from storage.links import PERSONAL_LIFETIME, issue_link_code
from storage.models import AuditEntry, ChannelIdentity, IdentityClaim, Person, Registration, Unit
from storage.normalize import Invalid, parse_phone
from storage.personal import ERASE_REQUEST, ERASED, ERASED_NAME, erase_person, mask_id
from storage.types import utcnow


async def _find(session: AsyncSession, args: argparse.Namespace) -> Person:
    if args.id is not None:
        person = await session.get(Person, args.id)
        if person is None:
            raise CliError(f"no person with id {args.id}")
        return person
    try:
        phone = parse_phone(args.phone)
    except Invalid:
        raise CliError(f"not a Vietnamese phone number: {args.phone}") from None
    people = list(await session.scalars(select(Person).where(Person.phone == phone)))
    if not people:
        raise CliError(f"nobody has the phone {phone}")
    if len(people) > 1:
        ids = ", ".join(str(p.id) for p in people)
        raise CliError(f"several people have the phone {phone} (ids {ids}): use --id")
    return people[0]


async def cmd_erase(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> str:
        person = await _find(session, args)
        if person.full_name == ERASED_NAME and person.phone is None:
            return f"Person #{person.id} is erased already."
        chats = await session.scalar(
            select(func.count()).where(ChannelIdentity.person_id == person.id)
        )
        registrations = await session.scalar(
            select(func.count()).where(Registration.person_id == person.id)
        )
        if not args.yes:
            return (
                f"Would erase person #{person.id} ({person.full_name}, {person.phone or '-'}): "
                f"{chats} chat account(s) removed, {registrations} registration(s) kept in the "
                "statistics without personal data.\nNothing was changed; run again with --yes."
            )
        report = await erase_person(session, person, utcnow(), via="cli")
        return (
            f"Erased person #{person.id}: {report.identities} chat account(s) and "
            f"{report.conversations} conversation(s) removed, {report.registrations_kept} "
            "registration(s) kept in the statistics without personal data."
        )

    print(await _with_session(settings, work))
    return 0


async def cmd_requests(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[str]:
        asked = await session.execute(
            select(AuditEntry.entity_id, func.max(AuditEntry.at))
            .where(AuditEntry.action == ERASE_REQUEST)
            .group_by(AuditEntry.entity_id)
        )
        done = set(
            await session.scalars(select(AuditEntry.entity_id).where(AuditEntry.action == ERASED))
        )
        lines = []
        for person_id, at in asked:
            if person_id is None or person_id in done:
                continue
            person = await session.get(Person, person_id)
            if person is None:
                continue
            lines.append(
                f"#{person.id}\t{person.full_name}\t{person.phone or '-'}\t"
                f"asked {at.strftime('%Y-%m-%d %H:%M')} UTC"
            )
        return lines

    lines = await _with_session(settings, work)
    print("\n".join(lines) if lines else "No erasure request is waiting.")
    return 0


async def cmd_code(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[str]:
        if args.unit is not None:
            unit = await session.scalar(select(Unit).where(Unit.code == args.unit))
            if unit is None:
                raise CliError(f"unknown unit code {args.unit!r}")
            people = await roster_without_chat(session, unit.id)
        else:
            people = [await _find(session, args)]
        lines = []
        for person in people:
            code, expires = await issue_link_code(
                session, person.id, "cli", utcnow(), PERSONAL_LIFETIME
            )
            lines.append(
                f"{person.full_name}\t{person.phone or '-'}\t{code[:4]}-{code[4:]}\t"
                f"until {expires:%Y-%m-%d}"
            )
        session.add(
            AuditEntry(
                via="cli",
                action="personal_codes.issue",
                entity="person",
                entity_id=people[0].id if len(people) == 1 else None,
                details={"count": len(people), "unit": args.unit},
            )
        )
        return lines

    lines = await _with_session(settings, work)
    print("\n".join(lines) if lines else "Everyone of this unit already uses the bot.")
    if lines:
        print(
            "Each code works once, for 30 days: the person starts the bot, types their phone "
            "number, then the code. A new code replaces the older one."
        )
    return 0


async def cmd_unlink(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> str:
        query = select(ChannelIdentity).where(ChannelIdentity.person_id.is_not(None))
        if args.chat is not None:
            query = query.where(
                ChannelIdentity.channel == args.channel, ChannelIdentity.external_id == args.chat
            )
        else:
            person = await _find(session, args)
            query = query.where(ChannelIdentity.person_id == person.id)
            if args.channel:
                query = query.where(ChannelIdentity.channel == args.channel)
        identities = list(await session.scalars(query))
        if not identities:
            raise CliError("no linked chat account matches")
        if len(identities) > 1 and not args.all:
            found = ", ".join(f"{i.channel} {mask_id(i.external_id)}" for i in identities)
            raise CliError(f"several chat accounts match ({found}): give --channel or --all")
        for identity in identities:
            person_id = identity.person_id
            await unlink_identity(session, identity)
            session.add(
                AuditEntry(
                    via="cli",
                    action="person.unlink",
                    entity="person",
                    entity_id=person_id,
                    details={"channel": identity.channel, "identity_id": identity.id},
                )
            )
        return f"Unlinked {len(identities)} chat account(s); they start over as newcomers."

    print(await _with_session(settings, work))
    return 0


async def cmd_merge(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> str:
        keep = await session.get(Person, args.keep)
        gone = await session.get(Person, args.merge_from)
        if keep is None or gone is None:
            raise CliError(f"no person with id {args.keep if keep is None else args.merge_from}")
        label = f"#{gone.id} {gone.full_name} into #{keep.id} {keep.full_name}"
        if not args.yes:
            return f"Would merge {label}.\nNothing was changed; run again with --yes."
        try:
            result = await merge_people(session, keep, gone, via="cli")
        except MergeError as exc:
            raise CliError(str(exc)) from None
        moved = ", ".join(f"{k}: {n}" for k, n in sorted(result.moved.items())) or "nothing"
        return f"Merged {label} (moved {moved})."

    print(await _with_session(settings, work))
    return 0


async def cmd_claims(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[str]:
        lines = []
        for claim in await pending_claims(session):
            identity = await session.get(ChannelIdentity, claim.identity_id)
            unit = await session.get(Unit, claim.unit_id)
            roster = await session.get(Person, claim.person_id) if claim.person_id else None
            lines.append(
                f"#{claim.id}\t{claim.created_at:%Y-%m-%d %H:%M} UTC\t"
                f"{unit.code if unit else '-'}\t{claim.full_name}\t{claim.phone or '-'}\t"
                f"{identity.channel if identity else '-'} "
                f"{mask_id(identity.external_id) if identity else ''}\t"
                f"roster: {roster.full_name if roster else '-'}"
            )
        return lines

    lines = await _with_session(settings, work)
    print("\n".join(lines) if lines else "No claim is waiting.")
    return 0


async def cmd_confirm(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> str:
        claim = await session.get(IdentityClaim, args.claim)
        if claim is None:
            raise CliError(f"no claim #{args.claim}")
        now = utcnow()
        decide = refuse_claim if args.refuse else confirm_claim
        settled = await decide(session, claim, None, now)
        if settled is None:
            raise CliError(f"claim #{claim.id} is settled already ({claim.status})")
        session.add(
            AuditEntry(
                via="cli",
                action="claim.refuse" if args.refuse else "claim.confirm",
                entity="claim",
                entity_id=claim.id,
                details={"person_id": settled.person.id if settled.person else None},
            )
        )
        told = [claimant_message(settled.identity, not args.refuse, settings.locale)]
        if settled.person is not None and settled.signed_out is not None:
            told += tell_signed_out_message(settled.signed_out, settled.person, settings.locale)
        queue_outgoing(session, told)
        if args.refuse:
            return f"Claim #{claim.id} refused; the chat was told."
        person = settled.person
        assert person is not None
        return f"Claim #{claim.id} confirmed: the chat is now #{person.id} {person.full_name}."

    print(await _with_session(settings, work))
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``person`` and its actions to the ``thidua`` parser."""
    group = commands.add_parser("person", help="personal data requests (Nghị định 13/2023)")
    actions = group.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("requests", help="erasure requests not carried out yet").set_defaults(
        handler=cmd_requests
    )
    p = actions.add_parser("erase", help="anonymise a person; registrations stay counted")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="the person's phone number")
    who.add_argument("--id", type=int, help="the person's id (see `person requests`)")
    p.add_argument("--yes", action="store_true", help="really erase (otherwise: a dry run)")
    p.set_defaults(handler=cmd_erase)
    p = actions.add_parser("code", help="personal codes that prove a roster member (printable)")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="the person's phone number")
    who.add_argument("--id", type=int, help="the person's id")
    who.add_argument("--unit", help="everyone of this unit who does not use the bot yet")
    p.set_defaults(handler=cmd_code)
    actions.add_parser("claims", help="claims waiting for a leader's confirmation").set_defaults(
        handler=cmd_claims
    )
    p = actions.add_parser("confirm", help="confirm (or --refuse) a waiting claim")
    p.add_argument("--claim", type=int, required=True, help="the claim's id (see `claims`)")
    p.add_argument("--refuse", action="store_true", help="refuse it instead")
    p.set_defaults(handler=cmd_confirm)
    p = actions.add_parser("unlink", help="detach a chat account from its person")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--phone", help="the person's phone number")
    who.add_argument("--id", type=int, help="the person's id")
    who.add_argument("--chat", help="the chat's id on its platform (needs --channel)")
    p.add_argument("--channel", help="telegram, zalo, zalo_oa or web")
    p.add_argument("--all", action="store_true", help="every chat account of the person")
    p.set_defaults(handler=cmd_unlink)
    p = actions.add_parser("merge", help="two persons of the same human: keep one")
    p.add_argument("--keep", type=int, required=True, help="the id that stays")
    p.add_argument("--from", dest="merge_from", type=int, required=True, help="the id merged in")
    p.add_argument("--yes", action="store_true", help="really merge (otherwise: a dry run)")
    p.set_defaults(handler=cmd_merge)
