"""Normalising and parsing what people type or files carry: one truth for the conversation
and for imports alike.

Pure functions. Parsers raise :class:`Invalid` whose ``reason`` is a short machine key; the
conversation turns it into a friendly re-ask, an import into a row problem.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from datetime import date
from decimal import Decimal, InvalidOperation


class Invalid(ValueError):
    """An answer that does not fit; ``reason`` says why in a word the caller can map."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# Characters that render as nothing or flip direction: stripped from everything people type
# so that a name with a hidden mark cannot pose as another.
_INVISIBLE = dict.fromkeys(
    (
        0x00AD,
        0x061C,
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,
        0x2060,
        0xFEFF,
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    )
)


def clean(text: str, *, multiline: bool = False, max_length: int | None = None) -> str:
    """NFC-normalise, drop control and invisible characters, collapse spaces."""
    if multiline or not _clean_already(text):
        text = _cleaned(text, multiline)
    if max_length is not None and len(text) > max_length:
        raise Invalid("too_long")
    return text


def _clean_already(text: str) -> bool:
    """A line that clean() would return unchanged (most text: a million-row roster has four
    million cells). isprintable() is False for every control, format and invisible
    character clean() removes, and for every space but " "."""
    return (
        text.isprintable()
        and "  " not in text
        and text == text.strip()
        and unicodedata.is_normalized("NFC", text)
    )


def _cleaned(text: str, multiline: bool) -> str:
    text = unicodedata.normalize("NFC", text)
    # Printable text (most of it) has no control, format (the invisible ones among them),
    # surrogate or private-use character: nothing to look at one by one.
    if not text.isprintable():
        text = text.translate(_INVISIBLE)
        kept = []
        for ch in text:
            if ch == "\n" and multiline:
                kept.append(ch)
            elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co"):
                kept.append(" ")
            else:
                kept.append(ch)
        text = "".join(kept)
    if multiline:
        lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.split("\n")]
        text = re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
    else:
        text = re.sub(r"\s+", " ", text).strip()
    return text


def fold(text: str) -> str:
    """Accent-free, lower-case, single-spaced form for matching ("Lao động" -> "lao dong")."""
    # Every answer folds the labels of the question's choices (the same few hundred texts
    # over and over): short texts are folded once per process.
    return _fold_short(text) if len(text) <= MAX_FOLD_KEPT else _fold(text)


# Texts up to this length have their folded form kept (at most FOLDS_KEPT of them).
MAX_FOLD_KEPT = 120
FOLDS_KEPT = 4096


def _fold(text: str) -> str:
    # Most text is Vietnamese or plain Latin: folded a character at a time through a table
    # (a province's export sorts 100,000 names by it); anything else takes the full path.
    if _OUTSIDE_TABLE.search(text) is None:
        return " ".join(text.translate(_FOLD_TABLE).split())
    return _fold_slowly(text)


def _fold_slowly(text: str) -> str:
    text = clean(text).lower().replace("đ", "d")
    if text.isascii():
        return text  # nothing to strip, spaces already single
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", stripped).strip()


def _fold_table() -> tuple[dict[int, str], re.Pattern[str]]:
    """Each Latin letter (Vietnamese ones included) and combining accent with its folded form.

    Only characters whose folding does not depend on their neighbours: one character that
    folds to at most one, or an accent (which folds to nothing after any letter); the space
    is the only blank, collapsed by the caller.
    """
    table: dict[int, str] = {}
    codes = [*range(0x21, 0x7F), *range(0xC0, 0x250), *range(0x1EA0, 0x1F00)]
    for code in codes:
        ch = chr(code)
        folded = _fold_slowly(ch)
        if len(folded) == 1 and unicodedata.normalize("NFC", ch) == ch and not folded.isspace():
            table[code] = folded
    for code in range(0x300, 0x370):
        if unicodedata.category(chr(code)) == "Mn":
            table[code] = ""
    table[0x20] = " "
    ranges: list[list[int]] = []
    for code in sorted(table):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1][1] = code
        else:
            ranges.append([code, code])
    outside = "".join(
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    )
    return table, re.compile(f"[^{outside}]")


_FOLD_TABLE, _OUTSIDE_TABLE = _fold_table()
_fold_short = functools.lru_cache(maxsize=FOLDS_KEPT)(_fold)


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key putting "số 2" before "số 10" (numbers by value), accents and case aside."""
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", fold(text))
        if part
    )


def parse_name(text: str) -> str:
    """A person's full name: letters (any script), spaces, dots, hyphens, apostrophes."""
    name = clean(text, max_length=100)
    if len(name) < 2:
        raise Invalid("too_short")
    if not any(ch.isalpha() for ch in name):
        raise Invalid("not_a_name")
    if any(not (ch.isalpha() or ch in " .-'’") for ch in name):
        raise Invalid("not_a_name")
    # "nguyễn văn an" -> "Nguyễn Văn An"; names already typed with capitals are kept.
    if name == name.lower() or name == name.upper():
        name = " ".join(part[:1].upper() + part[1:].lower() for part in name.split(" "))
    return name


# Ids are INTEGER columns: PostgreSQL refuses anything larger (and SQLite overflows past 2**63).
MAX_ID = 2**31 - 1


def parse_id(text: str) -> int | None:
    """A record id carried by a button or typed after a command ("/approve 12"): a positive
    ASCII number that fits the database's integer columns, else None (never an error)."""
    text = text.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 0 < value <= MAX_ID else None


_PHONE_PREFIXES = ("3", "5", "7", "8", "9", "2")


def parse_phone(text: str) -> str:
    """A Vietnamese phone number, normalised to ``0xxxxxxxxx``.

    Accepts "0912 345 678", "0912.345.678", "+84 912 345 678", "84912345678".
    """
    raw = clean(text)
    if not raw:
        raise Invalid("empty")
    if re.search(r"[^\d\s.\-+()]", raw):
        raise Invalid("not_a_phone")
    digits = re.sub(r"\D", "", raw)
    if raw.lstrip().startswith("+") and not digits.startswith("84"):
        raise Invalid("foreign_phone")
    if digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if len(digits) != 10 or not digits.startswith("0") or digits[1] not in _PHONE_PREFIXES:
        raise Invalid("not_a_phone")
    return digits


def parse_date(text: str, *, default_year: int | None = None) -> date:
    """A date typed as dd/mm/yyyy (also "-" or "." as separators, or ISO yyyy-mm-dd)."""
    s = clean(text)
    m = re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", s)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
    else:
        m = re.fullmatch(r"(\d{1,2})\s*[/.\-]\s*(\d{1,2})(?:\s*[/.\-]\s*(\d{2}|\d{4}))?", s)
        if not m:
            raise Invalid("not_a_date")
        d, mo = int(m.group(1)), int(m.group(2))
        if m.group(3) is None:
            if default_year is None:
                raise Invalid("not_a_date")
            y = default_year
        else:
            y = int(m.group(3))
            if y < 100:
                y += 2000
    try:
        return date(y, mo, d)
    except ValueError as exc:
        raise Invalid("no_such_date") from exc


_MONEY_UNITS = {
    "ty": Decimal(1_000_000_000),
    "ti": Decimal(1_000_000_000),
    "trieu": Decimal(1_000_000),
    "tr": Decimal(1_000_000),
    "nghin": Decimal(1_000),
    "ngan": Decimal(1_000),
    "k": Decimal(1_000),
    "dong": Decimal(1),
    "vnd": Decimal(1),
    "d": Decimal(1),
}
_MONEY_RE = re.compile(r"(\d[\d.,\s]*)\s*([a-z]*)")
# "80 triệu đồng", "1,2 tỷ VND": the currency named after a unit word, the way the bot itself
# writes amounts (format_money), so an amount copied from a message reads back.
_CURRENCY_AFTER_UNIT = re.compile(r"(?<![a-z])(ty|ti|trieu|tr|nghin|ngan|k)\s*(?:dong|vnd|d)$")


def _parse_vn_number(text: str, *, has_unit: bool) -> Decimal:
    """Read "1.200.000", "1,2", "1.5" the Vietnamese way ("." thousands, "," decimal)."""
    s = text.replace(" ", "")
    if "," in s and "." in s:
        s = s.replace(".", "").replace(",", ".")
    elif "," in s:
        s = (
            s.replace(",", ".")
            if re.fullmatch(r"\d+,\d{1,2}", s) or has_unit
            else s.replace(",", "")
        )
    elif "." in s:
        # "1.200.000" and "4.825 tỷ" group thousands (how the bot itself writes amounts);
        # "1.5 tỷ" or "1.25 tỷ" is a decimal point typed the English way.
        if re.fullmatch(r"\d{1,3}(\.\d{3})+", s):
            s = s.replace(".", "")
        elif not has_unit:
            raise Invalid("not_money")
    try:
        return Decimal(s)
    except InvalidOperation as exc:
        raise Invalid("not_money") from exc


def parse_money(text: str) -> int:
    """An amount in đồng: "80 triệu", "1,2 tỷ", "1.200.000", "1200000đ", "1 tỷ 200 triệu"."""
    folded = fold(text).replace("đ", "d")
    if not folded:
        raise Invalid("empty")
    folded = _CURRENCY_AFTER_UNIT.sub(r"\1", folded)
    if folded.startswith("-"):
        raise Invalid("negative")
    total = Decimal(0)
    pos = 0
    matched = False
    for m in _MONEY_RE.finditer(folded):
        if folded[pos : m.start()].strip():
            raise Invalid("not_money")
        number, unit = m.group(1).strip(), m.group(2)
        if unit and unit not in _MONEY_UNITS:
            raise Invalid("not_money")
        value = _parse_vn_number(
            number.rstrip(".,"), has_unit=unit in _MONEY_UNITS and unit not in ("d", "dong", "vnd")
        )
        total += value * _MONEY_UNITS.get(unit or "d", Decimal(1))
        pos = m.end()
        matched = True
    if not matched or folded[pos:].strip():
        raise Invalid("not_money")
    if total != total.to_integral_value():
        total = total.to_integral_value()
    if total > Decimal(10) ** 15:
        raise Invalid("too_large")
    return int(total)
