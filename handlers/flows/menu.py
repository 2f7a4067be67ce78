"""The main menu, help, and the commands that work at any point."""

from __future__ import annotations

from handlers.engine.flow import Answer, Cancel, Ctx, Finish, Flow, Go, Step, Switch
from handlers.engine.prompt import Choice, Prompt
from handlers.engine.runner import CommandFn
from handlers.flows.campaign_info import show_campaign_info
from handlers.flows.notices import cmd_digest, reminder_choice, set_muted
from handlers.i18n import _
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


async def help_text(ctx: Ctx) -> str:
    """What the bot can do for this person: everyone's commands, then their role's."""
    parts = [
        _(
            "With this bot you register for the annual emulation movement of your union.\n"
            "• /dangky: register an emulation title\n"
            "• /sangkien: register an initiative\n"
            "• /cuatoi: see or withdraw your registrations\n"
            "• /tatnhac, /batnhac: turn deadline reminders off or on\n"
            "• /lienket: use the same account in another chat app\n"
            "• /menu: back to the main menu\n"
            "• /cancel: cancel what you are doing"
        )
        + "\n"
        # Nghị định 13/2023: people must be able to find out what is kept about them.
        + _("• /dulieucuatoi: what the bot keeps about you, and asking for it to be erased")
    ]
    if ctx.person is not None:
        if await units_led_by(ctx.session, ctx.person.id):
            parts.append(
                _(
                    "For unit leaders:\n"
                    "• /congtrinh: register a commemorative work\n"
                    "• /donvi: your unit's progress and who has not registered\n"
                    "• /guilen: send the unit's list to the upper level"
                )
            )
        if await units_with_role(ctx.session, ctx.person.id, Role.OFFICER):
            parts.append(
                _(
                    "For upper-level officers:\n"
                    "• /duyet: lists waiting for your approval\n"
                    "• /tonghop: the summary report of your units\n"
                    "• /thongbao: send an announcement"
                )
            )
    parts.append(
        _(
            "On every question you can tap a button, type its number, or type the answer. "
            "“Back” returns to the previous question."
        )
    )
    return "\n\n".join(parts)


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
        _("{name}, what would you like to do?").format(name=person.full_name),
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
