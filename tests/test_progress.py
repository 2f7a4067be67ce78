"""Long CLI commands show their progress: a bar on a terminal, one line in a pipe or cron."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest

from bot.cli import main
from bot.progress import progress

ORG = (
    "code,name,parent_code\n"
    "LDLD-BK,LĐLĐ tỉnh Bắc Kạn,\n"
    "CDCS-MAY,Công đoàn cơ sở Công ty May,LDLD-BK\n"
)


class Terminal(io.StringIO):
    """What a person's terminal is to the program: a stream that says it is a tty."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}")
    for name in ("TELEGRAM_BOT_TOKEN", "THIDUA_LOG_LEVEL", "THIDUA_LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_an_import_in_a_pipe_ends_with_one_summary_line(
    cli: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (cli / "org.csv").write_text(ORG, encoding="utf-8")
    roster = "unit_code,full_name,phone\n" + "".join(
        f"CDCS-MAY,Nguyễn Văn {chr(65 + n)},09123456{n:02d}\n" for n in range(25)
    )
    (cli / "members.csv").write_text(roster, encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 0
    assert main(["members", "import", "members.csv"]) == 0
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 2  # one per command, no bar drawn into a file
    assert re.fullmatch(r"Importing units: 2 unit\(s\) in \d+\.\d s", lines[0])
    assert re.fullmatch(r"Importing members: 25 member\(s\) in \d+\.\d s", lines[1])
    assert "25" in out  # the command's own summary is still on stdout


def test_a_failed_import_prints_no_summary(cli: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (cli / "org.csv").write_text("code,name,parent_code\nX,Đơn vị X,KHONG-CO\n", encoding="utf-8")
    assert main(["org", "import", "org.csv"]) == 1
    assert "Importing units" not in capsys.readouterr().err


async def test_on_a_terminal_a_bar_counts_up_to_the_total() -> None:
    screen = Terminal()
    async with progress("Importing members", unit="member", total=3, stream=screen) as tracker:
        for _ in range(3):
            tracker.advance(1)
    drawn = screen.getvalue()
    assert "Importing members" in drawn and "3/3" in drawn and "100%" in drawn


async def test_a_polled_count_is_shown_too() -> None:
    screen = Terminal()
    sent = [0]
    async with progress("Broadcast #1", unit="message", poll=lambda: sent[0], stream=screen):
        sent[0] = 40
    assert "Broadcast #1" in screen.getvalue() and "40" in screen.getvalue()
