"""The ``thidua`` command: database, imports, campaigns, invites, exports, and running the bot.

Every command first brings the schema up to date (idempotent), so a fresh checkout works
with any command. Expected failures (a missing file, a bad row, an unknown campaign) print
one clear line on stderr and exit with 1; only real bugs show a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from storage.campaigns import CampaignInvalid, load_campaign_file
from storage.db import make_engine, make_sessionmaker
from storage.exporters import ExportError
from storage.importers import ImportFailed, ImportSummary, import_members_file, import_units_file
from storage.invites import InviteError, create_invite, invite_status, list_invites, revoke_invite
from storage.models import Invite
from storage.seed import prepare_database
from storage.tables import MAX_ROWS, Limits

T = TypeVar("T")

Handler = Callable[[argparse.Namespace, Settings], Coroutine[Any, Any, int]]


class CliError(Exception):
    """An expected failure: its message is printed as is, without a traceback."""


def _version() -> str:
    try:
        return version("thidua-bot")
    except PackageNotFoundError:
        return "unknown"


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unreadable DATABASE_URL>"


# --- database-backed commands ---------------------------------------------------------------


async def _with_session(settings: Settings, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Upgrade the schema, run ``work`` in one transaction, commit, return its result.

    Commands print only after this returns, so "Imported ..." never shows for a
    transaction that then failed to commit.
    """
    engine = make_engine(settings.database_url)
    try:
        await prepare_database(engine)
        sessions: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _upgrade_only(settings: Settings) -> None:
    engine = make_engine(settings.database_url)
    try:
        await prepare_database(engine)
    finally:
        await engine.dispose()


async def cmd_db_upgrade(args: argparse.Namespace, settings: Settings) -> int:
    await _upgrade_only(settings)
    print(f"Database is up to date ({_safe_url(settings.database_url)})")
    return 0


def _existing_file(path: str) -> Path:
    file = Path(path)
    if not file.exists():
        raise CliError(f"file not found: {path}")
    if not file.is_file():
        raise CliError(f"not a file: {path}")
    return file


async def cmd_org_import(args: argparse.Namespace, settings: Settings) -> int:
    file = _existing_file(args.file)

    async def work(session: AsyncSession) -> ImportSummary:
        return await import_units_file(session, file, limits=Limits(max_rows=args.max_rows))

    print((await _with_session(settings, work)).describe())
    return 0


async def cmd_members_import(args: argparse.Namespace, settings: Settings) -> int:
    file = _existing_file(args.file)

    async def work(session: AsyncSession) -> ImportSummary:
        return await import_members_file(session, file, limits=Limits(max_rows=args.max_rows))

    print((await _with_session(settings, work)).describe())
    return 0


async def cmd_campaign_load(args: argparse.Namespace, settings: Settings) -> int:
    file = _existing_file(args.file)

    async def work(session: AsyncSession) -> str:
        campaign = await load_campaign_file(session, file)
        deadline = campaign.registration_deadline.strftime("%d/%m/%Y")
        return (
            f"Loaded campaign {campaign.code} «{campaign.name}»: {len(campaign.phases)} phase(s), "
            f"{len(campaign.title_codes)} title(s), registration deadline {deadline}"
        )

    print(await _with_session(settings, work))
    return 0


def _bot_username() -> str | None:
    name = os.environ.get("TELEGRAM_BOT_USERNAME", "").strip().lstrip("@")
    return name or None


async def cmd_invite_create(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> Invite:
        return await create_invite(
            session, args.role, args.unit, max_uses=args.uses, days=args.days
        )

    invite = await _with_session(settings, work)
    username = _bot_username()
    uses = "unlimited uses" if invite.max_uses is None else f"up to {invite.max_uses} use(s)"
    expiry = (
        "never expires"
        if invite.expires_at is None
        else f"expires {invite.expires_at:%Y-%m-%d %H:%M} UTC"
    )
    print(f"Invite for {invite.role} of {args.unit} ({uses}, {expiry})")
    print(f"Code: {invite.code}")
    print(f"Link: https://t.me/{username or '<bot>'}?start={invite.code}")
    if username is None:
        print(
            "Note: set TELEGRAM_BOT_USERNAME to print the real link; "
            "replace <bot> with the bot's username."
        )
    return 0


async def cmd_invite_revoke(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> str:
        invite = await revoke_invite(session, args.code)
        return f"Revoked invite for {invite.role} of {invite.unit.code}"

    print(await _with_session(settings, work))
    return 0


async def cmd_invite_list(args: argparse.Namespace, settings: Settings) -> int:
    async def work(session: AsyncSession) -> list[str]:
        lines = []
        for invite in await list_invites(session, args.unit):
            uses = f"{invite.uses}/{invite.max_uses if invite.max_uses is not None else '∞'}"
            expires = f"{invite.expires_at:%Y-%m-%d}" if invite.expires_at else "never"
            lines.append(
                f"{invite.code}  {invite.role:<8} {invite.unit.code:<16} uses {uses:<7} "
                f"expires {expires:<10} {invite_status(invite)}"
            )
        return lines

    print("\n".join(await _with_session(settings, work)) or "No invites.")
    return 0


# --- the bot itself (bot.app, imported lazily: aiogram is heavy) -----------------------------


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    await _upgrade_only(settings)
    from bot import app

    return await app.run(settings)


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    await _upgrade_only(settings)
    from bot import app

    return await app.chat(settings, args.phone)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    await _upgrade_only(settings)
    from bot import app

    return await app.demo(settings)


# --- parsing and dispatch ---------------------------------------------------------------------


def _max_rows_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-rows",
        type=_positive,
        default=MAX_ROWS,
        metavar="N",
        help=f"refuse files of more rows (default {MAX_ROWS:,}; a workbook's declared size "
        "is checked before it is read)",
    )


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="thidua", description="Thi đua bot: emulation registration by chat."
    )
    parser.add_argument("--version", action="version", version=f"thidua {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def group(name: str, help_text: str) -> argparse._SubParsersAction[argparse.ArgumentParser]:
        sub = commands.add_parser(name, help=help_text)
        return sub.add_subparsers(dest="action", required=True, metavar="ACTION")

    db = group("db", "database schema")
    db.add_parser("upgrade", help="create or upgrade the schema, seed titles").set_defaults(
        handler=cmd_db_upgrade
    )

    org = group("org", "the organisation tree")
    p = org.add_parser("import", help="import units from CSV/XLSX: code,name,parent_code[,kind]")
    p.add_argument("file")
    _max_rows_option(p)
    p.set_defaults(handler=cmd_org_import)

    members = group("members", "member rosters")
    p = members.add_parser(
        "import", help="import members from CSV/XLSX: unit_code,full_name,phone[,position]"
    )
    p.add_argument("file")
    _max_rows_option(p)
    p.set_defaults(handler=cmd_members_import)

    campaign = group("campaign", "emulation campaigns")
    p = campaign.add_parser("load", help="create or update a campaign from a YAML file")
    p.add_argument("file")
    p.set_defaults(handler=cmd_campaign_load)

    invite = group("invite", "invite codes for leaders, officers and members")
    p = invite.add_parser("create", help="create an invite code and its Telegram link")
    p.add_argument("--role", required=True, choices=["member", "leader", "officer"])
    p.add_argument("--unit", required=True, metavar="CODE")
    p.add_argument("--uses", type=_positive, metavar="N", help="how many times (default: any)")
    p.add_argument("--days", type=_positive, metavar="D", help="valid for D days (default: ever)")
    p.set_defaults(handler=cmd_invite_create)
    p = invite.add_parser("revoke", help="stop an invite code from working")
    p.add_argument("code")
    p.set_defaults(handler=cmd_invite_revoke)
    p = invite.add_parser("list", help="list invites (of a unit and the units below it)")
    p.add_argument("--unit", metavar="CODE")
    p.set_defaults(handler=cmd_invite_list)

    # export registrations (the familiar XLSX form, CSV) and import registrations
    from bot.cli_registrations import add_commands as add_registration_commands

    add_registration_commands(commands)

    commands.add_parser("run", help="run the bot (Telegram and the other channels)").set_defaults(
        handler=cmd_run
    )
    p = commands.add_parser("chat", help="talk to the bot in this terminal")
    p.add_argument("--as", dest="phone", metavar="PHONE", help="act as the person with this phone")
    p.set_defaults(handler=cmd_chat)
    commands.add_parser("demo", help="a demo database and a guided chat").set_defaults(
        handler=cmd_demo
    )
    # remind, jobs list, digest (the reminder and digest schedule by hand)
    from bot.cli_jobs import add_commands as add_job_commands

    add_job_commands(commands)
    # broadcast list / status [--follow] / send / worker / cancel (announcements)
    from bot.cli_broadcast import add_commands as add_broadcast_commands

    add_broadcast_commands(commands)
    # person requests / erase (personal data, Nghị định 13/2023)
    from bot.cli_person import add_commands as add_person_commands

    add_person_commands(commands)
    return parser


def _configure_logging(level_name: str) -> None:
    level = logging.getLevelName(level_name.strip().upper())
    if not isinstance(level, int):
        level = logging.INFO
    logging.basicConfig(
        level=level, stream=sys.stderr, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if level > logging.DEBUG:
        # Alembic reports its context at INFO on every command; only useful when debugging.
        logging.getLogger("alembic").setLevel(logging.WARNING)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    try:
        settings = Settings()
    except Exception as exc:  # pydantic's ValidationError: a bad environment value
        return _fail(f"bad configuration: {exc}")
    _configure_logging(settings.log_level)
    # No token, secret or statement parameter (people's data) in any log line.
    from bot.logsafe import protect_logs

    protect_logs(settings)
    handler: Handler = args.handler
    try:
        return asyncio.run(handler(args, settings))
    except ImportFailed as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("Nothing was imported; fix the file and run the command again.", file=sys.stderr)
        return 1
    except CampaignInvalid as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        print("The campaign was not loaded.", file=sys.stderr)
        return 1
    except (CliError, InviteError, ExportError) as exc:
        return _fail(str(exc))
    except FileNotFoundError as exc:
        return _fail(f"file not found: {exc.filename or exc}")
    except PermissionError as exc:
        return _fail(f"permission denied: {exc.filename or exc}")
    except IsADirectoryError as exc:
        return _fail(f"is a folder, not a file: {exc.filename or exc}")
    except UnicodeDecodeError as exc:
        return _fail(f"the file is not UTF-8 text ({exc.reason})")
    except (OperationalError, DBAPIError, ConnectionError) as exc:
        return _fail(
            f"database error with {_safe_url(settings.database_url)}: "
            f"{str(getattr(exc, 'orig', None) or exc).splitlines()[0]}"
        )
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
