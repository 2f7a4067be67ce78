"""What `/metrics` reports, in the Prometheus text format (prometheus-client).

The counters are fed where things happen, by one-line calls: the engine's observer (updates
by channel and outcome, and their latency), the outbox dispatcher, the broadcast sender, the
reminder job, the web server's middleware (webhook calls refused) and the database engine's
error event. The outbox's depth and age are read from the database when scraped.

One registry of our own rather than prometheus-client's global one: a test process that
builds several bots, or imports this twice, gets no "duplicated timeseries" error, and the
page shows only what this bot reports (plus the process's CPU and memory).
"""

from __future__ import annotations

from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)

UPDATES = Counter(
    "thidua_updates",
    "Updates handled, by channel and outcome (answered, dropped by the flood guard, "
    "busy: the database did not answer in time)",
    ["channel", "outcome"],
    registry=REGISTRY,
)
UPDATE_SECONDS = Histogram(
    "thidua_update_seconds",
    "Time to handle one update inside the bot (the unit of work, redone races included)",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
OUTBOX_DELIVERIES = Counter(
    "thidua_outbox_deliveries",
    "Messages to others (notifications, reminders, digests) delivered or failed",
    ["channel", "outcome"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge("thidua_outbox_depth", "Messages waiting in the outbox", registry=REGISTRY)
OUTBOX_AGE = Gauge(
    "thidua_outbox_oldest_seconds",
    "Age of the oldest message waiting in the outbox (0 when empty)",
    registry=REGISTRY,
)
BROADCAST_MESSAGES = Counter(
    "thidua_broadcast_messages",
    "Broadcast messages by outcome (sent, failed, blocked, unreachable)",
    ["outcome"],
    registry=REGISTRY,
)
REMINDERS = Counter(
    "thidua_reminders_queued",
    "Reminders queued for sending by the reminder passes",
    registry=REGISTRY,
)
WEBHOOK_REJECTIONS = Counter(
    "thidua_webhook_rejections",
    "Webhook calls refused, by path and status (401 wrong secret, 400 bad body, "
    "503 not taken: the platform sends it again)",
    ["path", "status"],
    registry=REGISTRY,
)
DATABASE_ERRORS = Counter(
    "thidua_database_errors",
    "Errors raised by the database driver (connection lost, timeouts, conflicts)",
    registry=REGISTRY,
)
SCHEDULER_LEADER = Gauge(
    "thidua_scheduler_leader",
    "1 while this process runs the schedule (holds the leader lock), else 0",
    registry=REGISTRY,
)

BROADCAST_FINAL = ("sent", "failed", "blocked", "unreachable")


def update_handled(channel: str, outcome: str, seconds: float) -> None:
    """The engine's observer (Engine.on_handled)."""
    UPDATES.labels(channel, outcome).inc()
    UPDATE_SECONDS.labels(channel).observe(seconds)


def outbox_delivered(channel: str, outcome: str) -> None:
    OUTBOX_DELIVERIES.labels(channel, outcome).inc()


def broadcast_outcome(state: str) -> None:
    """A recipient's delivery reached a final state (retries are not counted)."""
    if state in BROADCAST_FINAL:
        BROADCAST_MESSAGES.labels(state).inc()


def reminders_queued(count: int) -> None:
    if count:
        REMINDERS.inc(count)


def database_error(*_args: Any) -> None:
    """SQLAlchemy's ``handle_error`` event (bot.app.open_core listens with this)."""
    DATABASE_ERRORS.inc()


def render(outbox: tuple[int, float] | None = None) -> tuple[bytes, str]:
    """The page and its content type; ``outbox`` is (depth, oldest age in s) read just now."""
    if outbox is not None:
        OUTBOX_DEPTH.set(outbox[0])
        OUTBOX_AGE.set(outbox[1])
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
