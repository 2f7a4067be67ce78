"""The operator's probes on the web server: ``/healthz``, ``/readyz`` and ``/metrics``.

- ``/healthz``: the process answers HTTP (its event loop is not stuck). Nothing else is
  checked, so a database outage does not make an orchestrator kill every process at once.
- ``/readyz``: 200 when this process can do its work — the database answers and is at the
  newest migration, every configured channel's receiving task is running, and the scheduler
  knows whether it leads or follows; 503 with what is wrong otherwise (a reverse proxy then
  sends the webhooks to another process).
- ``/metrics``: Prometheus text (bot.metrics), the outbox's backlog read at each scrape.

When no web chat is served (Telegram by long polling only) :class:`ProbeServer` serves the
three on THIDUA_WEB_HOST:THIDUA_WEB_PORT alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import metrics
from storage.db import at_head
from storage.health import outbox_backlog
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.scheduler import Scheduler

log = logging.getLogger(__name__)

# A probe must answer before the prober gives up (Kubernetes: 1 s by default, Docker: 30 s):
# a database that does not answer in this long counts as down.
DATABASE_PATIENCE = 3.0
PROBE_PATHS = ("/healthz", "/readyz", "/metrics")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Health:
    """What the probes look at; the composition root fills in the tasks as it starts them."""

    db: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    receivers: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    scheduler: Scheduler | None = None

    async def readiness(self) -> dict[str, str]:
        """Each check's state; every value is "ok" when the process is ready."""
        checks = {"database": await self._database()}
        for name, task in sorted(self.receivers.items()):
            checks[f"channel:{name}"] = "ok" if not task.done() else "stopped"
        role = self.scheduler.role if self.scheduler is not None else "starting"
        checks["scheduler"] = "ok" if role in ("leader", "follower") else role
        if role in ("leader", "follower"):
            checks["scheduler_role"] = role
        return checks

    async def _database(self) -> str:
        try:
            async with asyncio.timeout(DATABASE_PATIENCE):
                async with self.db.connect() as connection:
                    await connection.execute(text("SELECT 1"))
                current = await at_head(self.db)
        except TimeoutError:
            return "not answering"
        except Exception as exc:  # unreachable, refused, authentication: all "not ready"
            return f"unreachable ({exc.__class__.__name__})"
        return "ok" if current else "migrations not at head (run `thidua db upgrade`)"

    # --- the routes ----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/healthz", self.healthz),
            web.get("/readyz", self.readyz),
            web.get("/metrics", self.metrics),
        ]

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(self, request: web.Request) -> web.Response:
        checks = await self.readiness()
        ready = all(value == "ok" for key, value in checks.items() if key != "scheduler_role")
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status=200 if ready else 503,
        )

    async def metrics(self, request: web.Request) -> web.Response:
        backlog: tuple[int, float] | None = None
        try:
            async with asyncio.timeout(DATABASE_PATIENCE), self.sessionmaker() as session:
                depth, oldest = await outbox_backlog(session)
            age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
            backlog = (depth, max(age, 0.0))
        except Exception as exc:  # the counters are still worth serving
            log.warning("metrics: outbox backlog not read: %s", exc.__class__.__name__)
        body, content_type = metrics.render(backlog)
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response


def webhook_rejections(probe_paths: tuple[str, ...] = PROBE_PATHS) -> Middleware:
    """An aiohttp middleware counting refused webhook calls (4xx/5xx to a POST)."""

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            _count(request, exc.status)
            raise
        _count(request, response.status)
        return response

    def _count(request: web.Request, status: int) -> None:
        # Only the platforms POST outside /api/ (the web chat's own calls are under it).
        if (
            request.method == "POST"
            and status >= 400
            and not request.path.startswith("/api/")
            and request.path not in probe_paths
        ):
            # A served route's own path, never the path asked for: anyone can POST to a
            # million made-up paths, and each label value is a time series kept forever.
            resource = request.match_info.route.resource
            path = resource.canonical if resource is not None else "other"
            metrics.WEBHOOK_REJECTIONS.labels(path, str(status)).inc()

    return count


class ProbeServer:
    """The probes alone on an address, for a process that serves no web chat."""

    def __init__(self, health: Health, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.app = web.Application()
        self.app.add_routes(health.routes())
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()
        if self._runner.addresses:
            self.port = int(self._runner.addresses[0][1])
        log.info("health probes at http://%s:%s/healthz", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
