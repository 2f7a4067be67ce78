"""Vietnamese text helpers for the conversation: formatting numbers, dates and money, and
splitting long messages. The parsers live in storage.normalize (imports use them too) and are
re-exported here so the conversation has one place to look.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from babel.numbers import format_decimal

from storage.normalize import (
    Invalid,
    clean,
    fold,
    parse_date,
    parse_id,
    parse_money,
    parse_name,
    parse_phone,
)

__all__ = [
    "Invalid",
    "clean",
    "fold",
    "format_count",
    "format_date",
    "format_money",
    "format_number",
    "given_name",
    "parse_date",
    "parse_id",
    "parse_money",
    "parse_name",
    "parse_phone",
    "split_message",
]


# --- formatting -------------------------------------------------------------------------


def format_number(value: int | float | Decimal, locale: str = "vi") -> str:
    """1234567 -> "1.234.567" (vi) or "1,234,567" (en)."""
    return format_decimal(value, locale=locale)


def format_count(value: int, locale: str = "vi") -> str:
    """Counts in summaries: two digits in Vietnamese reports ("02", "17", "1.445"); zero is
    "0" (a "00" reads like a time or a date)."""
    if locale == "vi" and 0 < value < 10:
        return f"0{value}"
    return format_number(value, locale)


def format_date(value: date, locale: str = "vi") -> str:
    """25/01/2027 in Vietnamese; ISO-like day/month order kept for English readers too."""
    if locale == "en":
        return value.strftime("%d %b %Y")
    return value.strftime("%d/%m/%Y")


def format_money(amount: int, locale: str = "vi") -> str:
    """44_900_000_000 -> "44,9 tỷ đồng"; 80_000_000 -> "80 triệu đồng"; small sums in full."""
    units = (
        (Decimal(1_000_000_000), "tỷ đồng", "billion VND"),
        (Decimal(1_000_000), "triệu đồng", "million VND"),
    )
    for size, vi_word, en_word in units:
        if amount >= size:
            value = (Decimal(amount) / size).quantize(Decimal("0.01")).normalize()
            shown = format_decimal(value, format="#,##0.##", locale=locale)
            return f"{shown} {vi_word if locale == 'vi' else en_word}"
    return f"{format_number(amount, locale)} {'đồng' if locale == 'vi' else 'VND'}"


def given_name(full_name: str) -> str:
    """The name a Vietnamese person is called by: the last word ("Nguyễn Thị Hoa" -> "Hoa").

    Greetings use it ("Chào bạn Hoa!"); a full name as a greeting reads like a summons.
    """
    words = full_name.split()
    return words[-1] if words else full_name


def split_message(text: str, limit: int) -> list[str]:
    """Split a long text under ``limit`` characters at paragraph, line or word boundaries."""
    if len(text) <= limit:
        return [text]
    parts: list[str] = []
    rest = text
    while len(rest) > limit:
        window = rest[: limit + 1]
        cut = -1
        for sep in ("\n\n", "\n", " "):
            cut = window.rfind(sep)
            if cut > 0:
                break
        if cut <= 0:
            cut = limit  # one unbroken word longer than the limit
        parts.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        parts.append(rest)
    return parts


def without_diacritics(name: str) -> bool:
    """A Vietnamese name typed without any diacritic ("le van tam"): worth asking about,
    since it is printed on lists as typed."""
    letters = [ch for ch in name if ch.isalpha()]
    return bool(letters) and all(ch.isascii() for ch in letters)
