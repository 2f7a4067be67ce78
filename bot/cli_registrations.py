"""`thidua export registrations` and `thidua import registrations`: the officers' lists.

Export: ``--kind titles`` as CSV is the flat one-row-per-registration file it always was
(scripts rely on it); XLSX is the familiar form (storage.registration_forms), with ``all``
giving one sheet each for individuals, collectives, initiatives and works. Import reads the
same columns back (storage.registration_import), all rows or none.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import TextIO

from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import CliError, _existing_file, _max_rows_option, _with_session
from bot.config import Settings
from bot.progress import progress
from storage.exporters import _zone, stream_csv, stream_registration_rows
from storage.registration_forms import (
    ALL,
    KINDS,
    TITLES,
    export_form_xlsx,
    stream_sheet_csv,
)
from storage.registration_import import (
    LISTS_APPROVED,
    LISTS_SENT,
    MINIMAL_COLUMNS,
    CampaignChoiceError,
    RegistrationImportSummary,
    choose_campaign,
    import_registrations_file,
)


@contextlib.contextmanager
def _csv_in_place(output: Path) -> Iterator[TextIO]:
    """``output`` to write a CSV to: written beside it and moved in place at the end, so a
    failed export (unknown campaign, lost database) leaves no half file behind. The BOM
    makes Excel open the file as UTF-8 (Vietnamese letters intact)."""
    partial = output.with_name(output.name + ".part")
    try:
        with partial.open("w", encoding="utf-8-sig", newline="") as stream:
            yield stream
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(output)


def _today(settings: Settings) -> date:
    # The deadline ends at midnight in Vietnam, not on the server's clock.
    return datetime.now(_zone(settings.timezone)).date()


async def cmd_export_registrations(args: argparse.Namespace, settings: Settings) -> int:
    output = Path(args.output) if args.output else None
    fmt = args.format
    if fmt is None:
        fmt = "xlsx" if output is not None and output.suffix.lower() == ".xlsx" else "csv"
    if fmt == "xlsx" and output is None:
        raise CliError("--format xlsx needs -o FILE (a spreadsheet cannot go to the terminal)")
    if fmt == "csv" and args.kind == ALL:
        raise CliError("a CSV file holds one list: use --kind titles|initiatives|works, or XLSX")
    if output is not None and not output.parent.exists():
        raise CliError(f"folder does not exist: {output.parent}")

    if fmt == "csv" and args.kind == TITLES:
        async with progress("Exporting registrations", unit="registration") as tracker:

            def total(count: int) -> None:
                tracker.total = count

            async def flat(session: AsyncSession) -> int:
                # Rows are written as they are read, a batch at a time: memory stays flat
                # however many registrations the campaign has.
                rows = stream_registration_rows(
                    session,
                    args.campaign,
                    args.unit,
                    timezone_name=settings.timezone,
                    on_total=total,
                )
                if output is None:
                    return await stream_csv(rows, sys.stdout, tracker.advance)
                with _csv_in_place(output) as stream:
                    return await stream_csv(rows, stream, tracker.advance)

            written = await _with_session(settings, flat)
        if output is not None:
            print(f"Exported {written} registration(s) to {output}")
        return 0

    async with progress("Exporting registrations", unit="row") as tracker:

        def total(count: int) -> None:
            tracker.total = count

        async def work(session: AsyncSession) -> dict[str, int]:
            # Rows are written as they are read, a batch of units at a time: memory stays
            # flat however long the list.
            if fmt == "xlsx":
                assert output is not None
                # xlsxwriter writes the file only when it is complete: a refused or failed
                # export leaves nothing behind.
                return await export_form_xlsx(
                    session,
                    args.campaign,
                    args.unit,
                    args.kind,
                    output,
                    advance=tracker.advance,
                    on_total=total,
                )
            if output is None:
                return await stream_sheet_csv(
                    session, args.campaign, args.unit, args.kind, sys.stdout,
                    advance=tracker.advance, on_total=total,
                )  # fmt: skip
            with _csv_in_place(output) as stream:
                return await stream_sheet_csv(
                    session, args.campaign, args.unit, args.kind, stream,
                    advance=tracker.advance, on_total=total,
                )  # fmt: skip

        counts = await _with_session(settings, work)
    if output is not None:
        print(f"Exported {_describe(counts)} to {output}")
    return 0


def _describe(counts: dict[str, int]) -> str:
    """ "4 registration(s) (3 individual, 1 collective), 2 initiative(s), 1 work(s)"."""
    parts: list[str] = []
    if "Cá nhân" in counts:
        individual, collective = counts["Cá nhân"], counts["Tập thể"]
        parts.append(
            f"{individual + collective} registration(s) ({individual} individual, "
            f"{collective} collective)"
        )
    if "Sáng kiến" in counts:
        parts.append(f"{counts['Sáng kiến']} initiative(s)")
    if "Công trình" in counts:
        parts.append(f"{counts['Công trình']} work(s)")
    return ", ".join(parts)


async def cmd_import_registrations(args: argparse.Namespace, settings: Settings) -> int:
    file = _existing_file(args.file)
    today = _today(settings)

    async with progress("Importing registrations", unit="registration") as tracker:

        async def work(session: AsyncSession) -> RegistrationImportSummary:
            try:
                campaign = await choose_campaign(session, args.campaign, today)
            except CampaignChoiceError as exc:
                raise CliError(str(exc)) from None
            return await import_registrations_file(
                session,
                file,
                args.kind,
                campaign,
                today=today,
                allow_late=args.allow_late,
                lists=args.lists,
                progress=tracker.advance,
            )

        summary = await _with_session(settings, work)
    print("\n".join(summary.lines()))
    return 0


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = commands.add_parser("export", help="exports for officers")
    actions = export.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = actions.add_parser(
        "registrations",
        help="a campaign's registrations: the familiar XLSX form, or CSV",
        description="XLSX: the form officers know (DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM ...), "
        "one sheet per list. CSV: one list; --kind titles is the flat file of earlier versions.",
    )
    p.add_argument("--campaign", required=True, metavar="CODE")
    p.add_argument("--unit", metavar="CODE", help="only this unit and the units below it")
    p.add_argument(
        "--kind",
        choices=[*KINDS, ALL],
        default=TITLES,
        help="which lists (default: titles; 'all' needs XLSX)",
    )
    p.add_argument("--format", choices=["csv", "xlsx"], help="default: from -o, else csv")
    p.add_argument("-o", "--output", metavar="FILE", help="default: CSV to standard output")
    p.set_defaults(handler=cmd_export_registrations)

    imports = commands.add_parser("import", help="registrations made outside the bot")
    actions = imports.add_subparsers(dest="action", required=True, metavar="ACTION")
    columns = "; ".join(f"{kind}: {MINIMAL_COLUMNS[kind]}" for kind in KINDS)
    p = actions.add_parser(
        "registrations",
        help="import a unit's list (CSV/XLSX, the export's columns); all rows or none",
        description="Reads the columns `thidua export registrations` writes, or at least: "
        f"{columns}. Every row is checked as in the chat; one bad row and nothing is imported.",
    )
    p.add_argument("file")
    p.add_argument("--kind", required=True, choices=list(KINDS))
    p.add_argument(
        "--campaign", metavar="CODE", help="default: the only campaign open for registration"
    )
    p.add_argument(
        "--allow-late",
        action="store_true",
        help="import after the registration deadline (lists handed in on time, typed in late)",
    )
    p.add_argument(
        "--lists",
        choices=[LISTS_SENT, LISTS_APPROVED],
        help="also mark the lists of the units the rows go to as sent to the upper level "
        "(Chờ duyệt) or approved (Đã duyệt); default: leave them as they are",
    )
    _max_rows_option(p)
    p.set_defaults(handler=cmd_import_registrations)
