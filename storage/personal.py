"""Personal data (Nghị định 13/2023/NĐ-CP): what is stored about a person, a request to erase
it, and the erasure an officer carries out.

Erasure anonymises rather than deletes: the person's row stays (so registrations, initiatives
and works still count in the unit's statistics and the year-end tallies), but everything that
identifies them goes: name, phone, position, chat identities with their conversations, web
chat sessions and messages, link codes, messages waiting for them, the commitment texts
they wrote, their name as a co-author, and personal fields in the audit entries about them.

No commits here: the caller owns the transaction.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Text, cast, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.models import (
    AuditEntry,
    BroadcastDelivery,
    ChannelIdentity,
    Conversation,
    DeliveryState,
    IdentityClaim,
    Initiative,
    InitiativeAuthor,
    LinkCode,
    OutboxMessage,
    Person,
    ProofFailure,
    Registration,
    Role,
    Unit,
    UnitRole,
    WebMessage,
    WebSession,
    Work,
)
from storage.repo import ancestor_ids, audit, unit_path_names
from storage.units import people_with_role

# What an erased person is called from then on (data, not a message: it is stored).
ERASED_NAME = "Đã xóa"
ERASE_REQUEST = "person.erase_request"
ERASED = "person.erase"
# Keys of audit details that name or reach a person.
PERSONAL_KEYS = frozenset({"full_name", "name", "phone", "position", "display_name"})
# The web chat's channel name (storage does not import the channel itself).
WEB_CHANNEL = "web"


def mask_id(external_id: str) -> str:
    """A chat id shown to its owner: enough to recognise it, not enough to use it."""
    tail = external_id[-3:] if len(external_id) > 6 else ""
    return "•••" + tail


@dataclass
class IdentityInfo:
    channel: str
    masked_id: str
    display_name: str | None
    since: datetime


@dataclass
class PersonalData:
    """Everything the bot keeps about one person, summarised for them to read."""

    person: Person
    unit_path: list[str]
    roles: list[tuple[str, str]]  # (role, unit name)
    identities: list[IdentityInfo]
    registrations: list[Registration]
    initiatives: list[Initiative]
    works: list[Work]
    # How many audit entries by or about the person, by action, and the newest one's time.
    audit_counts: dict[str, int] = field(default_factory=dict)
    audit_last: datetime | None = None
    erase_requested_at: datetime | None = None


def _about(person_id: int) -> Any:
    return or_(
        AuditEntry.actor_id == person_id,
        (AuditEntry.entity == "person") & (AuditEntry.entity_id == person_id),
    )


async def personal_data(session: AsyncSession, person: Person) -> PersonalData:
    unit = await session.get(Unit, person.unit_id) if person.unit_id else None
    role_rows = await session.execute(
        select(UnitRole.role, Unit.name)
        .join(Unit, Unit.id == UnitRole.unit_id)
        .where(UnitRole.person_id == person.id)
        .order_by(UnitRole.role, Unit.name)
    )
    identities = await session.scalars(
        select(ChannelIdentity)
        .where(ChannelIdentity.person_id == person.id)
        .order_by(ChannelIdentity.created_at, ChannelIdentity.id)
    )
    registrations = await session.scalars(
        select(Registration)
        .where(Registration.person_id == person.id)
        .options(selectinload(Registration.campaign))
        .order_by(Registration.created_at, Registration.id)
    )
    coauthored = select(InitiativeAuthor.initiative_id).where(
        InitiativeAuthor.person_id == person.id
    )
    initiatives = await session.scalars(
        select(Initiative)
        .where(or_(Initiative.person_id == person.id, Initiative.id.in_(coauthored)))
        .order_by(Initiative.created_at, Initiative.id)
    )
    works = await session.scalars(
        select(Work).where(Work.entered_by_id == person.id).order_by(Work.created_at, Work.id)
    )
    entries = list(
        await session.execute(
            select(AuditEntry.action, AuditEntry.at)
            .where(_about(person.id))
            .order_by(AuditEntry.at)
        )
    )
    counts = Counter(action for action, _at in entries)
    requests = [at for action, at in entries if action == ERASE_REQUEST]
    return PersonalData(
        person=person,
        unit_path=await unit_path_names(session, unit) if unit else [],
        roles=[(str(role), str(name)) for role, name in role_rows],
        identities=[
            IdentityInfo(i.channel, mask_id(i.external_id), i.display_name, i.created_at)
            for i in identities
        ],
        registrations=list(registrations),
        initiatives=list(initiatives),
        works=list(works),
        audit_counts=dict(sorted(counts.items())),
        audit_last=entries[-1][1] if entries else None,
        erase_requested_at=requests[-1] if requests else None,
    )


async def erase_officers(session: AsyncSession, person: Person) -> list[int]:
    """Who handles the person's erasure request: the officers of their unit, or else of the
    nearest ancestor that has any."""
    unit = await session.get(Unit, person.unit_id) if person.unit_id else None
    if unit is None:
        return []
    for unit_id in reversed(ancestor_ids(unit)):
        officers = [
            p for p in await people_with_role(session, unit_id, Role.OFFICER) if p != person.id
        ]
        if officers:
            return officers
    return []


def request_erasure(session: AsyncSession, person: Person, via: str, channel: str) -> None:
    """Record the person's request; an officer carries it out (``thidua person erase``)."""
    audit(
        session,
        action=ERASE_REQUEST,
        entity="person",
        entity_id=person.id,
        actor_id=person.id,
        via=via,
        channel=channel,
    )


@dataclass
class ErasureReport:
    person_id: int
    identities: int = 0
    conversations: int = 0
    web_messages: int = 0
    pending_messages: int = 0
    registrations_kept: int = 0
    audit_entries_scrubbed: int = 0
    roles_removed: int = 0
    # Messages to others (outbox, web chats) that named the person and were cleaned.
    others_messages: int = 0


def _scrub(details: dict[str, Any]) -> dict[str, Any]:
    kept = {k: v for k, v in details.items() if k not in PERSONAL_KEYS}
    changes = kept.get("changes")
    if isinstance(changes, dict):
        kept["changes"] = {k: v for k, v in changes.items() if k not in PERSONAL_KEYS}
    return kept


def _json_fragment(text: str) -> str:
    # How the text appears inside a stored JSON column (non-ASCII escaped by json.dumps).
    return json.dumps(text)[1:-1]


def _without(payload: dict[str, Any], words: list[str]) -> dict[str, Any]:
    """The payload with the words replaced by "Đã xóa" in its text and its button labels."""

    def clean(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        for word in words:
            text = text.replace(word, ERASED_NAME)
        return text

    scrubbed = dict(payload)
    scrubbed["text"] = clean(payload.get("text"))
    choices = payload.get("choices")
    if isinstance(choices, list):
        scrubbed["choices"] = [
            [clean(c) for c in choice] if isinstance(choice, list) else choice for choice in choices
        ]
        scrubbed["choices"] = [
            {**choice, "label": clean(choice.get("label"))} if isinstance(choice, dict) else choice
            for choice in scrubbed["choices"]
        ]
    return scrubbed


async def _erase_from_others_messages(session: AsyncSession, person: Person) -> int:
    """The name (and phone) in messages to other people: the outbox, sent or not, and the web
    chats of others (a co-author told of an initiative, a leader asked to confirm...).

    Looked up in SQL by the JSON text, so only the rows that mention the person are read.
    """
    words = [w for w in (person.full_name, person.phone) if w and len(w) >= 4]
    if not words:
        return 0
    changed = 0
    rows: list[OutboxMessage | WebMessage] = []
    for column in (OutboxMessage.payload, WebMessage.payload):
        text = cast(column, Text)
        mentions = or_(*(text.contains(_json_fragment(w), autoescape=True) for w in words))
        rows += await session.scalars(select(column.class_).where(mentions))
    for row in rows:
        scrubbed = _without(row.payload or {}, words)
        if scrubbed != row.payload:
            row.payload = scrubbed
            changed += 1
    return changed


async def erase_person(
    session: AsyncSession, person: Person, now: datetime, *, via: str = "cli"
) -> ErasureReport:
    """Anonymise the person (see the module's docstring); counts in statistics stay."""
    report = ErasureReport(person.id)
    identities = list(
        await session.scalars(select(ChannelIdentity).where(ChannelIdentity.person_id == person.id))
    )
    identity_ids = [i.id for i in identities]
    addresses = [(i.channel, i.external_id) for i in identities]
    if identity_ids:
        result = await session.execute(
            delete(Conversation).where(Conversation.identity_id.in_(identity_ids))
        )
        report.conversations = int(result.rowcount or 0)  # type: ignore[attr-defined]
        # Link codes redeemed by one of the identities point at it: keep the code, not the link.
        await session.execute(
            update(LinkCode)
            .where(LinkCode.used_by_identity_id.in_(identity_ids))
            .values(used_by_identity_id=None)
        )
    await session.execute(delete(LinkCode).where(LinkCode.person_id == person.id))
    web_ids = [external for channel, external in addresses if channel == WEB_CHANNEL]
    if web_ids:
        result = await session.execute(
            delete(WebMessage).where(WebMessage.external_id.in_(web_ids))
        )
        report.web_messages = int(result.rowcount or 0)  # type: ignore[attr-defined]
        await session.execute(delete(WebSession).where(WebSession.external_id.in_(web_ids)))
    for channel, external_id in addresses:
        result = await session.execute(
            delete(OutboxMessage).where(
                OutboxMessage.channel == channel,
                OutboxMessage.external_id == external_id,
                OutboxMessage.sent_at.is_(None),
            )
        )
        report.pending_messages += int(result.rowcount or 0)  # type: ignore[attr-defined]
    # Delivery logs of announcements keep their counts; the chat id goes, and what was still
    # to be sent to it is settled as failed rather than tried at an empty address.
    await session.execute(
        update(BroadcastDelivery)
        .where(
            BroadcastDelivery.person_id == person.id,
            BroadcastDelivery.state.in_((DeliveryState.PENDING, DeliveryState.IN_FLIGHT)),
        )
        .values(state=DeliveryState.FAILED, error="personal data erased", finished_at=now)
    )
    await session.execute(
        update(BroadcastDelivery)
        .where(BroadcastDelivery.person_id == person.id)
        .values(external_id="")
    )
    # Claims made from their chats or naming them, and wrong codes tried on their phone:
    # what a claimant typed (name, phone) is theirs too.
    claims_about = IdentityClaim.person_id == person.id
    if identity_ids:
        claims_about = or_(claims_about, IdentityClaim.identity_id.in_(identity_ids))
    if person.phone:
        claims_about = or_(claims_about, IdentityClaim.phone == person.phone)
        await session.execute(
            delete(ProofFailure).where(ProofFailure.key == f"phone:{person.phone}")
        )
    await session.execute(delete(IdentityClaim).where(claims_about))
    if identity_ids:
        await session.execute(delete(ChannelIdentity).where(ChannelIdentity.id.in_(identity_ids)))
    report.identities = len(identity_ids)

    # Leader and officer roles are powers, not statistics; membership stays for the counts.
    result = await session.execute(
        delete(UnitRole).where(UnitRole.person_id == person.id, UnitRole.role != Role.MEMBER)
    )
    report.roles_removed = int(result.rowcount or 0)  # type: ignore[attr-defined]
    result = await session.execute(
        update(Registration).where(Registration.person_id == person.id).values(commitment=None)
    )
    report.registrations_kept = int(result.rowcount or 0)  # type: ignore[attr-defined]
    await session.execute(
        update(InitiativeAuthor)
        .where(InitiativeAuthor.person_id == person.id)
        .values(name=ERASED_NAME)
    )
    for entry in await session.scalars(select(AuditEntry).where(_about(person.id))):
        scrubbed = _scrub(entry.details or {})
        if scrubbed != (entry.details or {}):
            entry.details = scrubbed
            report.audit_entries_scrubbed += 1

    report.others_messages = await _erase_from_others_messages(session, person)

    person.full_name = ERASED_NAME
    person.phone = None
    person.position = None
    person.locale = None
    person.reminders_muted = True
    person.updated_at = now
    audit(
        session,
        action=ERASED,
        entity="person",
        entity_id=person.id,
        actor_id=None,
        via=via,
        identities=report.identities,
        registrations_kept=report.registrations_kept,
    )
    await session.flush()
    return report
