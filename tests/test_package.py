"""The bot as released: the wheel built from the checkout, installed the way the container
image installs it (deploy/image.sh, which the Dockerfile runs), used from another folder.

No container daemon runs here, so the image's steps are run by this test instead: build,
install into a fresh virtualenv with the pinned dependencies, start, health check, stop.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.waiting import patience, until

# One worker builds and installs the wheel once for all of these (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("package")

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "deploy" / "image.sh"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clean_checkout(target: Path) -> Path:
    """The files a fresh clone would have (tracked, or new and not ignored): no compiled
    catalogue, no virtualenv, nothing built before."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            destination.write_bytes(source.read_bytes())
            destination.chmod(source.stat().st_mode)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """deploy/image.sh build + install: the virtualenv the image runs (its prefix)."""
    base = tmp_path_factory.mktemp("image")
    source = clean_checkout(base / "src")
    assert not list(source.glob("locales/*/LC_MESSAGES/*.mo"))  # compiled by the build
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(
        ["sh", str(SCRIPT), "build", str(source), str(base / "wheels")], check=True, env=env
    )
    subprocess.run(
        ["sh", str(SCRIPT), "install", str(base / "wheels"), str(base / "venv")],
        check=True,
        env=env,
    )
    yield base


def bot_env(base: Path, **settings: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("THIDUA_", "TELEGRAM_", "ZALO_", "PYTHON", "VIRTUAL_ENV"))
        and name not in ("DATABASE_URL", "REDIS_URL")
    }
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{base / 'thidua.db'}"
    return {**env, **settings}


def test_the_wheel_carries_the_compiled_catalogues(installed: Path) -> None:
    [wheel] = (installed / "wheels").glob("thidua_bot-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"locales/vi/LC_MESSAGES/messages.mo", "locales/en/LC_MESSAGES/messages.mo"} <= names
    assert "storage/migrations/versions/0001_initial.py" in names or any(
        n.startswith("storage/migrations/versions/") for n in names
    )


def test_the_installed_bot_speaks_vietnamese_from_any_folder(installed: Path) -> None:
    elsewhere = installed / "elsewhere"
    elsewhere.mkdir(exist_ok=True)
    chat = subprocess.run(
        [str(installed / "venv" / "bin" / "thidua"), "chat"],
        cwd=elsewhere,  # not the checkout: no locales/ folder beside it
        input="0912 345 678\n/quit\n",
        capture_output=True,
        text=True,
        env=bot_env(installed),
        timeout=patience(120),
        check=True,
    )
    assert "Xin chào! Mình là trợ lý đăng ký thi đua của công đoàn." in chat.stdout
    assert "Hello" not in chat.stdout


async def test_the_image_starts_serves_its_health_check_and_stops(installed: Path) -> None:
    port = free_port()
    env = bot_env(installed, THIDUA_WEB_PORT=str(port), THIDUA_WEB_HOST="127.0.0.1")
    venv = str(installed / "venv")
    proc = await asyncio.create_subprocess_exec(
        "sh",
        str(SCRIPT),
        "start",
        venv,
        env=env,
        cwd=installed,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )

    async def healthcheck() -> int:
        check = await asyncio.create_subprocess_exec(
            "sh", str(SCRIPT), "healthcheck", venv, env=env
        )
        return await check.wait()

    try:
        # The HEALTHCHECK fails until the server listens, then passes.
        healthy = False
        while not healthy:
            assert proc.returncode is None, "the image's start command exited"
            healthy = await healthcheck() == 0
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/") as page:
            title = re.search(r"<title>(.*?)</title>", await page.text())
        assert title is not None and title.group(1) == "Đăng ký thi đua"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)  # what `docker stop` sends (exec: the bot itself)
        await until(lambda: proc.returncode is not None, what="the bot stopping")
    assert proc.returncode == 0
    assert await healthcheck() == 1  # and the check notices it is gone


def test_the_minimum_versions_are_the_declared_floors() -> None:
    """constraints-min.txt (what `make test-min` installs) pins every runtime dependency at
    the floor pyproject.toml declares, and each has a cap below the next major."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    floors = {}
    for requirement in project["dependencies"]:
        match = re.fullmatch(
            r"([A-Za-z0-9_.-]+)(?:\[[a-z]+\])?>=([0-9.]+),<([0-9.]+)(?:; .+)?", requirement
        )
        assert match is not None, f"{requirement}: needs a floor and a cap"
        floors[match.group(1).lower()] = match.group(2)
    pinned = {}
    for line in (ROOT / "constraints-min.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            pinned[name.strip().lower()] = version.strip()
    assert set(pinned) == set(floors)
    for name, floor in floors.items():
        padded = [*floor.split("."), "0", "0"][:3]
        assert pinned[name].split(".")[: len(padded)] == padded, name


def test_the_example_environment_lists_every_setting() -> None:
    """.env.example is where an operator learns the settings: none may be missing."""
    from bot.config import Settings

    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    listed = set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", example, flags=re.MULTILINE))
    settings = {
        str(alias)
        for field in Settings.model_fields.values()
        for alias in getattr(field.validation_alias, "choices", ())
    }
    assert settings - listed == set()


def test_the_deployment_files_run_what_the_script_does() -> None:
    """The Dockerfile, compose file and systemd unit start the bot the tested way."""
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert "deploy/image.sh build" in dockerfile and "image.sh install" in dockerfile
    assert re.search(r"^USER thidua$", dockerfile, flags=re.MULTILINE)
    assert 'CMD ["sh", "/opt/thidua/image.sh", "healthcheck"]' in dockerfile
    compose = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    for service in ("db:", "redis:", "bot1:", "bot2:", "proxy:"):
        assert f"\n  {service}" in compose
    unit = (ROOT / "deploy" / "systemd" / "thidua.service").read_text(encoding="utf-8")
    assert "ExecStart=/opt/thidua/venv/bin/thidua run" in unit and "Restart=on-failure" in unit
