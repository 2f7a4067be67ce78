"""Messages to people other than the sender (officers, leaders, co-authors).

Each reply is built in the recipient's own language and sent to the chat they used last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import select
from sqlalchemy.orm import aliased

from handlers.engine.flow import Ctx
from handlers.engine.prompt import Address, Outgoing, Reply
from handlers.i18n import use_locale
from storage.models import ChannelIdentity, Conversation, Person


async def notify(ctx: Ctx, person_ids: Iterable[int], make_reply: Callable[[Person], Reply]) -> int:
    """Queue a message to each person (once, on their latest chat); returns how many."""
    wanted = sorted(set(person_ids))
    if not wanted:
        return 0
    conv = aliased(Conversation)
    rows = await ctx.session.execute(
        select(Person, ChannelIdentity)
        .join(ChannelIdentity, ChannelIdentity.person_id == Person.id)
        .outerjoin(conv, conv.identity_id == ChannelIdentity.id)
        .where(Person.id.in_(wanted))
        .order_by(Person.id, conv.updated_at.desc().nulls_last(), ChannelIdentity.id.desc())
    )
    reached: set[int] = set()
    for person, identity in rows:
        if person.id in reached:
            continue
        reached.add(person.id)
        with use_locale(person.locale or ctx.config.default_locale):
            reply = make_reply(person)
        ctx.others.append(Outgoing(Address(identity.channel, identity.external_id), reply))
    return len(reached)
