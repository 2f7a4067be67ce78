"""Benchmark: how long `thidua run` takes to be ready, and to resume a broadcast after kill -9.

    python -m bench.start                       # SQLite in a temporary folder
    python -m bench.start --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    python -m bench.start --starts 5 --recipients 300

The bot is the real command (``python -m bot run``) against the local Telegram Bot API
(tests.fakes.FakeBotAPI, real HTTP on 127.0.0.1), over an up-to-date database with a
province, a roster and a broadcast. Measured:

1. start to ready, ``--starts`` times: from the process start to its "ready" log line
   (channels receiving, outbox, broadcasts and scheduler running), the CPU the process used
   by then, and when the first getUpdates reached the API; the bare aiogram echo bot
   (bench/echo_bot.py) is started the same way, in the same run, as the floor of what Python
   and aiogram cost on this machine;
2. a broadcast to ``--recipients`` members at ``--rate`` messages/s; the bot is killed with
   SIGKILL at 30 % and started again: the time from the restart to the first message of the
   resumed broadcast, and the pause in delivery the members saw.

Targets (issue 16): ready within 3 s of CPU; a broadcast resumed within 5 s of the restart.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import sys
import time
from dataclasses import dataclass

from bench.broadcast import FIRST_CHAT, populate
from bench.common import ROOT, cpu_seconds, database, dialect_of, verdict
from storage.db import make_engine, make_sessionmaker
from storage.seed import prepare_database
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI

READY_CPU_TARGET = 3.0
RESUME_TARGET = 5.0
READY_MARK = b"ready:"


@dataclass
class Start:
    """One start of a process, seen from outside."""

    ready_s: float  # wall clock, process start to ready
    cpu_s: float  # the process's CPU by then
    polling_s: float  # process start to its first getUpdates


def bot_env(api: FakeBotAPI, url: str, rate: float) -> dict[str, str]:
    env = {
        **os.environ,
        "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
        "TELEGRAM_API_BASE": api.base_url,
        "DATABASE_URL": url,
        "THIDUA_LOG_LEVEL": "INFO",
        "THIDUA_BROADCAST_RATE": str(rate),
        "PYTHONPATH": str(ROOT),
        # A polling process serves its probes on the web port: any free one here.
        "THIDUA_WEB_PORT": "0",
    }
    env.pop("REDIS_URL", None)
    return env


async def spawn(cmd: list[str], env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *cmd,
        env=env,
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def until_ready(proc: asyncio.subprocess.Process, timeout: float) -> None:  # noqa: ASYNC109
    """Read the process's log until its ready line (the rest of the log keeps draining)."""
    assert proc.stderr is not None
    stderr = proc.stderr

    async def read() -> None:
        while True:
            line = await stderr.readline()
            if not line:
                raise RuntimeError(f"the process exited ({await proc.wait()}) before ready")
            if READY_MARK in line:
                return

    await asyncio.wait_for(read(), timeout)
    asyncio.get_running_loop().create_task(_drain(stderr))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.read(65536):
        pass


async def until_polling(api: FakeBotAPI, since: int, timeout: float) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not any(c.method.lower() == "getupdates" for c in api.calls[since:]):
        if time.monotonic() > deadline:
            raise RuntimeError("no getUpdates")
        await asyncio.sleep(0.005)


async def stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
    await proc.wait()


async def one_start(api: FakeBotAPI, cmd: list[str], env: dict[str, str], echo: bool) -> Start:
    since = len(api.calls)
    began = time.monotonic()
    proc = await spawn(cmd, env)
    try:
        if echo:  # the echo bot logs nothing: it is ready when it polls
            await until_polling(api, since, 60)
            ready = polling = time.monotonic() - began
        else:
            await until_ready(proc, 60)
            ready = time.monotonic() - began
            cpu = cpu_seconds(proc.pid)
            await until_polling(api, since, 60)
            polling = time.monotonic() - began
            return Start(ready, cpu, polling)
        return Start(ready, cpu_seconds(proc.pid), polling)
    finally:
        await stop(proc)


def describe(label: str, starts: list[Start]) -> str:
    ready = statistics.median(s.ready_s for s in starts)
    cpu = statistics.median(s.cpu_s for s in starts)
    polling = statistics.median(s.polling_s for s in starts)
    return (
        f"{label:<22} ready {ready:.2f} s, CPU {cpu:.2f} s, first getUpdates {polling:.2f} s "
        f"(median of {len(starts)})"
    )


async def resume_after_kill(
    api: FakeBotAPI, env: dict[str, str], recipients: int, kill_at: float
) -> tuple[float, float, float]:
    """(restart to first resumed message, pause in delivery, restart to ready), in seconds."""
    chats = range(FIRST_CHAT, FIRST_CHAT + recipients)

    def delivered() -> int:
        return sum(1 for chat in chats if api.messages(chat))

    proc = await spawn([sys.executable, "-m", "bot", "run"], env)
    await until_ready(proc, 60)
    while delivered() < recipients * kill_at:
        if proc.returncode is not None:
            raise RuntimeError("the bot ended before the kill")
        await asyncio.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    await proc.wait()
    last_before = max(m.sent_at for chat in chats for m in api.messages(chat))
    count = len(api.all_messages())
    restarted = time.monotonic()
    proc = await spawn([sys.executable, "-m", "bot", "run"], env)
    try:
        await until_ready(proc, 60)
        ready = time.monotonic() - restarted
        while len(api.all_messages()) == count or not any(
            m.sent_at > restarted for chat in chats for m in api.messages(chat)[-1:]
        ):
            if proc.returncode is not None:
                raise RuntimeError("the restarted bot ended")
            if time.monotonic() - restarted > 60:
                raise RuntimeError("the broadcast was not resumed within 60 s")
            await asyncio.sleep(0.01)
        first_after = min(
            m.sent_at for chat in chats for m in api.messages(chat) if m.sent_at > restarted
        )
    finally:
        await stop(proc)
    return first_after - restarted, first_after - last_before, ready


async def main_async(args: argparse.Namespace) -> int:
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    async with database(args.database_url, prefix="thidua_bench_start") as url:
        engine = make_engine(url)
        try:
            await prepare_database(engine)
            await populate(make_sessionmaker(engine), args.recipients)
        finally:
            await engine.dispose()
        async with FakeBotAPI(rate_limit=args.rate) as api:
            env = bot_env(api, url, args.rate)
            # The broadcast is due: park it until the resume run, so that starts measure the
            # start and not the start plus sending.
            await _pause_broadcasts(url, paused=True)
            bot = [
                await one_start(api, [sys.executable, "-m", "bot", "run"], env, echo=False)
                for _ in range(args.starts)
            ]
            echo = [
                await one_start(api, [sys.executable, "-m", "bench.echo_bot"], env, echo=True)
                for _ in range(args.starts)
            ]
            print(f"{dialect_of(url)}, {args.recipients} members on Telegram")
            print(describe("thidua run", bot))
            print(describe("bare aiogram echo bot", echo))
            ready_cpu = statistics.median(s.cpu_s for s in bot)
            echo_cpu = statistics.median(s.cpu_s for s in echo)
            print(f"  CPU to ready       {ready_cpu / echo_cpu:.1f} x the echo bot's")
            await _pause_broadcasts(url, paused=False)
            resume, pause, ready = await resume_after_kill(api, env, args.recipients, 0.3)
    print(
        f"kill -9 mid-broadcast: restarted bot ready after {ready:.2f} s, first resumed "
        f"message {resume:.2f} s after the restart ({resume - ready:.2f} s after ready); "
        f"delivery paused {pause:.2f} s in all (the kill itself included)"
    )
    ok = ready_cpu <= READY_CPU_TARGET and resume <= RESUME_TARGET
    print(f"ready CPU <= {READY_CPU_TARGET:g} s: {verdict(ready_cpu <= READY_CPU_TARGET)}")
    print(f"resumed <= {RESUME_TARGET:g} s: {verdict(resume <= RESUME_TARGET)}")
    print("RESULT", "ok" if ok else "targets missed")
    return 0 if ok else 1


async def _pause_broadcasts(url: str, *, paused: bool) -> None:
    """Move the benchmark's broadcast out of (or back into) the due ones."""
    from datetime import timedelta

    from sqlalchemy import update

    from storage.models import Broadcast
    from storage.types import utcnow

    engine = make_engine(url)
    try:
        async with engine.begin() as conn:
            later = utcnow() + (timedelta(days=365) if paused else timedelta(0))
            await conn.execute(update(Broadcast).values(scheduled_at=later))
    finally:
        await engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--starts", type=int, default=3, help="starts of each bot to time")
    parser.add_argument("--recipients", type=int, default=300)
    parser.add_argument("--rate", type=float, default=30.0, help="the fake API's limit, msg/s")
    return asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    raise SystemExit(main())
