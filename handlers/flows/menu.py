"""The main menu, help, and the commands that work at any point."""

from __future__ import annotations

from handlers.engine.flow import Answer, Cancel, Ctx, Finish, Flow, Go, Step, Switch
from handlers.engine.prompt import Choice, Prompt
from handlers.engine.runner import CommandFn
from handlers.flows.campaign_info import show_campaign_info
from handlers.flows.notices import cmd_digest, reminder_choice, set_muted
from handlers.i18n import _
from handlers.text import given_name
from storage.models import Role
from storage.repo import units_led_by
from storage.units import units_with_role

MENU = "menu"

# Menu entries: choice id -> flow started. Later parts add leader and officer entries.
_ENTRIES = ("title", "mine", "initiative", "work")
# Leader and officer entries (shown only to people with that role).
_ROLE_ENTRIES = (
    "collective",
    "unit_status",
    "on_behalf",
    "submit",
    "invite",
    "review",
    "broadcast",
)


# /trogiup stays under this many characters for every role (read on a phone, at once).
MAX_HELP = 400


async def help_text(ctx: Ctx) -> str:
    """What the bot can do for this person: everyone's commands, then their role's, one
    line each (under MAX_HELP characters whatever the roles)."""
    parts = [
        _(
            "/dangky – register a title\n"
            "/sangkien – register an initiative\n"
            "/cuatoi – your registrations\n"
            "/tatnhac, /batnhac – reminders off, on\n"
            "/lienket – use another chat app\n"
            # Nghị định 13/2023: people must be able to find out what is kept about them.
            "/dulieucuatoi – your data, erasure\n"
            "/menu – main menu; /huy – cancel"
        )
    ]
    if ctx.person is not None:
        if await units_led_by(ctx.session, ctx.person.id):
            parts.append(
                _(
                    "/donvi – your unit's progress\n"
                    "/congtrinh – register a work\n"
                    "/guilen – send the list upward"
                )
            )
        if await units_with_role(ctx.session, ctx.person.id, Role.OFFICER):
            parts.append(
                _("/duyet – lists to approve\n/tonghop – summary report\n/thongbao – announcements")
            )
    return "\n".join(parts)


async def ask_menu(ctx: Ctx) -> Prompt:
    person = ctx.require_person()
    choices = [
        Choice("title", _("📝 Register a title")),
        Choice("initiative", _("💡 Register an initiative")),
        Choice("mine", _("📋 My registrations")),
        Choice("campaign_info", _("📢 About the campaign")),
    ]
    if await units_led_by(ctx.session, person.id):
        choices.append(Choice("work", _("🏗️ Register a commemorative work")))
        choices += [
            Choice("collective", _("👥 Register a collective title")),
            Choice("unit_status", _("📊 Unit progress")),
            Choice("on_behalf", _("✍️ Register for a member")),
            Choice("submit", _("📤 Send the list to the upper level")),
            Choice("invite", _("📨 Invite members (QR code)")),
        ]
    if await units_with_role(ctx.session, person.id, Role.OFFICER):
        choices.append(Choice("review", _("🗂️ Lists to review")))
        choices.append(Choice("broadcast", _("📣 Send an announcement")))
        choices.append(Choice("digest", _("📊 Summary report")))
    choices.append(reminder_choice(person))
    choices.append(Choice("help", _("❓ Help")))
    return Prompt(
        _("Hello {name}! What would you like to do?").format(name=given_name(person.full_name)),
        tuple(choices),
        allow_back=False,
        allow_cancel=False,
    )


async def answer_menu(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice in _ENTRIES or answer.choice in _ROLE_ENTRIES:
        return Switch(answer.choice or "")
    if answer.choice in ("remind_off", "remind_on"):
        set_muted(ctx, answer.choice == "remind_off")
        return Finish()
    if answer.choice == "digest":
        await cmd_digest(ctx, "")
        return Finish()
    if answer.choice == "campaign_info":
        await show_campaign_info(ctx)
        return Finish()
    ctx.say(await help_text(ctx))
    return Finish()


MENU_FLOW = Flow(MENU, (Step("menu", ask_menu, answer_menu),))


# --- commands ------------------------------------------------------------------------------


async def cmd_help(ctx: Ctx, _arg: str) -> Go | None:
    ctx.say(await help_text(ctx))
    return None


async def cmd_cancel(ctx: Ctx, _arg: str) -> Go | None:
    return Cancel()


async def cmd_menu(ctx: Ctx, _arg: str) -> Go | None:
    if ctx.person is None:
        return Switch("onboarding")
    return Finish()


def start_flow_command(flow: str) -> CommandFn:
    """A command that opens ``flow``, or onboarding first for someone not yet known."""

    async def command(ctx: Ctx, _arg: str) -> Go | None:
        if ctx.person is None:
            ctx.say(_("First, let me get to know you."))
            return Switch("onboarding")
        return Switch(flow)

    return command
