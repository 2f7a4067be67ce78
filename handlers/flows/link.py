"""/lienket: one person, several chat apps (Telegram, Zalo, the web page), the same records.

On the app where the person is known, ``/lienket`` shows a one-time code; on the other app,
``/lienket CODE`` attaches that chat to the same person, so both see the same registrations.
(The same phone number typed during onboarding links accounts too: see onboarding.)
"""

from __future__ import annotations

from handlers.engine.flow import Ctx, Finish, Go
from handlers.engine.prompt import Address, Outgoing, Reply
from handlers.i18n import _, use_locale
from handlers.text import given_name
from storage.claims import (
    MAX_FAILURES,
    attach_identity,
    chat_key,
    failure_count,
    record_failure,
)
from storage.links import issue_link_code, normalise_link_code, usable_link_code, use_link_code
from storage.models import ChannelIdentity, Person
from storage.repo import audit, identity_on_channel

LINK_COMMAND = "lienket"


async def cmd_link(ctx: Ctx, arg: str) -> Go | None:
    """/lienket shows a code for another app; /lienket CODE links this chat with it."""
    if arg:
        return await _redeem(ctx, arg)
    if ctx.person is None:
        ctx.say(
            _(
                "To use the account you already have, type /lienket in the app where you are "
                "registered. It shows a code; then type here: /lienket CODE"
            )
        )
        return None
    code, expires = await issue_link_code(ctx.session, ctx.person.id, ctx.identity.channel, ctx.now)
    ctx.say(
        _(
            "Your link code: {code}\n"
            "In your other app (Zalo, Telegram or the web page), type:\n"
            "/lienket {code}\n"
            "The code works once, until {time}. Do not give it to anyone: it opens your "
            "registrations."
        ).format(code=code, time=expires.astimezone(ctx.config.tz).strftime("%H:%M"))
    )
    return None


async def _redeem(ctx: Ctx, arg: str) -> Go | None:
    if ctx.person is not None:
        ctx.say(
            _(
                "This chat is already linked to {name}. A link code is typed in an app where "
                "you are not registered yet."
            ).format(name=ctx.person.full_name)
        )
        return None
    # Link codes and personal codes are one kind: wrong ones count here as in onboarding.
    keys = [chat_key(ctx.identity.channel, ctx.identity.external_id)]
    if await failure_count(ctx.session, keys, ctx.now) >= MAX_FAILURES:
        ctx.say(
            _(
                "Too many wrong codes from this chat. For your safety, codes are not "
                "accepted here until tomorrow."
            )
        )
        return None
    code = normalise_link_code(arg)
    link = await usable_link_code(ctx.session, code, ctx.now) if code else None
    if link is None:
        await record_failure(ctx.session, keys, ctx.now)
        ctx.say(
            _(
                "This link code does not work: it may be mistyped, used already or older than "
                "15 minutes. Type /lienket in your other app for a new one."
            )
        )
        return None
    person = await ctx.session.get(Person, link.person_id)
    if person is None:
        return None
    channel = ctx.identity.channel
    if not await use_link_code(ctx.session, link, ctx.identity.id, ctx.now):
        ctx.say(_("This link code has just been used. Type /lienket in your other app again."))
        return None
    # The code is proof: an older chat of the person in this app (a new account, a new
    # browser) is signed out rather than locking them out of their own records.
    old = await attach_identity(ctx.session, ctx.identity, person, ctx.now)
    ctx.person = person
    audit(
        ctx.session,
        action="person.link",
        entity="person",
        entity_id=person.id,
        actor_id=person.id,
        via="chat",
        channel=channel,
        method="code",
        **({"unlinked_identity_id": old.id} if old is not None else {}),
    )
    await tell_code_issuer(ctx, person, link.issued_via, channel)
    tell_signed_out(ctx, old, person)
    ctx.say(
        _(
            "Done, {name}: this chat is now linked to your account. You see the same "
            "registrations here as in your other app."
        ).format(name=given_name(person.full_name))
    )
    return Finish()


async def tell_code_issuer(ctx: Ctx, person: Person, issued_via: str, linked_on: str) -> None:
    """Say on the app that issued the code that it was used: a stolen code does not go unseen."""
    issuer = await identity_on_channel(ctx.session, person.id, issued_via)
    if issuer is None or issuer.id == ctx.identity.id:
        return
    with use_locale(person.locale or ctx.config.default_locale):
        text = _(
            "Your link code was used: a chat on {channel} is now linked to your account. If "
            "that was not you, please tell your union officer."
        ).format(channel=channel_label(linked_on))
    ctx.others.append(Outgoing(Address(issuer.channel, issuer.external_id), Reply(text)))


def tell_signed_out(ctx: Ctx, old: ChannelIdentity | None, person: Person) -> None:
    """The chat that lost the account hears of it: a mistaken confirmation does not go unseen."""
    if old is not None:
        ctx.others += tell_signed_out_message(old, person, ctx.config.default_locale)


def tell_signed_out_message(old: ChannelIdentity, person: Person, locale: str) -> list[Outgoing]:
    with use_locale(person.locale or locale):
        text = _(
            "Your account is now used in another chat on {channel}, so this chat is signed "
            "out. If that was not you, please tell your union leader at once."
        ).format(channel=channel_label(old.channel))
    return [Outgoing(Address(old.channel, old.external_id), Reply(text))]


def channel_label(channel: str) -> str:
    """The name of a chat app as people know it."""
    return {
        "telegram": "Telegram",
        "zalo": "Zalo",
        "zalo_oa": "Zalo OA",
        "web": _("the web page"),
    }.get(channel, channel)
