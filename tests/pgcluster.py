"""A private PostgreSQL server a test may stop and start without disturbing anyone.

Other tests share the server at 127.0.0.1:5432, so a restart test brings its own: a cluster
made with Debian's ``initdb`` in a temporary directory, on a random free port, its socket in
that directory too. The binaries refuse to run as root, so they run as the ``postgres`` user
(``runuser``), in a directory that user owns.
"""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

_BIN_GLOB = "/usr/lib/postgresql/*/bin"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def missing_reason() -> str | None:
    """Why a private cluster cannot be made here, or None when it can."""
    bins = sorted(glob.glob(_BIN_GLOB))
    if not bins or not Path(bins[-1], "initdb").exists() or not Path(bins[-1], "pg_ctl").exists():
        return "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql"
    if shutil.which("runuser") is None:
        return "runuser not found (needed to run initdb as the postgres user)"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "no postgres user to run initdb as"
    if os.geteuid() != 0:
        return "must run as root to switch to the postgres user"
    return None


class PrivateCluster:
    def __init__(self) -> None:
        self.bin = Path(sorted(glob.glob(_BIN_GLOB))[-1])
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="thidua-pg-"))
        self.data = self.root / "data"
        user = pwd.getpwnam("postgres")
        os.chown(self.root, user.pw_uid, user.pw_gid)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-A",
            "trust",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-sync",
            "--locale=C.UTF-8",
        )

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _command(self, tool: str, *args: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", str(self.bin / tool), *args]

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(self._command(tool, *args), check=True, capture_output=True, cwd="/")

    def _start_args(self) -> list[str]:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            # fsync off only spares the disk: a server crash (not the machine's) keeps every
            # commit. synchronous_commit stays on, as in production: a crash must not lose
            # a commit the bot was told about.
            "-c fsync=off"
        )
        return ["-D", str(self.data), "-o", options, "-l", str(self.root / "server.log"), "-w"]

    def start_sync(self) -> None:
        self._run("pg_ctl", *self._start_args(), "start")

    async def _pg_ctl(self, *args: str) -> None:
        proc = await asyncio.create_subprocess_exec(
            *self._command("pg_ctl", *args),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            cwd="/",
        )
        _out, err = await proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed: {err.decode(errors='replace')}")

    async def start(self) -> None:
        await self._pg_ctl(*self._start_args(), "start")

    async def stop(self, mode: str = "fast") -> None:
        """``fast`` ends every session at once (as a restart does); ``immediate`` is a crash."""
        await self._pg_ctl("-D", str(self.data), "-m", mode, "-w", "stop")

    def destroy(self) -> None:
        subprocess.run(
            self._command("pg_ctl", "-D", str(self.data), "-m", "immediate", "stop"),
            capture_output=True,
            cwd="/",
        )
        shutil.rmtree(self.root, ignore_errors=True)
