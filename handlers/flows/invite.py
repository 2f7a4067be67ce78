"""Inviting from the chat: the leader gets the unit's invitation link and a QR code to print
for the workshop, and sees who on the roster has never used the bot.

People who never used the bot have no chat the bot could write to: the leader hands them the
link or the printed code. The invitation is for members (many uses, a month): a leader's or
officer's invitation stays with the command line and the upper level.
"""

from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import select

from handlers.engine.flow import Answer, Ctx, Finish, Flow, Go, Step
from handlers.engine.prompt import OutFile, Prompt
from handlers.flows.leader import leader_unit, unit_step
from handlers.i18n import _, current_locale
from handlers.text import format_date
from storage.invites import create_invite, invite_status
from storage.models import Invite, Role, Unit
from storage.units import roster, with_chat

INVITE = "invite"
# A member invitation made in the chat serves a whole campaign's workshops.
MEMBER_INVITE_DAYS = 30
# An older one is reused while it has this much life left, so the printed code keeps working.
REUSE_IF_LEFT = timedelta(days=7)
MAX_NAMES = 30


async def member_invite(ctx: Ctx, unit: Unit) -> Invite:
    """The unit's member invitation: the newest one still good for a week, else a new one."""
    newest = await ctx.session.scalars(
        select(Invite)
        .where(Invite.unit_id == unit.id, Invite.role == Role.MEMBER, Invite.revoked_at.is_(None))
        .order_by(Invite.created_at.desc(), Invite.id.desc())
        .limit(5)
    )
    for invite in newest:
        lasting = invite.expires_at is None or invite.expires_at - ctx.now >= REUSE_IF_LEFT
        if invite_status(invite, ctx.now) == "active" and lasting:
            return invite
    return await create_invite(
        ctx.session,
        Role.MEMBER,
        unit.code,
        max_uses=None,
        days=MEMBER_INVITE_DAYS,
        now=ctx.now,
        via="chat",
        actor_id=ctx.require_person().id,
    )


def invite_link(ctx: Ctx, code: str) -> str | None:
    username = ctx.config.bot_username
    return f"https://t.me/{username}?start={code}" if username else None


def qr_png(text: str) -> bytes:
    """A QR code big enough to scan from a printed A5 sheet."""
    import segno  # only when a code is drawn

    buffer = io.BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=12, border=4)
    return buffer.getvalue()


async def ask_invite(ctx: Ctx) -> Prompt | Go:
    unit = await leader_unit(ctx)
    if unit is None:
        ctx.say(_("You are no longer a leader of this unit."))
        return Finish()
    invite = await member_invite(ctx, unit)
    link = invite_link(ctx, invite.code)
    until = (
        format_date(invite.expires_at.astimezone(ctx.config.tz).date(), current_locale())
        if invite.expires_at
        else "—"
    )
    lines = [
        _("📨 The invitation of {unit} for members, valid until {date}:").format(
            unit=unit.name, date=until
        )
    ]
    if link:
        lines.append(_("Link to open the bot on Telegram: {link}").format(link=link))
    lines.append(
        _("Sign-in code (on the web chat page, or after /start): {code}").format(code=invite.code)
    )
    lines.append(
        _("Print the QR code below for the workshop: scanning it opens the bot for your unit.")
    )
    ctx.say("\n".join(lines))
    ctx.say(
        _("QR code of {unit}").format(unit=unit.name),
        file=OutFile(
            f"moi-{unit.code}.png", qr_png(link or invite.code), "image/png", kind="photo"
        ),
    )
    members = await roster(ctx.session, unit)
    reached = await with_chat(ctx.session, [p.id for p in members])
    never = [p for p in members if p.id not in reached]
    if not never:
        ctx.say(_("Everyone on the roster of {unit} has used the bot. 👍").format(unit=unit.name))
    else:
        names = "\n".join(f"• {p.full_name}" for p in never[:MAX_NAMES])
        more = (
            "\n" + _("… and {n} more.").format(n=len(never) - MAX_NAMES)
            if len(never) > MAX_NAMES
            else ""
        )
        ctx.say(
            _(
                "{n} of {total} on the roster have never used the bot. The bot cannot write to "
                "them yet: please give them the link or the printed code.\n{names}{more}"
            ).format(n=len(never), total=len(members), names=names, more=more)
        )
    return Finish()


async def _never(ctx: Ctx, answer: Answer) -> Go:
    return Finish()


INVITE_FLOW = Flow(INVITE, (unit_step("invite"), Step("invite", ask_invite, _never)))
