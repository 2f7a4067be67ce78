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
