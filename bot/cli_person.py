"""`thidua person ...`: personal data requests (Nghị định 13/2023/NĐ-CP).

- ``requests``: the erasure requests people made with /dulieucuatoi that are not done yet.
- ``erase --phone PHONE | --id ID [--yes]``: anonymise the person (storage.personal): name,
  phone, chat accounts and conversations go; registrations stay in the statistics. Without
  ``--yes`` it only shows what would be erased.
"""

from __future__ import annotations

import argparse

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import CliError, _with_session
from bot.config import Settings
from storage.models import AuditEntry, ChannelIdentity, Person, Registration
from storage.normalize import Invalid, parse_phone
from storage.personal import ERASE_REQUEST, ERASED, ERASED_NAME, erase_person
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
