"""The flows of the bot and the commands that reach them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import Ctx, EngineConfig, Finish, Flow, Go, Switch
from handlers.engine.render import ACTION_WORDS
from handlers.engine.runner import CommandFn, Engine
from handlers.flows.broadcast import BROADCAST_ACTIONS, BROADCAST_FLOW
from handlers.flows.campaign_info import cmd_campaign_info
from handlers.flows.claims import CLAIM_ACTIONS
from handlers.flows.initiatives import INITIATIVE_FLOW
from handlers.flows.invite import INVITE_FLOW
from handlers.flows.leader import LEADER_FLOWS
from handlers.flows.link import LINK_COMMAND, cmd_link
from handlers.flows.list_review import LIST_REVIEW_FLOW
from handlers.flows.locked import LOCKED_ACTIONS
from handlers.flows.menu import MENU_FLOW, cmd_cancel, cmd_help, cmd_menu, start_flow_command
from handlers.flows.mine import MINE_FLOW
from handlers.flows.mydata import MY_DATA_FLOW, cmd_my_data
from handlers.flows.notices import cmd_digest, cmd_mute, cmd_unmute, reminder_actions
from handlers.flows.onboarding import ONBOARDING_FLOW, redeem_invite
from handlers.flows.review import REVIEW_ACTIONS, REVIEW_FLOWS, cmd_review
from handlers.flows.titles import TITLES_FLOW
from handlers.flows.works import WORK_FLOW
from handlers.i18n import _
from handlers.text import given_name


def default_flows() -> dict[str, Flow]:
    flows = (MENU_FLOW, ONBOARDING_FLOW, TITLES_FLOW, MINE_FLOW, INITIATIVE_FLOW, WORK_FLOW)
    more = (
        *LEADER_FLOWS,
        LIST_REVIEW_FLOW,
        INVITE_FLOW,
        *REVIEW_FLOWS,
        BROADCAST_FLOW,
        MY_DATA_FLOW,
    )
    return {flow.name: flow for flow in (*flows, *more)}


async def cmd_start(ctx: Ctx, arg: str) -> Go | None:
    """/start [invite]: onboarding for someone new; for a known person, apply the invite."""
    if ctx.person is None:
        return Switch("onboarding", data={"invite": arg} if arg else {})
    if arg:
        await redeem_invite(ctx, arg)
        return Finish()
    if ctx.flow not in ("", "menu"):
        ctx.say(_("Let us continue where you stopped (type /huy to drop it):"))
        return None
    ctx.say(_("Welcome back, {name}!").format(name=given_name(ctx.person.full_name)))
    return Finish()


def default_actions() -> dict[str, CommandFn]:
    """Buttons on notifications ("!name:arg"); see Engine.actions. Each is also typed by its
    Vietnamese word on channels without buttons ("/pheduyet 12", handlers.engine.render)."""
    actions = {
        **reminder_actions(default_flows()),
        **REVIEW_ACTIONS,
        **BROADCAST_ACTIONS,
        **CLAIM_ACTIONS,
        **LOCKED_ACTIONS,
    }
    words = {word: actions[name] for name, word in ACTION_WORDS.items() if name in actions}
    return {**actions, **words}


def default_commands() -> dict[str, CommandFn]:
    return {
        "start": cmd_start,
        # "/start" is the platforms' own word (Telegram's Start button); texts say /batdau.
        "batdau": cmd_start,
        "help": cmd_help,
        "trogiup": cmd_help,
        "cancel": cmd_cancel,
        "huy": cmd_cancel,
        "menu": cmd_menu,
        "dangky": start_flow_command("title"),
        "cuatoi": start_flow_command("mine"),
        "sangkien": start_flow_command("initiative"),
        "congtrinh": start_flow_command("work"),
        "tatnhac": cmd_mute,
        "batnhac": cmd_unmute,
        "tonghop": cmd_digest,
        "phongtrao": cmd_campaign_info,
        "donvi": start_flow_command("unit_status"),
        "guilen": start_flow_command("submit"),
        "moi": start_flow_command("invite"),
        "danhsach": start_flow_command("list_review"),
        "duyet": cmd_review,
        LINK_COMMAND: cmd_link,
        "thongbao": start_flow_command("broadcast"),
        # Nghị định 13/2023: what is kept about me, and the erasure request.
        "dulieucuatoi": cmd_my_data,
        "mydata": cmd_my_data,
    }


def build_engine(sessionmaker: async_sessionmaker[AsyncSession], config: EngineConfig) -> Engine:
    """The engine with every flow, command and notification action of the bot."""
    return Engine(sessionmaker, default_flows(), default_commands(), config, default_actions())
