"""Benchmark: the officers' digest and the reminder selection on a national-scale tree.

    python -m bench.digest                         # SQLite in a temporary folder
    python -m bench.digest --database-url postgresql+asyncpg://postgres@127.0.0.1/test
    python -m bench.digest --registrations 100000 --units 2000 --members 100000   # quicker

Builds (fast: COPY on PostgreSQL, executemany on SQLite) a province of ``--units`` units (the
province, 50 upper-level unions, grassroots unions below), ``--members`` members (85 % with a
Telegram chat, 2 % with a registration left half-way in the chat), and ``--registrations``
registrations in one campaign: a collective title per grassroots union, "Lao động tiên tiến"
for most members and "Chiến sĩ thi đua cơ sở" for some of them, a few withdrawn; lists sent
upward by most units, works and initiatives. Then, on a warm database, the median of
``--repeat`` runs of:

* the digest of the province (storage.stats.digest_data and its text; the XLSX and the chart
  that go with it are files, made in a thread, and not part of these figures), against the
  same numbers counted by hand-written SQL (bench.digest.HAND_SQL) in the same run;
* the reminder recipient selection of the province (storage.reminders.members_due streamed to
  the end, each batch with its latest chat address, as the reminder pass reads them).

Targets: digest ≤ 1 s on PostgreSQL, ≤ 3 s on SQLite, ≤ 1.5 × the hand-written SQL; the
reminder selection ≤ 2 s on PostgreSQL. The plans of the statements (EXPLAIN ANALYZE on
PostgreSQL, EXPLAIN QUERY PLAN on SQLite) are written to bench/plans/. A PostgreSQL URL names
a server: a database of its own is created there and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bench.common import ROOT, database, dialect_of, verdict
from handlers.digest import digest_text
from handlers.reminders import ReminderPolicy
from storage.db import make_engine, make_sessionmaker
from storage.models import Campaign, Unit
from storage.reminders import addressed, members_due
from storage.seed import prepare_database
from storage.stats import digest_data

PLANS = ROOT / "bench" / "plans"
UPPERS = 50
NOW = datetime(2027, 1, 18, 1, 0, tzinfo=UTC)  # 08:00 in Hà Nội, a week before the deadline
DUE_KEY = "deadline:2027-01-25:-7d"
COUNTED = ("submitted", "approved", "returned")
TARGETS = {"postgresql": 1.0, "sqlite": 3.0}
HAND_RATIO = 1.5
REMINDER_TARGET = 2.0


# --- the data ---------------------------------------------------------------------------------


@dataclass
class Plan:
    """Every row of the synthetic tree, as tuples in column order, made before any insert."""

    tables: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = field(default_factory=dict)
    root_id: int = 1
    campaign_id: int = 1

    def add(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        self.tables[table] = (columns, rows)

    def count(self, table: str) -> int:
        return len(self.tables[table][1])


def make_plan(units: int, members: int, registrations: int, seed: int) -> Plan:
    """The organisation, in memory. Ids are given (fixed) so related rows can point at them."""
    rng = random.Random(seed)
    now = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
    plan = Plan()
    grassroots = units - 1 - UPPERS
    if grassroots < UPPERS:
        raise SystemExit(f"--units must be at least {2 * UPPERS + 1}")

    unit_rows: list[tuple[Any, ...]] = [
        (
            1,
            "LDLD-BENCH",
            "LĐLĐ tỉnh Benchmark",
            "ldld tinh benchmark",
            "province",
            None,
            "/1/",
            now,
        )
    ]
    for u in range(UPPERS):
        uid = 2 + u
        unit_rows.append(
            (uid, f"KCN-{u}", f"Công đoàn KCN {u}", f"cong doan kcn {u}", "upper", 1,
             f"/1/{uid}/", now)
        )  # fmt: skip
    first_grassroots = 2 + UPPERS
    grassroots_ids = list(range(first_grassroots, first_grassroots + grassroots))
    for g, uid in enumerate(grassroots_ids):
        upper = 2 + g % UPPERS
        unit_rows.append(
            (uid, f"CDCS-{g}", f"Công đoàn cơ sở Công ty {g}", f"cong doan co so cong ty {g}",
             "grassroots", upper, f"/1/{upper}/{uid}/", now)
        )  # fmt: skip
    plan.add(
        "units",
        ["id", "code", "name", "search_name", "kind", "parent_id", "path", "created_at"],
        unit_rows,
    )

    deadline = date(2027, 1, 25)
    plan.add(
        "campaigns",
        ["id", "code", "name", "issuer_unit_id", "year", "registration_deadline",
         "title_codes", "settings", "receipt_seq", "created_at", "updated_at"],
        [(1, "TD2027", "Phong trào thi đua năm 2027", 1, 2027, deadline,
          json.dumps(["LDTT", "CSTDCS", "TTLDTT", "TTLDXS"]), "{}", 0, now, now)],
    )  # fmt: skip

    # Members, spread evenly over the grassroots unions; the first member of each is its
    # leader. A fifth of the people have a registration status other than submitted.
    people = [
        (pid, f"Đoàn viên {pid}", f"09{pid:08d}", None, grassroots_ids[(pid - 1) % grassroots],
         "roster", None, False, now, now)
        for pid in range(1, members + 1)
    ]  # fmt: skip
    plan.add(
        "people",
        ["id", "full_name", "phone", "position", "unit_id", "source", "locale",
         "reminders_muted", "created_at", "updated_at"],
        people,
    )  # fmt: skip
    roles = [
        (n + 1, n + 1, uid, "leader", now) for n, uid in enumerate(grassroots_ids) if n < members
    ]
    roles += [(len(roles) + 1 + u, u + 1, 2 + u, "officer", now) for u in range(UPPERS)]
    plan.add("unit_roles", ["id", "person_id", "unit_id", "role", "created_at"], roles)

    chats = [pid for pid in range(1, members + 1) if pid % 20 not in (3, 7, 11)]  # 85 %
    plan.add(
        "channel_identities",
        ["id", "channel", "external_id", "person_id", "display_name", "created_at"],
        [(n + 1, "telegram", str(10_000_000 + pid), pid, None, now) for n, pid in enumerate(chats)],
    )
    drafts = [n + 1 for n, pid in enumerate(chats) if pid % 50 == 1]  # 2 % of the members
    plan.add(
        "conversations",
        ["id", "identity_id", "flow", "step", "data", "version", "updated_at"],
        [
            (n + 1, iid, "title", "commitment", json.dumps({"draft": {"campaign_id": 1}}), 3, now)
            for n, iid in enumerate(drafts)
        ],
    )

    # Registrations: a collective title per grassroots union, then LĐTT for people in
    # order, then CSTĐCS for some of those, until the total is reached.
    statuses = ["submitted"] * 15 + ["approved"] * 3 + ["returned", "withdrawn"]
    regs: list[tuple[Any, ...]] = []

    def registration(title: str, collective: bool, pid: int | None, uid: int) -> None:
        n = len(regs) + 1
        status = statuses[rng.randrange(len(statuses))]
        withdrawn = now if status == "withdrawn" else None
        regs.append(
            (n, f"TD2027-{n:07d}", 1, title, collective, pid, uid, status, None, "chat", pid,
             now, now, withdrawn)
        )  # fmt: skip

    for uid in grassroots_ids:
        if len(regs) >= registrations:
            break
        registration("TTLDTT", True, None, uid)
    individual = registrations - len(regs)
    # About 70 % of the members register LĐTT; CSTĐCS fills the rest of the total.
    ldtt = min(members, max(individual * 7 // 10, individual - members))
    for pid in range(1, ldtt + 1):
        registration("LDTT", False, pid, grassroots_ids[(pid - 1) % grassroots])
    pid = 0
    while len(regs) < registrations:
        pid = pid % ldtt + 1
        registration("CSTDCS", False, pid, grassroots_ids[(pid - 1) % grassroots])
    plan.add(
        "registrations",
        ["id", "receipt_no", "campaign_id", "title_code", "is_collective", "person_id",
         "unit_id", "status", "commitment", "source", "entered_by_id", "created_at",
         "updated_at", "withdrawn_at"],
        regs,
    )  # fmt: skip

    submissions: list[tuple[Any, ...]] = []
    for n, uid in enumerate(grassroots_ids):
        state = ("pending", "pending", "approved", "approved", "returned", None)[n % 6]
        if state is not None:
            submissions.append((len(submissions) + 1, 1, uid, state, now, 1, now))
    plan.add(
        "unit_submissions",
        ["id", "campaign_id", "unit_id", "status", "submitted_at", "round", "updated_at"],
        submissions,
    )
    works = [
        (n + 1, f"CT2027-{n + 1:06d}", 1, grassroots_ids[n * 7 % grassroots],
         f"Công trình {n}", "Chào mừng Đại hội", 50_000_000 + n, date(2027, 3, 1),
         date(2027, 9, 1), False, "submitted", "chat", now, now)
        for n in range(max(1, grassroots // 4))
    ]  # fmt: skip
    plan.add(
        "works",
        ["id", "receipt_no", "campaign_id", "unit_id", "name", "occasion", "value",
         "starts_on", "ends_on", "plaque_requested", "status", "source", "created_at",
         "updated_at"],
        works,
    )  # fmt: skip
    initiatives = [
        (n + 1, f"SK2027-{n + 1:06d}", 1, pid, grassroots_ids[(pid - 1) % grassroots],
         f"Sáng kiến {n}", "technical", 20_000_000 + n, "submitted", "chat", now, now)
        for n, pid in enumerate(range(1, members + 1, 50))
    ]  # fmt: skip
    plan.add(
        "initiatives",
        ["id", "receipt_no", "campaign_id", "person_id", "unit_id", "name", "field",
         "benefit", "status", "source", "created_at", "updated_at"],
        initiatives,
    )  # fmt: skip
    return plan


INSERT_ORDER = (
    "units",
    "campaigns",
    "people",
    "unit_roles",
    "channel_identities",
    "conversations",
    "registrations",
    "unit_submissions",
    "works",
    "initiatives",
)


def _sqlite_value(value: Any) -> Any:
    # What SQLAlchemy's SQLite types store: naive UTC text timestamps, ISO dates, 0/1.
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return int(value)
    return value


def _chunks(rows: list[tuple[Any, ...]], size: int) -> Iterator[list[tuple[Any, ...]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


async def load_plan(url: str, plan: Plan) -> None:
    """Write the plan with the fastest path each database has, then refresh its statistics."""
    engine = make_engine(url)
    await prepare_database(engine)
    await engine.dispose()
    if dialect_of(url) == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            for table in INSERT_ORDER:
                columns, rows = plan.tables[table]
                await conn.copy_records_to_table(table, records=rows, columns=columns)
                if "id" in columns:
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
            await conn.execute("VACUUM ANALYZE")
        finally:
            await conn.close()
        return
    import sqlite3

    path = url.split(":///", 1)[1]
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA synchronous=OFF")
        with db:
            for table in INSERT_ORDER:
                columns, rows = plan.tables[table]
                sql = (
                    f"INSERT INTO {table} ({', '.join(columns)}) "
                    f"VALUES ({', '.join('?' * len(columns))})"
                )
                for chunk in _chunks(rows, 50_000):
                    db.executemany(sql, [tuple(map(_sqlite_value, r)) for r in chunk])
        db.execute("ANALYZE")
    finally:
        db.close()


# --- the hand-written baseline ------------------------------------------------------------------

# The digest's numbers as one would count them by hand in SQL, with no ORM in between: the
# floor the digest is compared with. :p is the root's path with "%", :root its id.
_STATUSES = "('submitted', 'approved', 'returned')"
HAND_SQL: dict[str, str] = {
    "titles": (
        "SELECT r.title_code, r.is_collective, count(*) FROM registrations r "
        "JOIN units u ON u.id = r.unit_id "
        f"WHERE r.campaign_id = :c AND r.status IN {_STATUSES} AND u.path LIKE :p "
        "GROUP BY r.title_code, r.is_collective"
    ),
    "works": (
        "SELECT count(*), coalesce(sum(w.value), 0) FROM works w JOIN units u ON u.id = w.unit_id "
        f"WHERE w.campaign_id = :c AND w.status IN {_STATUSES} AND u.path LIKE :p"
    ),
    "initiatives": (
        "SELECT count(*), coalesce(sum(i.benefit), 0) FROM initiatives i "
        "JOIN units u ON u.id = i.unit_id "
        f"WHERE i.campaign_id = :c AND i.status IN {_STATUSES} AND u.path LIKE :p"
    ),
    "submissions": (
        "SELECT coalesce(s.status, 'not_sent'), count(*) FROM units u "
        "LEFT JOIN unit_submissions s ON s.unit_id = u.id AND s.campaign_id = :c "
        "WHERE u.path LIKE :p AND u.id <> :root AND (u.kind = 'grassroots' OR s.id IS NOT NULL) "
        "GROUP BY 1"
    ),
    "missing_names": (
        "SELECT u.name FROM units u "
        "LEFT JOIN unit_submissions s ON s.unit_id = u.id AND s.campaign_id = :c "
        "WHERE u.path LIKE :p AND u.id <> :root AND u.kind = 'grassroots' AND s.id IS NULL "
        "ORDER BY u.search_name, u.id LIMIT 10"
    ),
    "returned_names": (
        "SELECT u.name FROM units u "
        "JOIN unit_submissions s ON s.unit_id = u.id AND s.campaign_id = :c "
        "WHERE u.path LIKE :p AND u.id <> :root AND s.status = 'returned' "
        "ORDER BY u.search_name, u.id LIMIT 10"
    ),
    "children": "SELECT id, name FROM units WHERE parent_id = :root ORDER BY search_name, id",
    # Members and registered members per unit; the caller adds each unit's row to its
    # ancestors among the children (as the digest does).
    "progress": (
        "SELECT u.path, count(*), count(reg.person_id) FROM people p "
        "JOIN units u ON u.id = p.unit_id "
        "LEFT JOIN (SELECT person_id FROM registrations WHERE campaign_id = :c "
        f"AND status IN {_STATUSES} AND person_id IS NOT NULL "
        "UNION SELECT person_id FROM initiatives WHERE campaign_id = :c "
        f"AND status IN {_STATUSES} AND person_id IS NOT NULL "
        "UNION SELECT a.person_id FROM initiative_authors a "
        "JOIN initiatives i ON i.id = a.initiative_id WHERE i.campaign_id = :c "
        f"AND i.status IN {_STATUSES} AND a.person_id IS NOT NULL) reg "
        "ON reg.person_id = p.id "
        "WHERE u.path LIKE :p GROUP BY u.id, u.path"
    ),
}


async def hand_written(session: AsyncSession, campaign_id: int, root: Unit) -> dict[str, Any]:
    params = {"c": campaign_id, "p": root.path + "%", "root": root.id}
    out: dict[str, Any] = {}
    for name, sql in HAND_SQL.items():
        out[name] = (await session.execute(text(sql), params)).all()
    children = {int(r[0]) for r in out["children"]}
    members = dict.fromkeys(children | {root.id}, 0)
    done = dict.fromkeys(children | {root.id}, 0)
    for path, count, registered in out["progress"]:
        for part in path.strip("/").split("/"):
            if int(part) in members:
                members[int(part)] += count
                done[int(part)] += registered
    out["progress"] = (members[root.id], done[root.id])
    return out


# --- measuring ----------------------------------------------------------------------------------


@dataclass
class Captured:
    """The statements a piece of work ran, with their parameters (for the plans)."""

    statements: list[tuple[str, Any]] = field(default_factory=list)
    active: bool = False


def capture(engine: AsyncEngine, into: Captured) -> None:
    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _seen(
        conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
    ) -> None:
        if into.active and not statement.lstrip().upper().startswith("EXPLAIN"):
            into.statements.append((statement, params))


async def timed(work: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, list[float], Any]:
    """The median of ``repeat`` runs after one warm-up run (seconds), the runs, the result."""
    result = await work()
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = await work()
        runs.append(time.perf_counter() - began)
    return statistics.median(runs), runs, result


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _cut(text: str, limit: int) -> str:
    """Long IN lists (a batch of 500 ids) shortened: the plan is what matters."""
    return text if len(text) <= limit else text[:limit] + " …"


async def explain(
    engine: AsyncEngine, statements: Sequence[tuple[str, Any]], title: str, path: Path
) -> None:
    """Each distinct statement with its plan; PostgreSQL runs it (EXPLAIN ANALYZE)."""
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
    seen: set[str] = set()
    lines = [f"# {title}", f"# {engine.dialect.name}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC", ""]
    async with engine.connect() as conn:
        for statement, params in statements:
            if statement in seen:
                continue
            seen.add(statement)
            rows = await conn.exec_driver_sql(prefix + statement, params)
            if postgres:
                plan = [str(r[0]) for r in rows]
            else:  # (id, parent, notused, detail): indent by depth
                depth: dict[int, int] = {0: 0}
                plan = []
                for row in rows:
                    values: tuple[Any, ...] = tuple(row)
                    node, parent, detail = int(values[0]), int(values[1]), str(values[3])
                    depth[node] = depth.get(parent, 0) + 1
                    plan.append("  " * (depth[node] - 1) + detail)
            lines += [
                "-" * 96,
                _cut(statement.strip(), 3000),
                f"-- parameters: {_cut(repr(params), 300)}",
                "",
                *(_cut(line, 240) for line in plan),
                "",
            ]
        await conn.rollback()
    write_text(path, "\n".join(lines) + "\n")


async def select_recipients(session: AsyncSession, root: Unit, with_addresses: bool) -> int:
    """Every member due the reminder, as the reminder pass reads them (no writes)."""
    found = 0
    async for batch in members_due(session, 1, root.path, DUE_KEY):
        found += len(await addressed(session, batch)) if with_addresses else len(batch)
    return found


@dataclass
class Figures:
    digest_s: float = 0.0
    hand_s: float = 0.0
    recipients_s: float = 0.0


def _runs(runs: Sequence[float]) -> str:
    return ", ".join(f"{r:.2f}" for r in runs)


async def measure(url: str, repeat: int) -> Figures:
    """Time the digest, its hand-written twin and the reminder selection; write the plans."""
    kind = dialect_of(url)
    figures = Figures()
    engine = make_engine(url)
    captured = Captured()
    capture(engine, captured)
    sessions = make_sessionmaker(engine)
    policy = ReminderPolicy()
    try:
        async with sessions() as session:
            root = await session.scalar(select(Unit).where(Unit.path == "/1/"))
            campaign = await session.get(Campaign, 1)
            assert root is not None and campaign is not None

            async def digest() -> Any:
                data = await digest_data(session, campaign, root)
                digest_text(data, NOW, policy)
                return data

            async def hand() -> Any:
                return await hand_written(session, campaign.id, root)

            figures.hand_s, runs, counted = await timed(hand, repeat)
            print(
                f"hand-written SQL         {figures.hand_s:.2f} s (runs {_runs(runs)})", flush=True
            )
            captured.active = True
            figures.digest_s, runs, data = await timed(digest, repeat)
            captured.active = False
            digest_sql = list(captured.statements)
            print(
                f"digest of the province   {figures.digest_s:.2f} s (runs {_runs(runs)}); "
                f"{data.progress.registered:,}/{data.progress.members:,} members registered, "
                f"{data.individuals:,} individual and {data.collectives:,} collective titles",
                flush=True,
            )
            if (data.progress.members, data.progress.registered) != counted["progress"]:
                raise RuntimeError(f"digest {data.progress} != hand-written {counted['progress']}")

            async def candidates() -> int:
                return await select_recipients(session, root, with_addresses=False)

            async def recipients() -> int:
                return await select_recipients(session, root, with_addresses=True)

            only_s, _unused, _count = await timed(candidates, repeat)
            captured.statements.clear()
            captured.active = True
            figures.recipients_s, runs, found = await timed(recipients, repeat)
            captured.active = False
            # The selection's own statements: not the plan_cache_mode settings around it.
            reminder_sql = [
                (sql, params) for sql, params in captured.statements if "set_config" not in sql
            ][:3]
            print(
                f"reminder selection       {figures.recipients_s:.2f} s for {found:,} recipients "
                f"with their chat (runs {_runs(runs)}); the people alone {only_s:.2f} s",
                flush=True,
            )
    finally:
        await engine.dispose()
    engine = make_engine(url)
    try:
        await explain(
            engine, digest_sql, "storage.stats.digest_data of the province",
            PLANS / f"digest-{kind}.txt",
        )  # fmt: skip
        await explain(
            engine,
            reminder_sql,
            "storage.reminders.members_due (one statement, streamed, each member's chats "
            "with it; addressed() looks conversations up only for people with several)",
            PLANS / f"reminders-{kind}.txt",
        )
    finally:
        await engine.dispose()
    print(f"plans written to {PLANS.relative_to(ROOT)}/{{digest,reminders}}-{kind}.txt")
    return figures


async def run(args: argparse.Namespace) -> int:
    if args.reuse:
        if not args.database_url:
            raise SystemExit("--reuse needs --database-url")
        url = args.database_url
        figures = await measure(url, args.repeat)
    else:
        async with database(args.database_url) as url:
            began = time.perf_counter()
            plan = make_plan(args.units, args.members, args.registrations, args.seed)
            await load_plan(url, plan)
            print(
                f"{dialect_of(url)}: {plan.count('units'):,} units, "
                f"{plan.count('people'):,} members, {plan.count('registrations'):,} "
                f"registrations, {plan.count('channel_identities'):,} chats (built in "
                f"{time.perf_counter() - began:.0f} s)",
                flush=True,
            )
            del plan
            figures = await measure(url, args.repeat)
    kind = dialect_of(url)
    target = TARGETS[kind]
    ratio = figures.digest_s / figures.hand_s if figures.hand_s else 0.0
    checks = [
        (f"digest <= {target:g} s", figures.digest_s <= target),
        (f"digest <= {HAND_RATIO} x hand-written ({ratio:.2f} x)", ratio <= HAND_RATIO),
    ]
    if kind == "postgresql":
        checks.append(
            (
                f"reminder selection <= {REMINDER_TARGET:g} s",
                figures.recipients_s <= REMINDER_TARGET,
            )
        )
    for label, ok in checks:
        print(f"{label:<44} {verdict(ok)}")
    ok = all(ok for _label, ok in checks)
    print("RESULT", "ok" if ok else "targets missed")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument("--units", type=int, default=20_000)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--registrations", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="--database-url already holds the data of an earlier run: measure only",
    )
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
