"""Reading the spreadsheets officers send, row by row, refusing hostile files early.

A province sends its roster as one file, and a file can be anything: a CSV saved by an old
Excel in Windows-1258, a workbook that unpacks to gigabytes from a few hundred kilobytes, an
XLSX filled to Excel's last row, a sheet whose XML is cut off, a CSV with a quote that is
never closed. Everything here reads one row at a time (memory does not grow with the file)
and says what is wrong in the words an officer can act on, with the row they see in the
spreadsheet. The checks that need no reading (the zip's declared sizes, the sheet's declared
dimension) come before any decompression.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from openpyxl import Workbook

# A province's roster fits (the largest LĐLĐ has about 1.4 million members); a workbook
# filled to Excel's last row (1,048,576) is refused at once, from its declared dimension.
MAX_ROWS = 1_000_000
# What a workbook may unpack to, all parts together, and one part: a million roster rows
# are about 150 MB of sheet XML. openpyxl keeps the shared strings in memory, so that part
# has a tighter limit.
MAX_UNPACKED = 1_500_000_000
MAX_SHARED_STRINGS = 200_000_000
# Sheet XML of real lists compresses 5 to 30 times; a "zip bomb" a thousand times and more.
MAX_RATIO = 100
RATIO_FLOOR = 1_000_000  # parts smaller than this unpack to little whatever their ratio
# Excel itself refuses longer cells.
MAX_CELL = 32_767
ENCODING_PROBE = 1 << 20

_CSV_ADVICE = "in Excel use 'Save As' → 'CSV UTF-8'"


class TableError(Exception):
    """The file cannot be read; ``problem`` says why (with the row when there is one)."""

    def __init__(self, problem: str, row: int = 0) -> None:
        self.problem = problem
        self.row = row
        super().__init__(problem)


@dataclass(frozen=True)
class Limits:
    max_rows: int = MAX_ROWS
    max_unpacked: int = MAX_UNPACKED
    max_shared_strings: int = MAX_SHARED_STRINGS
    max_ratio: int = MAX_RATIO


DEFAULT_LIMITS = Limits()


def _megabytes(size: int) -> str:
    return f"{size / 1_000_000:,.0f} MB" if size >= 1_000_000 else f"{size / 1000:,.0f} KB"


def _row_cap(limits: Limits, rows: int) -> TableError:
    return TableError(
        f"the file has {rows:,} rows; at most {limits.max_rows:,} are read in one import "
        "(split the file, e.g. by district, or raise the limit with --max-rows)",
        limits.max_rows + 2,
    )


# --- CSV ---------------------------------------------------------------------------------


def _line_of(path: Path, offset: int) -> int:
    """The line (1-based) holding byte ``offset``: what an officer finds in the file."""
    line = 1
    with path.open("rb") as stream:
        remaining = offset
        while remaining > 0:
            chunk = stream.read(min(remaining, ENCODING_PROBE))
            if not chunk:
                break
            line += chunk.count(b"\n")
            remaining -= len(chunk)
    return line


def _first_failure(path: Path, encoding: str) -> int | None:
    """The byte offset where ``encoding`` stops fitting the file, or None when it fits."""
    decoder = codecs.getincrementaldecoder(encoding)()
    offset = 0
    with path.open("rb") as stream:
        while True:
            chunk = stream.read(ENCODING_PROBE)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as exc:
                return offset + max(exc.start, 0)
            if not chunk:
                return None
            offset += len(chunk)


def detect_encoding(path: Path) -> str:
    """The encoding a CSV is in, tried in the order Vietnamese offices produce them.

    UTF-8 (with or without the BOM Excel's "CSV UTF-8" writes), UTF-16 (Excel's "Unicode
    text", with its BOM, or without one when every other byte is zero), then the legacy
    Windows-1258 (Vietnamese) and Windows-1252. A file none of them fits is refused with
    the row of its first unreadable byte. Each try reads the file once, in chunks.
    """
    with path.open("rb") as stream:
        head = stream.read(4096)
    if head.startswith(codecs.BOM_UTF8):
        encoding = "utf-8-sig"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif len(head) >= 4 and head[1::2].count(0) > len(head) // 4:
        encoding = "utf-16-le"
    elif len(head) >= 4 and head[0::2].count(0) > len(head) // 4:
        encoding = "utf-16-be"
    else:
        encoding = "utf-8"
    failure = _first_failure(path, encoding)
    if failure is None:
        return encoding
    if encoding.startswith("utf-16"):
        raise TableError(
            f"row {_line_of(path, failure)}: the file says it is UTF-16 text but is not "
            f"readable as such; {_CSV_ADVICE}",
            _line_of(path, failure),
        )
    for legacy in ("cp1258", "cp1252"):
        if _first_failure(path, legacy) is None:
            return legacy
    row = _line_of(path, failure)
    raise TableError(
        f"row {row}: the file is not text in UTF-8, UTF-16, Windows-1258 or Windows-1252 "
        f"(byte {failure:,}); {_CSV_ADVICE}",
        row,
    )


def sniff_delimiter(first_line: str) -> str:
    # Vietnamese Excel saves "CSV" with ";" because "," is the decimal separator there.
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def iter_csv(path: Path, limits: Limits = DEFAULT_LIMITS) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of a CSV file, one row at a time; rows as a spreadsheet numbers
    them (a quoted line break stays inside its row).

    Refused with the row named: a quote that is never closed, or one that swallows the
    following lines (a cell whose next lines hold the delimiter: rows read into one cell),
    and more rows than the limit.
    """
    encoding = detect_encoding(path)
    with path.open(encoding=encoding, newline="") as stream:
        first = stream.readline()
        yield from csv_rows(itertools.chain([first], stream), sniff_delimiter(first), limits)


def csv_rows(
    lines: Iterable[str], delimiter: str, limits: Limits
) -> Iterator[tuple[int, list[str]]]:
    reader = csv.reader(lines, delimiter=delimiter, strict=True)
    number = 0
    line = 1  # the file's line where the next row starts
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row = number + 1
            reason = (
                f"a quote opened on line {line} is never closed"
                if "end of data" in str(exc)
                else f"a quote is misplaced ({exc})"
            )
            raise TableError(
                f"row {row}: the CSV is malformed: {reason}; fix the quotes in this row",
                row,
            ) from exc
        number += 1
        if number > limits.max_rows + 1:
            raise _row_cap(limits, number - 1)
        if reader.line_num > line:
            for index, cell in enumerate(cells):
                if "\n" in cell and delimiter in cell.split("\n", 1)[1]:
                    raise TableError(
                        f"row {number}: the quote that opens column {index + 1} is closed "
                        f"only on line {reader.line_num}, so the following line(s) were read "
                        "into this one cell; close the quote on its own line or remove it",
                        number,
                    )
        line = reader.line_num + 1
        for index, cell in enumerate(cells):
            if len(cell) > MAX_CELL:
                raise TableError(
                    f"row {number}: column {index + 1} holds {len(cell):,} characters; "
                    f"a cell has at most {MAX_CELL:,}",
                    number,
                )
        yield number, cells


# --- XLSX --------------------------------------------------------------------------------


def check_zip(path: Path, limits: Limits = DEFAULT_LIMITS) -> None:
    """Refuse a workbook whose parts would unpack to too much, from the sizes the zip
    declares (zipfile stops reading a part at its declared size, so they cannot lie)."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise TableError(
            f"the file is not a readable XLSX workbook ({exc}); save it again from Excel"
        ) from exc
    total = 0
    for info in infos:
        total += info.file_size
        packed = max(info.compress_size, 1)
        ratio = info.file_size / packed
        if info.file_size > RATIO_FLOOR and ratio > limits.max_ratio:
            raise TableError(
                f"the workbook part {info.filename} unpacks to {_megabytes(info.file_size)} "
                f"from {_megabytes(packed)} ({ratio:,.0f} times); spreadsheets of lists do "
                f"not compress more than about {limits.max_ratio} times, so the file is "
                "refused (it may be damaged or built to exhaust the server)"
            )
        if info.filename.endswith("sharedStrings.xml") and (
            info.file_size > limits.max_shared_strings
        ):
            raise TableError(
                f"the workbook's text table unpacks to {_megabytes(info.file_size)}; at most "
                f"{_megabytes(limits.max_shared_strings)} are read (split the file, or save "
                "it as CSV UTF-8)"
            )
    if total > limits.max_unpacked:
        raise TableError(
            f"the workbook unpacks to {_megabytes(total)}; at most "
            f"{_megabytes(limits.max_unpacked)} are read (split the file, or save it as CSV "
            "UTF-8)"
        )


def open_workbook(path: str | Path | IO[bytes], limits: Limits = DEFAULT_LIMITS) -> Workbook:
    """An XLSX workbook opened read-only (rows are parsed as they are read), after the zip
    checks; a file that is not one says so in plain words."""
    # Imported here: openpyxl is heavy and the running bot never reads spreadsheets.
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    if isinstance(path, str | Path):
        check_zip(Path(path), limits)
    try:
        return load_workbook(path, read_only=True, data_only=True)
    except FileNotFoundError:
        raise
    except (
        zipfile.BadZipFile,
        InvalidFileException,
        OSError,
        KeyError,
        ValueError,
        SyntaxError,  # xml.etree's ParseError and lxml's XMLSyntaxError
    ) as exc:
        raise TableError(
            f"the file is not a readable XLSX workbook ({exc}); save it again from Excel"
        ) from exc


_DIMENSION = re.compile(r"[A-Z]+(\d+)$")


def iter_sheet(
    sheet: Any, limits: Limits = DEFAULT_LIMITS
) -> Iterator[tuple[int, tuple[Any, ...]]]:
    """(row number, cells) of a read-only worksheet; the declared size is checked before
    reading, malformed XML is named by the row after the last one read."""
    try:
        declared = sheet.max_row
    except (ValueError, TypeError, SyntaxError):
        declared = None
    if isinstance(declared, int) and declared > limits.max_rows + 1:
        # The sheet says how far down it goes before a row is parsed: a workbook filled to
        # Excel's last row is refused in milliseconds, not after minutes of parsing.
        raise _row_cap(limits, declared - 1)
    last = 0
    rows = sheet.iter_rows(values_only=True)
    while True:
        try:
            cells = next(rows)
        except StopIteration:
            return
        except (SyntaxError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            row = last + 1
            raise TableError(
                f"row {row}: the sheet {sheet.title!r} is damaged after row {last} ({exc}); "
                "open it in Excel and save it again",
                row,
            ) from exc
        last += 1
        if last > limits.max_rows + 1:
            raise _row_cap(limits, last - 1)
        for index, cell in enumerate(cells):
            if isinstance(cell, str) and len(cell) > MAX_CELL:
                raise TableError(
                    f"row {last}: column {index + 1} holds {len(cell):,} characters; a cell "
                    f"has at most {MAX_CELL:,}",
                    last,
                )
        yield last, cells


def table_kind(path: Path) -> str:
    """ "csv" or "xlsx" by the extension; other files are refused with what to do."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return "xlsx"
    if suffix in (".csv", ".txt", ""):
        return "csv"
    if suffix == ".xls":
        raise TableError("old .xls files are not supported; save the file as .xlsx or CSV")
    raise TableError(f"unsupported file type {suffix!r}; use .csv or .xlsx")
