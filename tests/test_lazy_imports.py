"""A chat process stays small: heavy libraries are imported only where they are used
(bench/memory.py measures the resident memory this keeps down)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from storage.db import make_engine, script_heads
from storage.seed import prepare_database

ROOT = Path(__file__).resolve().parent.parent


def imported_after(code: str) -> set[str]:
    """Top-level packages loaded by ``code`` in a fresh interpreter."""
    probe = code + "\nimport sys\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_the_chat_side_does_not_load_plotting_or_spreadsheets() -> None:
    loaded = imported_after(
        "import bot.cli, bot.app, bot.channels.telegram, bot.scheduler, handlers.flows"
    )
    assert "aiogram" in loaded  # the probe did import the channel
    assert not loaded & {"matplotlib", "openpyxl", "numpy", "PIL", "alembic"}


async def test_an_up_to_date_database_is_opened_without_alembic(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}"
    engine = make_engine(url)
    try:
        await prepare_database(engine)  # migrates: Alembic runs here
    finally:
        await engine.dispose()
    assert script_heads(), "the migration files name one head"
    loaded = imported_after(
        "import asyncio\n"
        "from storage.db import make_engine\n"
        "from storage.seed import prepare_database\n"
        f"e = make_engine({url!r})\n"
        "async def go():\n"
        "    await prepare_database(e)\n"
        "    await e.dispose()\n"
        "asyncio.run(go())"
    )
    assert "sqlalchemy" in loaded and "alembic" not in loaded


def test_help_answers_without_the_database_layer_or_the_platforms() -> None:
    """`thidua --help` (and a command's own help) is read at the terminal: it must answer at
    once, so it loads neither SQLAlchemy, pydantic, the storage layer nor aiogram."""
    heavy = {"sqlalchemy", "pydantic", "pydantic_settings", "aiogram", "aiohttp", "alembic"}
    for argv in ([], ["run"]):
        loaded = imported_after(
            "import contextlib, io\n"
            "from bot.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            f"    assert main([*{argv!r}, '--help']) == 0\n"
            "assert 'usage: thidua' in out.getvalue()"
        )
        assert not loaded & heavy, (argv, loaded & heavy)


def test_the_light_help_lists_the_same_commands_as_the_full_parser() -> None:
    """Commands of other modules are listed by stand-ins until one of them is run: the list
    a person reads must be the one the modules define."""
    from bot.cli import build_parser

    full = build_parser().format_help()
    assert build_parser([], everything=False).format_help() == full
    for command in ("jobs", "broadcast", "person", "export", "remind"):
        light = build_parser([command, "--help"], everything=False)
        assert light.format_help() == full
        # The command asked for is the real one, with its actions.
        args = light.parse_args([command, *_an_action(command)])
        assert callable(args.handler)


def _an_action(command: str) -> list[str]:
    return {
        "jobs": ["list"],
        "broadcast": ["list"],
        "person": ["requests"],
        "export": ["registrations", "--campaign", "X"],
        "remind": ["--campaign", "X"],
    }[command]
