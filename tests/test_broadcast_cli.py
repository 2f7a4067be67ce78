"""`thidua broadcast list / status [--follow] / send / cancel` as an officer's admin uses them."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from storage.db import make_engine, make_sessionmaker
from storage.models import Broadcast, BroadcastStatus, ChannelIdentity, Person
from storage.seed import prepare_database
from tests.factories import make_org
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI
from tests.waiting import until

ROOT = Path(__file__).resolve().parent.parent
LATER = datetime(2031, 3, 8, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội


async def setup(url: str, members: int = 3, *, scheduled_at: datetime = LATER) -> None:
    engine = make_engine(url)
    try:
        await prepare_database(engine)
        sessions = make_sessionmaker(engine)
        org = await make_org(sessions)
        async with sessions() as session, session.begin():
            for i in range(members):
                person = Person(full_name=f"Đoàn viên {i}", unit_id=org.garment.id)
                session.add(person)
                await session.flush()
                session.add(
                    ChannelIdentity(
                        channel="telegram", external_id=str(8100 + i), person_id=person.id
                    )
                )
            session.add(
                Broadcast(
                    unit_id=org.upper.id,
                    text="Kính gửi các đồng chí: phát động thi đua ngày 8/3.",
                    audience={"unit_ids": [], "role": "all", "unregistered": False},
                    status=BroadcastStatus.SCHEDULED,
                    scheduled_at=scheduled_at,
                )
            )
    finally:
        await engine.dispose()


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    for name in ("TELEGRAM_BOT_TOKEN", "THIDUA_LOG_LEVEL", "REDIS_URL", "THIDUA_LOCALE"):
        monkeypatch.delenv(name, raising=False)
    return url


def test_list_status_and_cancel(db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["broadcast", "list"]) == 0
    assert "No broadcasts." in capsys.readouterr().out
    asyncio.run(setup(db))

    assert main(["broadcast", "list"]) == 0
    listed = capsys.readouterr().out
    assert "#1" in listed and "scheduled" in listed and "2031-03-08 08:00" in listed

    assert main(["broadcast", "status", "1"]) == 0
    status = capsys.readouterr().out
    assert "Thông báo #1: đã hẹn giờ" in status and "Gửi lúc 08:00 08/03/2031" in status

    assert main(["broadcast", "send", "1"]) == 1  # no platform to send on
    assert "TELEGRAM_BOT_TOKEN" in capsys.readouterr().err

    assert main(["broadcast", "cancel", "1"]) == 0
    assert main(["broadcast", "status", "1"]) == 0
    assert "Thông báo #1: đã hủy" in capsys.readouterr().out
    assert main(["broadcast", "cancel", "1"]) == 1
    assert main(["broadcast", "status", "7"]) == 1
    assert "no broadcast #7" in capsys.readouterr().err


async def test_follow_shows_progress_until_the_report(sqlite_url: str, tmp_path: Path) -> None:
    await setup(sqlite_url, members=40, scheduled_at=datetime(2026, 1, 1, tzinfo=UTC))
    async with FakeBotAPI(rate_limit=20) as api:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": sqlite_url,
            "THIDUA_BROADCAST_RATE": "20",
            "THIDUA_LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)

        async def thidua(*args: str) -> asyncio.subprocess.Process:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                *args,
                env=env,
                cwd=ROOT,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
            )

        sender = await thidua("broadcast", "send", "1")
        follower = await thidua("broadcast", "status", "1", "--follow")
        # While messages keep arriving the two are working: no fixed limit on a busy machine.
        following = asyncio.create_task(follower.communicate())
        sending = asyncio.create_task(sender.communicate())
        await until(
            lambda: following.done() and sending.done(),
            what="the sender and the follower finishing",
            progress=lambda: len(api.all_messages()),
        )
        followed, _ = following.result()
        sent, _ = sending.result()
    assert sender.returncode == 0 and follower.returncode == 0
    out = followed.decode()
    assert "#1 " in out and "/s" in out  # at least one progress line while it ran
    assert "Thông báo #1: đã gửi xong" in out and "✅ Đã nhận: 40" in out
    # The rostered Nguyễn Thị Hoa of make_org never wrote to the bot: counted apart.
    assert "Người nhận: 40 (và 1 người chưa từng nhắn với bot)" in out
    assert "✅ Đã nhận: 40" in sent.decode()
