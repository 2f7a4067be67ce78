"""The ``thidua`` command: database, imports, campaigns, invites, exports, and running the bot.

Every command first brings the schema up to date (idempotent), so a fresh checkout works
with any command. Expected failures (a missing file, a bad row, an unknown campaign) print
one clear line on stderr and exit with 1; only real bugs show a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

# Nothing heavy at module level: `thidua --help` must answer at once (tests/test_lazy_imports).
# SQLAlchemy, pydantic-settings and the storage modules are imported by the commands that use
# them, and the commands defined in other modules (_COMMAND_MODULES) only when one of theirs
# is run.
if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.config import Settings
    from storage.importers import ImportSummary
    from storage.models import Invite

T = TypeVar("T")

Handler = Callable[[argparse.Namespace, "Settings"], Coroutine[Any, Any, int]]


class CliError(Exception):
    """An expected failure: its message is printed as is, without a traceback."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("thidua-bot")
    except PackageNotFoundError:
        return "unknown"


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

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
    from storage.db import make_engine, make_sessionmaker
    from storage.seed import prepare_database

    engine = make_engine(settings.database_url)
    try:
        await prepare_database(engine)
        sessions = make_sessionmaker(engine)
        async with sessions() as session, session.begin():
            return await work(session)
    finally:
        await engine.dispose()


async def _upgrade_only(settings: Settings) -> None:
    from storage.db import make_engine
    from storage.seed import prepare_database

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
    from bot.progress import progress
    from storage.importers import import_units_file
    from storage.tables import Limits

    file = _existing_file(args.file)

    async with progress("Importing units", unit="unit") as tracker:

        async def work(session: AsyncSession) -> ImportSummary:
            return await import_units_file(
                session, file, limits=Limits(max_rows=args.max_rows), progress=tracker.advance
            )

        summary = await _with_session(settings, work)
    print(summary.describe())
    return 0


async def cmd_members_import(args: argparse.Namespace, settings: Settings) -> int:
    from bot.progress import progress
    from storage.importers import import_members_file
    from storage.tables import Limits

    file = _existing_file(args.file)

    async with progress("Importing members", unit="member") as tracker:

        async def work(session: AsyncSession) -> ImportSummary:
            return await import_members_file(
                session, file, limits=Limits(max_rows=args.max_rows), progress=tracker.advance
            )

        summary = await _with_session(settings, work)
    print(summary.describe())
    return 0


async def cmd_campaign_load(args: argparse.Namespace, settings: Settings) -> int:
    from storage.campaigns import load_campaign_file

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
    from storage.invites import create_invite

    async def work(session: AsyncSession) -> Invite:
        return await create_invite(
            session,
            args.role,
            args.unit,
            max_uses=args.uses,
            days=args.days,
            unlimited_uses=args.unlimited_uses,
            no_expiry=args.no_expiry,
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
    from storage.invites import revoke_invite

    async def work(session: AsyncSession) -> str:
        invite = await revoke_invite(session, args.code)
        return f"Revoked invite for {invite.role} of {invite.unit.code}"

    print(await _with_session(settings, work))
    return 0


async def cmd_invite_list(args: argparse.Namespace, settings: Settings) -> int:
    from storage.invites import invite_status, list_invites

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
# No upgrade here: app.open_core prepares the database once, on the engine the bot then uses,
# instead of a second engine opened, checked and disposed of first.


async def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app  # brings the schema up to date itself (app.open_core)

    return await app.run(settings)


async def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app  # brings the schema up to date itself (app.open_core)

    return await app.chat(settings, args.phone)


async def cmd_demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot import app  # brings the schema up to date itself (app.open_core)

    return await app.demo(settings)


# --- parsing and dispatch ---------------------------------------------------------------------


def _max_rows_option(parser: argparse.ArgumentParser) -> None:
    from storage.tables import MAX_ROWS  # light: the standard library only

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


# Commands defined in other modules, in the order of `thidua --help`, with their one-line
# help. A module is imported (it brings SQLAlchemy and the storage layer) only when one of its
# commands is on the command line; otherwise a stand-in with the same help is listed.
# tests/test_cli.py checks the stand-ins say what the modules' own parsers say.
_COMMAND_MODULES: dict[str, dict[str, str]] = {
    # export registrations (the familiar XLSX form, CSV) and import registrations
    "bot.cli_registrations": {
        "export": "exports for officers",
        "import": "registrations made outside the bot",
    },
    # remind, jobs list, digest (the reminder and digest schedule by hand)
    "bot.cli_jobs": {
        "remind": "run a campaign's reminder pass now",
        "jobs": "the reminder and digest schedule",
        "digest": "an officer digest of a unit's subtree",
    },
    # broadcast list / status [--follow] / send / worker / cancel (announcements)
    "bot.cli_broadcast": {"broadcast": "announcements to members (thông báo)"},
    # person requests / erase (personal data, Nghị định 13/2023)
    "bot.cli_person": {"person": "personal data requests (Nghị định 13/2023)"},
}


class _VersionAction(argparse.Action):
    """--version, reading the installed version only when asked (importlib.metadata is slow)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        print(f"thidua {_version()}")
        parser.exit()


def _command_word(argv: Sequence[str] | None) -> str | None:
    """The command on the command line (the top level has no option taking a value)."""
    words = sys.argv[1:] if argv is None else argv
    return next((w for w in words if not w.startswith("-")), None)


def _add_module_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    module: str,
    wanted: str | None,
    everything: bool,
) -> None:
    names = _COMMAND_MODULES[module]
    if everything or wanted in names:
        import_module(module).add_commands(commands)
        return
    for name, help_text in names.items():
        commands.add_parser(name, help=help_text)


def build_parser(
    argv: Sequence[str] | None = None, *, everything: bool = True
) -> argparse.ArgumentParser:
    """The command-line parser. With ``everything=False`` only the modules of the command in
    ``argv`` are imported; the others' commands are listed by name and help."""
    wanted = _command_word(argv) if not everything else None
    parser = argparse.ArgumentParser(
        prog="thidua", description="Thi đua bot: emulation registration by chat."
    )
    parser.add_argument("--version", action=_VersionAction)
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
    p.add_argument(
        "--uses",
        type=_positive,
        metavar="N",
        help="how many times (default: once for leader/officer, any for member)",
    )
    p.add_argument(
        "--days",
        type=_positive,
        metavar="D",
        help="valid for D days (default: 7 for leader/officer, ever for member)",
    )
    p.add_argument(
        "--unlimited-uses", action="store_true", help="a leader/officer invite for any number"
    )
    p.add_argument("--no-expiry", action="store_true", help="a leader/officer invite that lasts")
    p.set_defaults(handler=cmd_invite_create)
    p = invite.add_parser("revoke", help="stop an invite code from working")
    p.add_argument("code")
    p.set_defaults(handler=cmd_invite_revoke)
    p = invite.add_parser("list", help="list invites (of a unit and the units below it)")
    p.add_argument("--unit", metavar="CODE")
    p.set_defaults(handler=cmd_invite_list)

    _add_module_commands(commands, "bot.cli_registrations", wanted, everything)

    commands.add_parser("run", help="run the bot (Telegram and the other channels)").set_defaults(
        handler=cmd_run
    )
    p = commands.add_parser("chat", help="talk to the bot in this terminal")
    p.add_argument("--as", dest="phone", metavar="PHONE", help="act as the person with this phone")
    p.set_defaults(handler=cmd_chat)
    commands.add_parser("demo", help="a demo database and a guided chat").set_defaults(
        handler=cmd_demo
    )
    for module in ("bot.cli_jobs", "bot.cli_broadcast", "bot.cli_person"):
        _add_module_commands(commands, module, wanted, everything)
    return parser


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv, everything=False)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error already printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError, OperationalError

    from bot import eventloop
    from bot.config import Settings, describe_invalid
    from bot.logformat import configure_logging
    from storage.campaigns import CampaignInvalid
    from storage.exporters import ExportError
    from storage.importers import ImportFailed
    from storage.invites import InviteError

    try:
        settings = Settings()
    except ValidationError as exc:  # a bad setting: say which and what is allowed, then stop
        for line in describe_invalid(exc):
            print(f"error: bad setting {line}", file=sys.stderr)
        return 2
    configure_logging(settings)
    # No token, secret or statement parameter (people's data) in any log line.
    from bot.logsafe import protect_logs

    protect_logs(settings)
    handler: Handler = args.handler
    try:
        return eventloop.run(handler(args, settings), settings.event_loop)
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
    except Exception as exc:
        from bot.app import BackgroundTaskDied, PortInUse

        if isinstance(exc, PortInUse):
            return _fail(str(exc))
        if isinstance(exc, BackgroundTaskDied):
            return 1  # logged with its traceback when it happened
        raise
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
