"""Benchmark: the bulk work of an operator at province-to-nation sizes, against baselines.

    python -m bench.bulk                                    # SQLite, 100,000 members
    python -m bench.bulk --sizes 100000,1000000 --database-url \\
        postgresql+asyncpg://postgres@127.0.0.1:5432/test

For each size (members; units are one per 90 members, at least 2,000): a fresh database,
an org CSV and a roster CSV written to a temporary folder, then each step in a process of
its own (process start included, peak RSS of that process):

* ``org import`` (storage.importers.import_units_file) and ``members import``
  (import_members_file), against a baseline: the same roster rows copied into a bare table
  (PostgreSQL ``COPY … FROM`` the CSV; SQLite the csv module and one ``executemany``);
* ``import registrations`` (storage.registration_import.import_registrations_file) of a
  titles list made from the imported roster (one LĐTT for about 70 % of the members, found
  by phone; a collective title per grassroots union; 1 % people not on the roster) and of
  an initiatives list (one for 2 % of the members), against the same rows copied into
  bare tables as for the roster;
* a hostile workbook (one cell of 300 MB of text, a "zip bomb") refused;
* the XLSX export of the registrations (storage.registration_forms.export_form_xlsx: rows
  read a batch of units at a time and written as they come), up to ``--export-max``
  registrations, against the same rows read the same way and their cells written with
  xlsxwriter and no styling, in the same process;
* the flat CSV export (storage.exporters.stream_registration_rows and stream_csv, what
  ``thidua export registrations --format csv`` runs), against the same cells read back and
  written with the csv module alone, and against the same export with every row held in a
  list first (registration_rows and write_csv), each in a process of its own.
  ``--csv-only`` runs just these (no imports, no XLSX);
* the province digest (storage.stats.digest_data and its text, then its XLSX of every
  kind streamed by export_form_xlsx, up to ``--digest-xlsx-max`` members) against
  bench.digest's hand-written SQL and the same rows' cells written unstyled, and the reminder
  selection (storage.reminders.members_due with each member's chat, as the reminder pass
  reads them) against the same set selected by one hand-written statement, each step on
  ``bench.digest``'s registrations (one per member) in a process of its own, warm (each
  figure is the second of two runs);
* once per run, ``thidua digest --save`` (the command, process start included) of a
  province whose workbook has about 11,300 rows. ``--no-imports`` leaves the imports out.

Prints rows/s, peak RSS and the ratio to the baseline at each size. Targets (issue 14):
roster import of 1,000,000 rows ≤ 60 s on PostgreSQL, ≤ 120 s on SQLite, peak RSS ≤ 300 MB
at every size; the hostile file refused in ≤ 10 s with ≤ 300 MB; XLSX export of 100,000
registrations ≤ 10 s and ≤ 300 MB; ``digest --save`` at province size ≤ 3 s; every step
at most linear from 100,000 to 3,000,000 members. A PostgreSQL URL names a server: a
database of its own is created there for each size and dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import ROOT, database, dialect_of, verdict

UPPERS = 50
IMPORT_TARGETS = {"postgresql": 60.0, "sqlite": 120.0}
RSS_TARGET_MB = 300.0
HOSTILE_TARGET_S = 10.0
EXPORT_TARGET_S = 10.0

_FAMILY = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
_MIDDLE = ["Thị", "Văn", "Minh", "Ngọc", "Đức", "Thu", "Quang", "Thanh"]
# About 12,000 distinct full names: real rosters repeat names much more than random text.
_GIVEN = [
    "Hoa", "Bình", "An", "Châu", "Dung", "Hùng", "Lan", "Mai", "Nam", "Phúc", "Tâm", "Hà",
    "Hạnh", "Hương", "Huyền", "Khánh", "Linh", "Long", "Minh", "Nga", "Ngân", "Nhung", "Oanh",
    "Phương", "Quân", "Quyên", "Sơn", "Thảo", "Thắng", "Thủy", "Trang", "Trung", "Tú", "Tuấn",
    "Uyên", "Vân", "Việt", "Xuân", "Yến", "Đạt",
]  # fmt: skip
_EXTRA = ["", "", "", "Anh", "Hải", "Kim", "Bảo", "Gia"]
_POSITIONS = ["Công nhân", "Tổ trưởng", "Kỹ sư", "Nhân viên", "", ""]


# --- files ---------------------------------------------------------------------------------


def write_files(folder: Path, members: int, seed: int) -> tuple[Path, Path, int]:
    """org.csv and roster.csv of a province: (org, roster, units)."""
    rng = random.Random(seed)
    units = max(2000, members // 90)
    grassroots = units - 1 - UPPERS
    org = folder / "org.csv"
    with org.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["code", "name", "parent_code", "kind"])
        writer.writerow(["LDLD-BENCH", "LĐLĐ tỉnh Benchmark", "", "province"])
        for u in range(UPPERS):
            writer.writerow([f"KCN-{u}", f"Công đoàn KCN {u}", "LDLD-BENCH", "upper"])
        for g in range(grassroots):
            writer.writerow(
                [f"CDCS-{g}", f"Công đoàn cơ sở Công ty {g}", f"KCN-{g % UPPERS}", "grassroots"]
            )
    roster = folder / "roster.csv"
    with roster.open("w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["unit_code", "full_name", "phone", "position"])
        for n in range(members):
            middle = f"{rng.choice(_MIDDLE)} {rng.choice(_EXTRA)}".strip()
            name = f"{rng.choice(_FAMILY)} {middle} {rng.choice(_GIVEN)}"
            writer.writerow([f"CDCS-{n % grassroots}", name, f"09{n:08d}", rng.choice(_POSITIONS)])
    return org, roster, units


def write_bomb(path: Path, megabytes: int) -> None:
    """A workbook of a few hundred KB whose one cell unpacks to ``megabytes`` of text."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["unit_code", "full_name", "phone"])
    workbook.save(path)
    with zipfile.ZipFile(path) as source:
        parts = {info.filename: source.read(info) for info in source.infolist()}
    head = (
        b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats'
        b'.org/spreadsheetml/2006/main"><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
    )
    tail = b"</t></is></c></row></sheetData></worksheet>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for name, content in parts.items():
            if name != "xl/worksheets/sheet1.xml":
                target.writestr(name, content)
        with target.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as part:
            part.write(head)
            block = b"A" * 1_000_000
            for _ in range(megabytes):
                part.write(block)
            part.write(tail)


# --- the steps, each in a process of its own -------------------------------------------------


def _peak_mb() -> float:
    # VmHWM, not getrusage's ru_maxrss: Linux carries ru_maxrss over from the parent's fork,
    # so a small step started by a large benchmark process would report the parent's peak.
    with open("/proc/self/status", encoding="ascii") as stream:
        for line in stream:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def _step(name: str, url: str, file: str) -> dict[str, Any]:
    from storage.db import make_engine, make_sessionmaker
    from storage.importers import ImportFailed, import_members_file, import_units_file
    from storage.tables import Limits

    engine = make_engine(url)
    sessions = make_sessionmaker(engine)
    out: dict[str, Any] = {}
    try:
        if name in ("org", "members"):
            work = import_units_file if name == "org" else import_members_file
            # The cap is for files officers send; the benchmark measures beyond it.
            async with sessions() as session, session.begin():
                summary = await work(session, Path(file), limits=Limits(max_rows=10**9))
            out["rows"] = summary.total
        elif name == "hostile":
            try:
                async with sessions() as session, session.begin():
                    await import_members_file(session, Path(file))
                out["refused"] = ""
            except ImportFailed as exc:
                out["refused"] = exc.problems[0]
        elif name == "baseline":
            out["rows"] = await _baseline(url, Path(file))
        elif name in ("registrations", "regbaseline"):
            out.update(await _registration_step(name, url, sessions, Path(file)))
        elif name == "export":
            out.update(await _export(sessions, Path(file)))
        elif name in ("csv", "csvlist"):
            out["rows"] = await _export_csv(sessions, Path(file), streamed=name == "csv")
        elif name == "csvplain":
            out["rows"] = _plain_csv(Path(file))
        elif name in ("digest", "digestnumbers", "reminders"):
            out.update(await _digest_step(name, sessions, Path(file)))
    finally:
        await engine.dispose()
    return out


async def _baseline(url: str, roster: Path) -> int:
    """The same rows into a bare table, the fastest plain way the database has."""
    if dialect_of(url) == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(
                "CREATE TABLE bare (unit_code text, full_name text, phone text, position text)"
            )
            result = await conn.copy_to_table("bare", source=str(roster), format="csv", header=True)
            return int(result.split()[-1])
        finally:
            await conn.close()
    import sqlite3

    db = sqlite3.connect(url.split(":///", 1)[1])
    try:
        db.execute("CREATE TABLE bare (unit_code text, full_name text, phone text, position text)")
        with roster.open(encoding="utf-8", newline="") as stream, db:
            reader = csv.reader(stream)
            next(reader)
            count = 0
            while batch := [row for _, row in zip(range(5000), reader, strict=False)]:
                db.executemany("INSERT INTO bare VALUES (?, ?, ?, ?)", batch)
                count += len(batch)
        return count
    finally:
        db.close()


async def _export(sessions: Any, target: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    async with sessions() as session:
        out.update(await _form_and_plain(session, "TD2027", None, "titles", target))
    # Registrations, as before the form streamed (a row holds all of a person's titles).
    out["rows"] = out["listed"]
    return out


async def _form_and_plain(
    session: Any, campaign: str, unit: str | None, kind: str, target: Path
) -> dict[str, Any]:
    """The form streamed to ``target`` (storage.registration_forms.export_form_xlsx: its
    query, rows and workbook), then the baseline: the same rows read the same way, their
    cells written with no formats, heading or widths; wall and CPU time of each."""
    import xlsxwriter

    from storage.exporters import ExportError
    from storage.registration_forms import export_form_xlsx, plan_form

    out: dict[str, Any] = {"listed": 0}
    # CPU beside wall: the machine is shared, and CPU is what the code decides.
    began, cpu = time.perf_counter(), time.process_time()
    try:
        # Registrations (initiatives, works) listed, the figure the command reports.
        out["listed"] = sum(
            (await export_form_xlsx(session, campaign, unit, kind, target)).values()
        )
        out["refused"] = ""
    except ExportError as exc:
        out["refused"] = str(exc)
    out["form_s"], out["form_cpu"] = time.perf_counter() - began, time.process_time() - cpu
    began, cpu = time.perf_counter(), time.process_time()
    plain = xlsxwriter.Workbook(str(target) + ".plain.xlsx", {"constant_memory": True})
    _form, plans = await plan_form(session, campaign, unit, kind)
    rows = 0
    for plan in plans:
        sheet = plain.add_worksheet(plan.name)
        number = 0
        async for batch, _listed in plan.batches():
            for values in batch:
                sheet.write_number(number, 0, number + 1)  # STT, as the form numbers rows
                for column, value in enumerate(values, start=1):
                    if value is not None:
                        sheet.write(number, column, value)
                number += 1
        rows += number
    plain.close()
    out["plain_s"], out["plain_cpu"] = time.perf_counter() - began, time.process_time() - cpu
    out["rows"] = rows
    return out


async def _export_csv(sessions: Any, target: Path, *, streamed: bool) -> int:
    from storage.exporters import registration_rows, stream_csv, stream_registration_rows, write_csv

    async with sessions() as session:
        with target.open("w", encoding="utf-8-sig", newline="") as stream:
            if streamed:
                return await stream_csv(stream_registration_rows(session, "TD2027"), stream)
            rows = await registration_rows(session, "TD2027")
            write_csv(rows, stream)
            return len(rows)


def _plain_csv(source: Path) -> int:
    """The baseline: the cells the export wrote, read back and written with csv alone."""
    count = 0
    with (
        source.open(encoding="utf-8-sig", newline="") as reading,
        source.with_suffix(".plain.csv").open("w", encoding="utf-8-sig", newline="") as out,
    ):
        writer = csv.writer(out)
        for row in csv.reader(reading):
            writer.writerow(row)
            count += 1
    return count - 1


def run_step(name: str, url: str, file: Path) -> dict[str, Any]:
    """One step in a fresh interpreter: its wall time (start included) and peak RSS."""
    began = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, "-m", "bench.bulk", "--step", name, url, str(file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    if finished.returncode != 0:
        raise SystemExit(f"step {name} failed:\n{finished.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(finished.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


# --- registration import --------------------------------------------------------------------

REGISTERED_SHARE = 0.7
INITIATIVE_EVERY = 50  # an initiative for one member in 50
NEW_PERSON_EVERY = 100  # a row for someone not on the roster, one in 100
_SYLLABLES = ["An", "Bảo", "Cát", "Diệu", "Gia", "Hòa", "Khôi", "Lộc", "Ngọc", "Phát", "Quý",
              "Sang", "Thịnh", "Uy", "Vĩnh", "Yên"]  # fmt: skip


def write_registration_files(folder: Path, roster: Path, seed: int) -> tuple[Path, Path]:
    """titles.csv and initiatives.csv made from the roster's rows, in the columns
    ``thidua import registrations`` reads: (titles, initiatives)."""
    rng = random.Random(seed + 1)
    titles, ideas = folder / "titles.csv", folder / "initiatives.csv"
    units: set[str] = set()
    with (
        roster.open(encoding="utf-8", newline="") as source,
        titles.open("w", encoding="utf-8", newline="") as title_stream,
        ideas.open("w", encoding="utf-8", newline="") as idea_stream,
    ):
        reader = csv.reader(source)
        next(reader)
        title_rows, idea_rows = csv.writer(title_stream), csv.writer(idea_stream)
        title_rows.writerow(["unit_code", "full_name", "phone", "kind", "title"])
        idea_rows.writerow(["name", "author", "unit_code", "phone", "field", "benefit"])
        for n, (unit_code, full_name, phone, _position) in enumerate(reader):
            if unit_code not in units:
                units.add(unit_code)
                title_rows.writerow([unit_code, "", "", "Tập thể", "TTLĐTT"])
            if rng.random() < REGISTERED_SHARE:
                title_rows.writerow([unit_code, full_name, phone, "Cá nhân", "LĐTT"])
            if n % NEW_PERSON_EVERY == 0:
                # Someone the roster does not have (a name no roster row has): added by it.
                given = " ".join(_SYLLABLES[(n // 16**i) % 16] for i in range(1, 4))
                title_rows.writerow([unit_code, f"Nguyễn Mới {given}", "", "Cá nhân", "LĐTT"])
            if n % INITIATIVE_EVERY == 0:
                idea_rows.writerow(
                    [f"Cải tiến quy trình số {n}", full_name, unit_code, phone, "Kỹ thuật",
                     "50 triệu"]
                )  # fmt: skip
    return titles, ideas


async def _add_campaign(url: str) -> None:
    """A campaign of the province, open for registration, for the registration import."""
    from datetime import date, timedelta

    from sqlalchemy import select

    from storage.db import make_engine, make_sessionmaker
    from storage.models import Campaign, Unit

    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            province = await session.scalar(select(Unit).where(Unit.code == "LDLD-BENCH"))
            assert province is not None
            today = date.today()
            session.add(
                Campaign(
                    code="TDBENCH",
                    name="Phong trào thi đua (benchmark)",
                    issuer_unit_id=province.id,
                    year=today.year,
                    registration_deadline=today + timedelta(days=365),
                    title_codes=["LDTT", "CSTDCS", "TTLDTT", "TTLDXS"],
                    settings={},
                )
            )
    finally:
        await engine.dispose()


async def _registration_step(name: str, url: str, sessions: Any, titles: Path) -> dict[str, Any]:
    """The titles list, then the initiatives list (each in its own transaction); or, as the
    baseline, the same rows of both copied into bare tables."""
    from datetime import date

    from storage.registration_import import choose_campaign, import_registrations_file
    from storage.tables import Limits

    ideas = titles.with_name("initiatives.csv")
    if name == "regbaseline":
        return {"rows": await _bare_copy(url, titles) + await _bare_copy(url, ideas)}
    rows = 0
    cpu = time.process_time()
    for path, kind in ((titles, "titles"), (ideas, "initiatives")):
        async with sessions() as session, session.begin():
            campaign = await choose_campaign(session, "TDBENCH", date.today())
            summary = await import_registrations_file(
                session, path, kind, campaign, today=date.today(), limits=Limits(max_rows=10**9)
            )
        rows += summary.individuals + summary.collectives + summary.initiatives
    # This process's CPU in the imports (the database server's, on PostgreSQL, is not in it).
    return {"rows": rows, "cpu_s": time.process_time() - cpu}


async def _bare_copy(url: str, path: Path) -> int:
    """A CSV's rows into a bare table of text columns named after the file, as the roster's
    baseline does (PostgreSQL ``COPY … FROM`` the file; SQLite one ``executemany``)."""
    with path.open(encoding="utf-8", newline="") as stream:
        width = len(next(csv.reader(stream)))
    table = f"bare_{path.stem}"
    columns = ", ".join(f"c{i} text" for i in range(width))
    if dialect_of(url) == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
        try:
            await conn.execute(f"CREATE TABLE {table} ({columns})")
            result = await conn.copy_to_table(table, source=str(path), format="csv", header=True)
            return int(result.split()[-1])
        finally:
            await conn.close()
    import sqlite3

    db = sqlite3.connect(url.split(":///", 1)[1])
    try:
        db.execute(f"CREATE TABLE {table} ({columns})")
        marks = ", ".join("?" * width)
        with path.open(encoding="utf-8", newline="") as stream, db:
            reader = csv.reader(stream)
            next(reader)
            count = 0
            while batch := [row for _, row in zip(range(5000), reader, strict=False)]:
                db.executemany(f"INSERT INTO {table} VALUES ({marks})", batch)
                count += len(batch)
        return count
    finally:
        db.close()


async def _registrations_size(
    db_url: str, size: int, folder: Path, roster: Path
) -> list[tuple[str, bool]]:
    titles, _ideas = write_registration_files(folder, roster, size)
    await _add_campaign(db_url)
    base = run_step("regbaseline", db_url, titles)
    print(_line("baseline (bare copy)", base["rows"], base["wall_s"], base["rss_mb"]))
    step = run_step("registrations", db_url, titles)
    print(
        _line("registrations import", step["rows"], step["wall_s"], step["rss_mb"],
              step["wall_s"] / base["wall_s"]),
        flush=True,
    )  # fmt: skip
    print(
        f"    CPU {step['cpu_s']:.1f} s, {1000 * step['cpu_s'] / step['rows']:.3f} ms a row",
        flush=True,
    )
    return [
        (
            f"{size:,} registrations import <= {RSS_TARGET_MB:g} MB",
            step["rss_mb"] <= RSS_TARGET_MB,
        )
    ]


# --- the run ------------------------------------------------------------------------------


def _line(label: str, rows: int, seconds: float, rss: float, ratio: float | None = None) -> str:
    rate = f"{rows / seconds:>9,.0f} rows/s" if rows and seconds else " " * 16
    shown = f"  {ratio:5.1f} x baseline" if ratio is not None else ""
    return f"  {label:<26} {rows:>10,} rows {seconds:8.1f} s {rate} {rss:7.0f} MB{shown}"


async def measure_size(url: str | None, size: int, args: argparse.Namespace) -> list[bool]:
    checks: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="thidua-bulk-") as tmp:
        folder = Path(tmp)
        if args.csv_only:
            units = max(2_000, size // 90)
            checks.extend(await _export_size(url, size, units, folder, args))
            return [ok for label, ok in checks if print(f"  {label:<52} {verdict(ok)}") or True]
        if args.no_imports:
            units = max(2_000, size // 90)
            print(f"{size:,} members, {units:,} units (no imports):", flush=True)
            if size <= args.export_max:
                checks.extend(await _export_size(url, size, units, folder, args))
            checks.extend(await _digest_size(url, size, units, folder, args))
            return [ok for label, ok in checks if print(f"  {label:<52} {verdict(ok)}") or True]
        org, roster, units = write_files(folder, size, args.seed)
        async with database(url, "thidua_bulk") as db_url:
            kind = dialect_of(db_url)
            await _prepare(db_url)
            print(f"{kind}, {size:,} members, {units:,} units:", flush=True)
            first = run_step("org", db_url, org)
            print(_line("org import", first["rows"], first["wall_s"], first["rss_mb"]))
            base = run_step("baseline", db_url, roster)
            print(_line("baseline (bare copy)", base["rows"], base["wall_s"], base["rss_mb"]))
            members = run_step("members", db_url, roster)
            ratio = members["wall_s"] / base["wall_s"]
            print(
                _line(
                    "members import", members["rows"], members["wall_s"], members["rss_mb"], ratio
                ),
                flush=True,
            )
            if size == 1_000_000:  # the target is at a million rows
                target = IMPORT_TARGETS[kind]
                checks.append(
                    (f"{size:,} members import <= {target:g} s", members["wall_s"] <= target)
                )
            checks.append(
                (
                    f"{size:,} members import <= {RSS_TARGET_MB:g} MB",
                    members["rss_mb"] <= RSS_TARGET_MB,
                )
            )
            checks.extend(await _registrations_size(db_url, size, folder, roster))
            if args.hostile:
                bomb = folder / "bomb.xlsx"
                write_bomb(bomb, 300)
                hostile = run_step("hostile", db_url, bomb)
                print(
                    _line(f"zip bomb ({bomb.stat().st_size // 1000} KB)", 0, hostile["wall_s"],
                          hostile["rss_mb"])
                )  # fmt: skip
                checks.append(
                    (
                        "hostile XLSX refused in time and memory",
                        bool(hostile["refused"])
                        and hostile["wall_s"] <= HOSTILE_TARGET_S
                        and hostile["rss_mb"] <= RSS_TARGET_MB,
                    )
                )
        if size <= args.export_max:
            checks.extend(await _export_size(url, size, units, folder, args))
        checks.extend(await _digest_size(url, size, units, folder, args))
    return [ok for label, ok in checks if print(f"  {label:<52} {verdict(ok)}") or True]


async def _export_size(
    url: str | None, size: int, units: int, folder: Path, args: argparse.Namespace
) -> list[tuple[str, bool]]:
    from bench.digest import load_plan, make_plan

    async with database(url, "thidua_bulk") as db_url:
        plan = make_plan(units, size, size, args.seed)
        await load_plan(db_url, plan)
        del plan
        checks = _csv_export(db_url, size, folder)
        if args.csv_only:
            return checks
        export = run_step("export", db_url, folder / "export.xlsx")
        total = export["form_s"]
        print(
            _line("XLSX export (streamed)", export["rows"], total, export["rss_mb"],
                  export["form_s"] / export["plain_s"])
        )  # fmt: skip
        print(
            f"    query, rows and form {total:.1f} s (CPU {export['form_cpu']:.1f} s), the same"
            f" rows read the same way, cells unstyled {export['plain_s']:.1f} s (CPU "
            f"{export['plain_cpu']:.1f} s)",
            flush=True,
        )
        checks.append(
            (f"{size:,} XLSX export <= {RSS_TARGET_MB:g} MB", export["rss_mb"] <= RSS_TARGET_MB)
        )
        if size == 100_000:
            checks.append((f"XLSX export <= {EXPORT_TARGET_S:g} s", total <= EXPORT_TARGET_S))
        return checks


def _csv_export(db_url: str, size: int, folder: Path) -> list[tuple[str, bool]]:
    """The flat CSV export streamed, the csv module alone, and every row held in a list."""
    target = folder / "export.csv"
    streamed = run_step("csv", db_url, target)
    plain = run_step("csvplain", db_url, target)
    held = run_step("csvlist", db_url, folder / "export-list.csv")
    for label, step in (
        ("CSV export (streamed)", streamed),
        ("baseline (csv module)", plain),
        ("CSV export (list held)", held),
    ):
        print(_line(label, step["rows"], step["wall_s"], step["rss_mb"]), flush=True)
    print(
        f"    peak RSS: streamed {streamed['rss_mb'] / plain['rss_mb']:.1f} x the csv module,"
        f" the list {held['rss_mb'] / plain['rss_mb']:.1f} x",
        flush=True,
    )
    return [(f"{size:,} CSV export <= {RSS_TARGET_MB:g} MB", streamed["rss_mb"] <= RSS_TARGET_MB)]


# --- the digest and the reminder selection ---------------------------------------------------

DIGEST_SAVE_TARGET_S = 3.0
# A province of 200 units and 16,000 members with a registration each: the officers' workbook
# of its digest has about 11,300 rows (the size the issue measured, 11,312).
PROVINCE_UNITS, PROVINCE_MEMBERS = 200, 16_000
ROOT_CODE, CAMPAIGN_CODE = "LDLD-BENCH", "TD2027"

# The reminder selection written by hand: members of the subtree, not muted, with a chat,
# not yet reminded for this due key, and with nothing registered or a registration left
# half-way. The same set storage.reminders.members_due streams (the counts are compared).
_COUNTED = "('submitted', 'approved', 'returned')"
_DRAFT_CAMPAIGN = {
    "postgresql": "(cv.data -> 'draft' ->> 'campaign_id')::int",
    "sqlite": "json_extract(cv.data, '$.draft.campaign_id')",
}
HAND_REMINDERS = (
    "WITH titled AS (SELECT DISTINCT person_id FROM registrations WHERE campaign_id = :c "
    f"AND person_id IS NOT NULL AND status IN {_COUNTED}), "
    "authors AS (SELECT person_id FROM initiatives WHERE campaign_id = :c "
    f"AND person_id IS NOT NULL AND status IN {_COUNTED} "
    "UNION SELECT a.person_id FROM initiative_authors a JOIN initiatives i "
    "ON i.id = a.initiative_id WHERE i.campaign_id = :c AND a.person_id IS NOT NULL "
    f"AND i.status IN {_COUNTED}), "
    "drafts AS (SELECT ci.person_id FROM conversations cv JOIN channel_identities ci "
    "ON ci.id = cv.identity_id WHERE ci.person_id IS NOT NULL AND cv.flow IS NOT NULL "
    "AND cv.flow NOT IN ('menu', 'onboarding') AND {draft_campaign} = :c "
    "UNION SELECT person_id FROM registrations WHERE campaign_id = :c "
    "AND person_id IS NOT NULL AND status = 'draft') "
    "SELECT p.id, p.full_name, p.locale, c.id, c.channel, c.external_id FROM people p "
    "JOIN units u ON u.id = p.unit_id JOIN channel_identities c ON c.person_id = p.id "
    "LEFT JOIN titled t ON t.person_id = p.id LEFT JOIN authors au ON au.person_id = p.id "
    "LEFT JOIN drafts d ON d.person_id = p.id "
    "WHERE u.path LIKE :p AND NOT p.reminders_muted AND NOT EXISTS (SELECT 1 FROM "
    "reminder_log l WHERE l.campaign_id = :c AND l.person_id = p.id AND l.kind = 'member' "
    "AND l.due_key = :k) AND (d.person_id IS NOT NULL OR (t.person_id IS NULL "
    "AND au.person_id IS NULL)) ORDER BY p.id"
)


async def _twice(work: Any) -> tuple[float, Any]:
    """The second of two runs (the first warms the caches), in seconds, and its result."""
    await work()
    began = time.perf_counter()
    result = await work()
    return time.perf_counter() - began, result


async def _digest_step(name: str, sessions: Any, target: Path) -> dict[str, Any]:
    """In a step's process: the digest and its hand-written twin, the digest's XLSX and the
    same cells unstyled ("digest"; "digestnumbers" without the XLSX), or the reminder
    selection and its hand-written twin ("reminders")."""
    from sqlalchemy import select, text

    from bench.digest import DUE_KEY, NOW, hand_written, select_recipients
    from handlers.digest import digest_text
    from handlers.reminders import ReminderPolicy
    from storage.models import Campaign, Unit
    from storage.stats import digest_data

    out: dict[str, Any] = {}
    async with sessions() as session:
        root = await session.scalar(select(Unit).where(Unit.code == ROOT_CODE))
        campaign = await session.scalar(select(Campaign).where(Campaign.code == CAMPAIGN_CODE))
        assert root is not None and campaign is not None
        if name == "reminders":
            dialect = session.bind.dialect.name
            sql = text(HAND_REMINDERS.format(draft_campaign=_DRAFT_CAMPAIGN[dialect]))
            params = {"c": campaign.id, "p": root.path + "%", "k": DUE_KEY}

            async def hand() -> int:
                # Streamed in batches of 500 as the selection is, so that the step's peak
                # memory is the selection's, not a list of every recipient.
                found = 0
                result = await session.stream(sql, params)
                async for part in result.partitions(500):
                    found += len(part)
                return found

            async def selection() -> int:
                return await select_recipients(session, root, with_addresses=True)

            out["hand_s"], hand_rows = await _twice(hand)
            out["select_s"], out["rows"] = await _twice(selection)
            if hand_rows != out["rows"]:
                raise RuntimeError(f"selection {out['rows']} != hand-written {hand_rows}")
            return out
        policy = ReminderPolicy()

        async def numbers() -> Any:
            data = await digest_data(session, campaign, root)
            digest_text(data, NOW, policy)
            return data

        async def counted() -> Any:
            return await hand_written(session, campaign.id, root)

        out["hand_s"], by_hand = await _twice(counted)
        out["digest_s"], data = await _twice(numbers)
        if (data.progress.members, data.progress.registered) != by_hand["progress"]:
            raise RuntimeError(f"digest {data.progress} != hand-written {by_hand['progress']}")
        out["members"] = data.progress.members
        if name == "digestnumbers":
            return out
        out.update(await _form_and_plain(session, campaign.code, root.code, "all", Path(target)))
    return out


def _digest_save_step(url: str, folder: str) -> int:
    """``thidua digest --save`` as an operator runs it, in this (fresh) process."""
    import os

    from bot.cli import main as thidua

    os.environ["DATABASE_URL"] = url
    argv = ["digest", "--unit", ROOT_CODE, "--campaign", CAMPAIGN_CODE, "--save", folder]
    code = thidua(argv)
    if code != 0:
        raise SystemExit(f"thidua digest --save ended with {code}")
    print(json.dumps({"rss_mb": _peak_mb()}))
    return 0


async def _province_digest(url: str | None, args: argparse.Namespace) -> list[bool]:
    """``digest --save`` of a province (≈ 11,300 workbook rows), start included, twice."""
    from bench.digest import load_plan, make_plan

    checks: list[tuple[str, bool]] = []
    with tempfile.TemporaryDirectory(prefix="thidua-bulk-") as tmp:
        async with database(url, "thidua_bulk") as db_url:
            plan = make_plan(PROVINCE_UNITS, PROVINCE_MEMBERS, PROVINCE_MEMBERS, args.seed)
            await load_plan(db_url, plan)
            del plan
            print(
                f"{dialect_of(db_url)}, a province of {PROVINCE_MEMBERS:,} members, "
                f"{PROVINCE_UNITS} units:",
                flush=True,
            )
            runs = [_with_cpu("digestsave", db_url, Path(tmp)) for _ in range(2)]
        rows = _workbook_rows(Path(tmp))
        best = min(r["wall_s"] for r in runs)
        walls = " and ".join(f"{r['wall_s']:.1f} s (CPU {r['cpu_s']:.1f} s)" for r in runs)
        print(
            f"  thidua digest --save: {rows:,} workbook rows and the chart, {walls} (start "
            f"included), {max(r['rss_mb'] for r in runs):.0f} MB",
            flush=True,
        )
        checks.append(
            (
                f"digest --save of a province <= {DIGEST_SAVE_TARGET_S:g} s",
                best <= DIGEST_SAVE_TARGET_S,
            )
        )
    return [ok for label, ok in checks if print(f"  {label:<52} {verdict(ok)}") or True]


def _with_cpu(name: str, url: str, file: Path) -> dict[str, Any]:
    """run_step, with the CPU time (user and system) its process used."""
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = run_step(name, url, file)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result


def _workbook_rows(folder: Path) -> int:
    """Rows in the sheets of the one workbook in ``folder``."""
    from openpyxl import load_workbook

    workbook = load_workbook(next(folder.glob("*.xlsx")), read_only=True)
    try:
        return sum(sheet.max_row or 0 for sheet in workbook.worksheets)
    finally:
        workbook.close()


async def _digest_size(
    url: str | None, size: int, units: int, folder: Path, args: argparse.Namespace
) -> list[tuple[str, bool]]:
    """The digest, its XLSX and the reminder selection on ``size`` members, one
    registration each (bench.digest's province), beside their baselines."""
    from bench.digest import load_plan, make_plan

    checks: list[tuple[str, bool]] = []
    async with database(url, "thidua_bulk") as db_url:
        began = time.perf_counter()
        plan = make_plan(units, size, size, args.seed)
        await load_plan(db_url, plan)
        del plan
        print(
            f"  (digest data: {size:,} registrations loaded in {time.perf_counter() - began:.0f}"
            " s)",
            flush=True,
        )
        with_xlsx = size <= args.digest_xlsx_max
        digest = run_step("digest" if with_xlsx else "digestnumbers", db_url, folder / "d.xlsx")
        print(
            _line("digest (numbers, text)", digest["members"], digest["digest_s"],
                  digest["rss_mb"], digest["digest_s"] / digest["hand_s"])
        )  # fmt: skip
        print(f"    hand-written SQL {digest['hand_s']:.2f} s (rows/s: members counted)")
        if with_xlsx:
            print(
                _line("digest XLSX (streamed)", digest["rows"], digest["form_s"],
                      digest["rss_mb"], digest["form_s"] / digest["plain_s"])
            )  # fmt: skip
            print(
                f"    query, rows and form {digest['form_s']:.1f} s (CPU "
                f"{digest['form_cpu']:.1f} s), the same rows read the same way, cells unstyled "
                f"{digest['plain_s']:.1f} s (CPU {digest['plain_cpu']:.1f} s)"
                + (f"; refused: {digest['refused']}" if digest["refused"] else ""),
                flush=True,
            )
        else:
            print("    digest XLSX not built at this size (--digest-xlsx-max)", flush=True)
        reminders = run_step("reminders", db_url, folder)
        print(
            _line("reminder selection", reminders["rows"], reminders["select_s"],
                  reminders["rss_mb"], reminders["select_s"] / reminders["hand_s"])
        )  # fmt: skip
        print(f"    hand-written SQL {reminders['hand_s']:.2f} s", flush=True)
    return checks


async def _prepare(url: str) -> None:
    from storage.db import make_engine
    from storage.seed import prepare_database

    engine = make_engine(url)
    await prepare_database(engine)
    await engine.dispose()


def _load() -> str:
    with open("/proc/loadavg", encoding="ascii") as stream:
        return " ".join(stream.read().split()[:3])


async def run(args: argparse.Namespace) -> int:
    print(f"load average: {_load()}", flush=True)
    results: list[bool] = []
    if not args.csv_only:
        results.extend(await _province_digest(args.database_url, args))
    for size in args.sizes:
        results.extend(await measure_size(args.database_url, size, args))
    print(f"load average: {_load()}")
    ok = all(results)
    print("RESULT", "ok" if ok else "targets missed")
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["--step", "digestsave"]:
        return _digest_save_step(*argv[2:4])
    if argv[:1] == ["--step"]:
        name, url, file = argv[1:4]
        out = asyncio.run(_step(name, url, file))
        out["rss_mb"] = _peak_mb()
        print(json.dumps(out))
        return 0
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    parser.add_argument(
        "--sizes",
        type=lambda text: [int(s) for s in text.split(",")],
        default=[100_000],
        help="members, comma-separated (default 100000)",
    )
    parser.add_argument(
        "--export-max", type=int, default=100_000, help="largest size with the XLSX export"
    )
    parser.add_argument("--no-hostile", dest="hostile", action="store_false")
    parser.add_argument(
        "--csv-only", action="store_true", help="only the CSV export (no imports, no XLSX)"
    )
    parser.add_argument(
        "--no-imports",
        action="store_true",
        help="only the exports, the digest and the reminder selection (no imports)",
    )
    parser.add_argument(
        "--digest-xlsx-max",
        type=int,
        default=1_000_000,
        help="largest size whose digest XLSX is built (the form holds its rows in memory)",
    )
    parser.add_argument("--seed", type=int, default=14)
    return asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
