"""The bot as an operator runs it: settings checked at start, a dying background task ends
the process, probes and metrics on a running service, JSON logs without personal data."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from bot.app import BackgroundTaskDied, open_core, serve
from bot.channels.web import CSRF_HEADER, CSRF_VALUE
from bot.cli import main
from bot.config import Settings
from bot.logformat import JsonFormatter
from handlers.engine.prompt import Reply
from tests.conftest import PG_ADMIN_URL, _pg_dsn
from tests.fakes import DEFAULT_TOKEN, FakeBotAPI
from tests.waiting import patience, until

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of the machine or the checkout's .env leaks into the command."""
    for name in list(os.environ):
        if name.startswith(("THIDUA_", "TELEGRAM_", "ZALO_")) or name in (
            "DATABASE_URL",
            "REDIS_URL",
        ):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}")


# --- settings checked at start ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("THIDUA_TIMEZONE", "Mars/Olympus", "Asia/Ho_Chi_Minh"),
        ("THIDUA_WEB_PORT", "70000", "65535"),
        ("THIDUA_LOCALE", "fr", "vi or en"),
        ("THIDUA_LOG_FORMAT", "xml", "text or json"),
        ("DATABASE_URL", "mysql://root:hunter2@db/thidua", "postgresql+asyncpg://"),
        ("TELEGRAM_API_BASE", "api.telegram.org", "http(s) URL"),
        ("REDIS_URL", "http://cache:6379", "redis://"),
        ("TELEGRAM_BOT_TOKEN", "not-a-token-hunter2", "<digits>:<secret>"),
    ],
)
def test_a_bad_setting_stops_the_start_with_its_name(
    name: str,
    value: str,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv(name, value)
    assert main(["run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: bad setting {name}: ") and said in err
    assert "hunter2" not in err  # neither a password nor a token is echoed
    assert not (tmp_path / "thidua.db").exists()  # stopped before anything was opened


def test_the_webhook_secret_is_checked_with_its_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env(monkeypatch, tmp_path)
    monkeypatch.setenv("ZALO_WEBHOOK_URL", "https://bot.example.org/zalo")
    monkeypatch.setenv("ZALO_WEBHOOK_SECRET", "short")
    assert main(["run"]) == 2
    assert "ZALO_WEBHOOK_SECRET is required with ZALO_WEBHOOK_URL: 8-256" in capsys.readouterr().err


async def test_a_bad_time_zone_stops_the_real_process_at_once(tmp_path: Path) -> None:
    env = {**os.environ, "THIDUA_TIMEZONE": "Mars/Olympus", "THIDUA_WEB_PORT": "0"}
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'thidua.db'}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        env=env,
        cwd=tmp_path,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()  # it ends by itself: nothing is served
    assert proc.returncode == 2
    assert b"THIDUA_TIMEZONE" in err and b"Web chat" not in out


# --- a background task that dies ---------------------------------------------------------------


class BrokenChannel:
    """A channel whose receiving fails after it started, as a crashed poller would."""

    name = "broken"

    def __init__(self) -> None:
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, external_id: str, reply: Reply) -> None:
        raise AssertionError("nothing is sent in this test")

    async def receive(self) -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("the platform connection broke for good")


async def test_a_dying_channel_is_logged_and_ends_the_process(
    sqlite_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    channel = BrokenChannel()
    async with open_core(settings) as core:
        with caplog.at_level(logging.CRITICAL, logger="bot.app"), pytest.raises(BackgroundTaskDied):
            await serve(core, settings, [(channel, channel.receive)])
    assert channel.started and channel.stopped  # closed in order, not abandoned
    [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "the broken channel stopped" in record.getMessage()
    assert "the platform connection broke for good" in record.getMessage()
    assert record.exc_info is not None  # the traceback is in the log at once


# --- probes and metrics on a running service ------------------------------------------------------


@pytest.fixture
async def pg_database() -> AsyncIterator[tuple[str, str]]:
    """A database of its own on the shared server: (URL, name); dropped afterwards."""
    name = f"thidua_ops_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _slash, _db = PG_ADMIN_URL.rpartition("/")
    try:
        yield f"{base}/{name}", name
    finally:
        await drop_database(name)


async def drop_database(name: str) -> None:
    admin = await asyncpg.connect(_pg_dsn(PG_ADMIN_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def test_probes_and_metrics_of_a_running_service(
    pg_database: tuple[str, str], tmp_path: Path
) -> None:
    url, name = pg_database
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "THIDUA_WEB_PORT": str(port),
        "THIDUA_LOG_FORMAT": "json",
        "THIDUA_LOG_LEVEL": "INFO",
    }
    for setting in ("TELEGRAM_BOT_TOKEN", "ZALO_BOT_TOKEN", "ZALO_OA_APP_ID", "REDIS_URL"):
        env.pop(setting, None)
    stderr = tmp_path / "stderr.log"
    with stderr.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "demo"),
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=sink,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        # unsafe: the cookie of a server addressed by IP (127.0.0.1) is kept too.
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            ready: dict[str, object] = {}

            async def probe(path: str) -> tuple[int, str]:
                try:
                    async with http.get(base + path) as response:
                        return response.status, await response.text()
                except aiohttp.ClientConnectionError:
                    return 0, ""

            async def poll_ready() -> None:
                status, body = await probe("/readyz")
                ready.update({"status": status, "body": body})

            # Up and ready: the database at head, the web chat receiving, the scheduler known.
            # Starting takes as long as it takes while the process lives and is not stuck.
            starting = asyncio.get_running_loop().time()
            while True:
                await poll_ready()
                if ready["status"] == 200:
                    break
                assert proc.returncode is None, "the bot exited while starting"
                waited = asyncio.get_running_loop().time() - starting
                assert waited < patience(60), f"not ready after {waited:.0f} s: {ready}"
                await asyncio.sleep(0.2)
            checks = json.loads(str(ready["body"]))["checks"]
            assert checks["database"] == "ok" and checks["channel:web"] == "ok"
            assert checks["scheduler_role"] == "leader"
            assert (await probe("/healthz"))[0] == 200
            # Serving on uvloop (THIDUA_EVENT_LOOP=auto, installed with the package here).
            assert "(event loop: uvloop)" in stderr.read_text(encoding="utf-8")

            # One person's message shows in the metrics, by channel and outcome.
            headers = {CSRF_HEADER: CSRF_VALUE}
            async with http.post(
                base + "/api/signin", json={"role": "member"}, headers=headers
            ) as r:
                assert r.status == 200
            async with http.post(base + "/api/send", json={"text": "/start"}, headers=headers) as r:
                assert r.status == 200
            status, page = await probe("/metrics")
            assert status == 200
            assert 'thidua_updates_total{channel="web",outcome="answered"}' in page
            assert 'thidua_update_seconds_count{channel="web"}' in page
            assert "thidua_outbox_depth 0.0" in page and "thidua_scheduler_leader 1.0" in page
            # Calls to paths that are no webhook of this process are counted as refused.
            async with http.post(base + "/telegram/hook", data=b"{}") as r:
                assert r.status >= 400
            for made_up in ("/a", "/b", "/c"):  # paths that are no route: one label for all
                async with http.post(base + made_up, data=b"{}"):
                    pass
            page = (await probe("/metrics"))[1]
            assert 'thidua_webhook_rejections_total{path="other",status="404"} 4.0' in page
            assert '{path="/a"' not in page

            # The database goes away: not ready (503, saying why), still alive.
            await drop_database(name)
            await poll_ready()
            assert ready["status"] == 503
            assert json.loads(str(ready["body"]))["checks"]["database"].startswith("unreachable")
            assert (await probe("/healthz"))[0] == 200
            assert "thidua_database_errors_total 0.0" not in (await probe("/metrics"))[1]
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await until(lambda: proc.returncode is not None, what="the bot stopping after SIGTERM")
    assert proc.returncode == 0  # SIGTERM is a clean stop, even with the database gone
    lines = stderr.read_text(encoding="utf-8").splitlines()
    assert lines and all(json.loads(line)["level"] for line in lines)  # every line is JSON
    assert "0912345678" not in stderr.read_text(encoding="utf-8")


def test_json_logs_hold_no_statement_parameters_or_phone_numbers() -> None:
    try:
        raise RuntimeError(
            "(asyncpg.exceptions.UniqueViolationError) duplicate key\n"
            "[SQL: INSERT INTO people (full_name, phone) VALUES ($1, $2)]\n"
            "[parameters: ('Nguyễn Thị Hoa', '0912345678')]"
        )
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "bot.outbox",
            logging.ERROR,
            __file__,
            1,
            "reply to %s failed",
            ("84912345678",),
            sys.exc_info(),
        )
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["level"] == "ERROR" and entry["logger"] == "bot.outbox"
    assert entry["message"] == "reply to *** failed" and entry["error"] == "RuntimeError"
    assert "duplicate key" in entry["traceback"]
    assert "Nguyễn Thị Hoa" not in line and "912345678" not in line and "INSERT" not in line


def test_a_port_in_use_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_env(monkeypatch, tmp_path)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        monkeypatch.setenv("THIDUA_WEB_PORT", str(port))
        assert main(["demo"]) == 1
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "THIDUA_WEB_PORT" in err and str(port) in err
    assert "http://" not in out  # no address printed for a server that never listened
    assert out == ""  # refused first: no demo loaded, nothing else printed


async def test_a_polling_process_serves_the_probes_alone(sqlite_url: str, tmp_path: Path) -> None:
    """Telegram by long polling serves no web chat: the probes still answer on its address."""
    port = free_port()
    async with FakeBotAPI() as api:
        env = {
            **os.environ,
            "TELEGRAM_BOT_TOKEN": DEFAULT_TOKEN,
            "TELEGRAM_API_BASE": api.base_url,
            "DATABASE_URL": sqlite_url,
            "THIDUA_WEB_PORT": str(port),
            "THIDUA_LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)
        proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "bot", "run"),
            env=env,
            cwd=tmp_path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            async with aiohttp.ClientSession() as http:
                status, body = 0, ""
                starting = asyncio.get_running_loop().time()
                while status != 200:
                    assert proc.returncode is None, "the bot exited while starting"
                    waited = asyncio.get_running_loop().time() - starting
                    assert waited < patience(60), f"not ready after {waited:.0f} s: {body}"
                    await asyncio.sleep(0.2)
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                            status, body = response.status, await response.text()
                    except aiohttp.ClientConnectionError:
                        continue
                assert json.loads(body)["checks"]["channel:telegram"] == "ok"
                async with http.get(f"http://127.0.0.1:{port}/") as response:
                    assert response.status == 404  # no web chat, only the probes
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
            await until(lambda: proc.returncode is not None, what="the bot stopping")
        out = (await proc.stdout.read()).decode() if proc.stdout else ""
    assert proc.returncode == 0 and "Web chat" not in out and "Trang chat" not in out


async def test_a_scheduler_that_dies_ends_the_process_and_says_so(
    sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """What was seen before settings were checked: a time zone the scheduler cannot use
    killed its task silently while the web chat went on. Built here past the checks
    (model_construct), the scheduler's death now ends the process with a log line."""
    settings = Settings.model_construct(database_url=sqlite_url, timezone="Mars/Olympus")
    async with open_core(settings) as core:
        with caplog.at_level(logging.CRITICAL, logger="bot.app"), pytest.raises(BackgroundTaskDied):
            await serve(core, settings, [])
    [record] = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert record.getMessage().startswith("the scheduler stopped: ")
    assert "Mars/Olympus" in record.getMessage()
