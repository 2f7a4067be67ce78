"""Property-based tests of every parser people's words go through: 10,000 inputs each.

Each parser either returns a well-formed value or raises :class:`Invalid` (which the
conversation turns into a kind re-ask); nothing else may escape. Round trips check that what
the bot writes (amounts, dates) and what people commonly type reads back to the same value.

Marked ``fuzz``. With THIDUA_FUZZ=full (`make fuzz`, CI) each property gets 10,000 examples;
an ordinary run gives each a few hundred.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Callable
from datetime import date

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from bot.channels.telegram import MAX_CALLBACK_BYTES, callback_data, parse_callback_data
from handlers.engine.runner import match_choice
from handlers.text import format_date, format_money, split_message
from storage.normalize import (
    MAX_ID,
    Invalid,
    _fold_slowly,
    clean,
    fold,
    parse_date,
    parse_id,
    parse_money,
    parse_name,
    parse_phone,
)
from tests.strategies import INVISIBLE, examples, hostile_text, nfd, vietnamese_name

pytestmark = pytest.mark.fuzz

# Deadline off: a loaded CI machine is no reason to fail.
MANY = settings(
    max_examples=examples(),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
INVISIBLE_SET = set(INVISIBLE)


# --- clean and fold --------------------------------------------------------------------------


@MANY
@given(hostile_text, st.booleans())
def test_clean_gives_visible_nfc_text_and_is_idempotent(text: str, multiline: bool) -> None:
    out = clean(text, multiline=multiline)
    assert unicodedata.is_normalized("NFC", out)
    assert not INVISIBLE_SET & set(out)
    for ch in out:
        if ch == "\n":
            assert multiline
        else:
            assert unicodedata.category(ch) not in ("Cc", "Cf", "Cs", "Co"), repr(ch)
    assert out == out.strip()
    assert "  " not in out
    assert clean(out, multiline=multiline) == out


@MANY
@given(hostile_text, st.integers(1, 300))
def test_clean_with_a_limit_only_refuses_too_long(text: str, limit: int) -> None:
    try:
        out = clean(text, max_length=limit)
    except Invalid as exc:
        assert exc.reason == "too_long"
        assert len(clean(text)) > limit
    else:
        assert len(out) <= limit


@MANY
@given(hostile_text)
def test_fold_is_accent_free_lower_case_and_stable(text: str) -> None:
    out = fold(text)
    assert fold(out) == out
    assert "đ" not in out and "Đ" not in out
    assert not any(unicodedata.category(ch) == "Mn" for ch in out)
    assert out == out.strip() and "  " not in out


# Letters, accents (composed and combining), spaces and a few characters outside the fold's
# table: the table path and the full path must agree on every mix of them.
_fold_alphabet = st.one_of(
    st.characters(min_codepoint=0x20, max_codepoint=0x24F),
    st.characters(min_codepoint=0x300, max_codepoint=0x36F),
    st.characters(min_codepoint=0x1EA0, max_codepoint=0x1EFF),
    st.sampled_from(["\t", "\n", "\u00a0", "\u200b", "\u0130", "\u03a3", "ß", "ﬁ"]),
)


@MANY
@given(st.one_of(st.text(_fold_alphabet, max_size=40), vietnamese_name, hostile_text))
def test_fold_by_table_equals_the_full_fold(text: str) -> None:
    # The table is what sorts a province's export; the full path is the definition.
    assert fold(text) == _fold_slowly(text)
    assert fold(nfd(text)) == _fold_slowly(nfd(text))


@MANY
@given(vietnamese_name)
def test_fold_ignores_case_composition_and_diacritics(name: str) -> None:
    plain = "".join(
        ch for ch in nfd(name.replace("đ", "d").replace("Đ", "D")) if not unicodedata.combining(ch)
    )
    assert fold(name) == fold(nfd(name)) == fold(name.upper()) == fold(plain)


# --- phones ----------------------------------------------------------------------------------


@MANY
@given(hostile_text)
def test_phone_is_canonical_or_invalid(text: str) -> None:
    try:
        phone = parse_phone(text)
    except Invalid:
        return
    assert re.fullmatch(r"0[235789]\d{8}", phone), phone


@st.composite
def typed_phone(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from("235789"))
    rest = draw(st.text(string.digits, min_size=8, max_size=8))
    canonical = f"0{prefix}{rest}"
    national = canonical[1:]
    sep = draw(st.sampled_from(["", " ", ".", "-", "  "]))
    groups = [national[:3], national[3:6], national[6:]]
    body = sep.join(groups)
    style = draw(st.sampled_from(["0", "+84 ", "+84", "84", "(+84) "]))
    noise = draw(st.sampled_from(["", " ", "\u200b", "\u200e", "\ufeff"]))
    return noise + style + body + noise, canonical


@MANY
@given(typed_phone())
def test_phones_as_people_type_them_read_back(case: tuple[str, str]) -> None:
    typed, canonical = case
    assert parse_phone(typed) == canonical


# --- dates -----------------------------------------------------------------------------------


@MANY
@given(hostile_text, st.one_of(st.none(), st.integers(1900, 2100)))
def test_date_is_a_date_or_invalid(text: str, default_year: int | None) -> None:
    try:
        value = parse_date(text, default_year=default_year)
    except Invalid:
        return
    assert isinstance(value, date)


@MANY
@given(
    st.dates(date(1950, 1, 1), date(2099, 12, 31)),
    st.sampled_from(["/", "-", ".", " / "]),
    st.booleans(),
    st.sampled_from(["", " ", "\u200b"]),
)
def test_dates_as_people_type_them_read_back(day: date, sep: str, padded: bool, noise: str) -> None:
    d, m = (f"{day.day:02d}", f"{day.month:02d}") if padded else (str(day.day), str(day.month))
    assert parse_date(f"{noise}{d}{sep}{m}{sep}{day.year}{noise}") == day
    assert parse_date(day.isoformat()) == day
    assert parse_date(format_date(day, "vi")) == day  # as the bot writes it
    assert parse_date(f"{d}{sep}{m}", default_year=day.year) == day
    if day.year >= 2000:
        assert parse_date(f"{d}/{m}/{day.year % 100:02d}") == day


# --- money -----------------------------------------------------------------------------------


@MANY
@given(hostile_text)
def test_money_is_a_bounded_amount_or_invalid(text: str) -> None:
    try:
        amount = parse_money(text)
    except Invalid:
        return
    assert isinstance(amount, int) and 0 <= amount <= 10**15


@MANY
@given(st.integers(0, 10**13), st.sampled_from(["", "đ", " đ", " đồng", " VND", " vnđ"]))
def test_whole_amounts_read_back_with_or_without_thousand_dots(amount: int, unit: str) -> None:
    dotted = f"{amount:,}".replace(",", ".")
    assert parse_money(f"{amount}{unit}") == amount
    assert parse_money(f"{dotted}{unit}") == amount


@MANY
@given(
    st.integers(1, 999),
    st.integers(0, 9),
    st.sampled_from([("triệu", 10**6), ("tr", 10**6), ("tỷ", 10**9), ("ty", 10**9)]),
    st.sampled_from(["", " đồng", " VND"]),
)
def test_amounts_in_units_read_back(
    whole: int, tenth: int, unit: tuple[str, int], tail: str
) -> None:
    word, size = unit
    assert parse_money(f"{whole} {word}{tail}") == whole * size
    assert parse_money(f"{whole},{tenth} {word}{tail}") == whole * size + tenth * size // 10


@MANY
@given(st.integers(0, 10**15))
def test_what_the_bot_writes_reads_back_within_its_rounding(amount: int) -> None:
    shown = format_money(amount, "vi")
    back = parse_money(shown)
    # format_money rounds to 0.01 tỷ / 0.01 triệu: half of that is the most it may differ.
    tolerance = 5_000_000 if amount >= 10**9 else 5_000 if amount >= 10**6 else 0
    assert abs(back - amount) <= tolerance, (amount, shown, back)


# --- names -----------------------------------------------------------------------------------


@MANY
@given(hostile_text)
def test_name_is_clean_letters_or_invalid(text: str) -> None:
    try:
        name = parse_name(text)
    except Invalid:
        return
    assert 2 <= len(name) <= 100
    assert unicodedata.is_normalized("NFC", name)
    assert all(ch.isalpha() or ch in " .-'’" for ch in name)
    assert parse_name(name) == name


@MANY
@given(vietnamese_name, st.sampled_from(["", " ", "\u200b", "\u202e", "\ufeff", "  \t"]))
def test_vietnamese_names_are_accepted_and_stored_composed(name: str, noise: str) -> None:
    parsed = parse_name(noise + name + noise)
    assert unicodedata.is_normalized("NFC", parsed)
    assert fold(parsed) == fold(name)
    assert parse_name(nfd(name)) == parse_name(unicodedata.normalize("NFC", name))
    if name == name.lower() or name == name.upper():
        assert all(part[:1].isupper() for part in parsed.split(" "))  # "nguyễn" -> "Nguyễn"


# --- choices ---------------------------------------------------------------------------------

_label_words = st.sampled_from(
    [
        "Lao",
        "động",
        "tiên",
        "tiến",
        "Chiến",
        "sĩ",
        "thi",
        "đua",
        "Bằng",
        "khen",
        "Tập",
        "thể",
        "xuất",
        "sắc",
        "Cờ",
        "tỉnh",
        "Giấy",
        "🏆",
        "Đăng",
        "ký",
        "💡",
        "sáng",
        "kiến",
        "(LĐTT)",
    ]
)
_labels = st.lists(
    st.lists(_label_words, min_size=1, max_size=5).map(" ".join), min_size=1, max_size=12
)


def _choices(labels: list[str]) -> list[dict[str, object]]:
    return [{"id": f"c{i}", "label": label, "aliases": []} for i, label in enumerate(labels)]


@MANY
@given(_labels, hostile_text)
@example(["Lao động"], "²")  # a digit int() refuses: it crashed the engine once
@example(["Lao động"], "³.")
@example(["Lao động"], "１")  # full-width, from a Japanese or Chinese keyboard
def test_any_text_matches_one_of_the_choices_or_none(labels: list[str], text: str) -> None:
    choices = _choices(labels)
    chosen = match_choice(text, choices)
    assert chosen is None or chosen in {c["id"] for c in choices}


@MANY
@given(_labels, st.data())
def test_a_number_picks_that_choice_and_out_of_range_picks_none(
    labels: list[str], data: st.DataObject
) -> None:
    choices = _choices(labels)
    n = data.draw(st.integers(-3, len(choices) + 3))
    decorated = data.draw(st.sampled_from(["{}", " {} ", "{}.", "{})", "\u200b{}"])).format(n)
    expected = f"c{n - 1}" if 1 <= n <= len(choices) else None
    assert match_choice(decorated, choices) == expected


@MANY
@given(_labels, st.data())
def test_a_label_typed_any_way_picks_that_choice(labels: list[str], data: st.DataObject) -> None:
    folded = [fold(label) for label in labels]
    i = data.draw(st.integers(0, len(labels) - 1))
    assume(folded.count(folded[i]) == 1 and not folded[i].isdigit() and folded[i])
    ways: list[Callable[[str], str]] = [str, str.upper, str.lower, nfd, fold]
    how = data.draw(st.sampled_from(ways))
    choices = _choices(labels)
    assert match_choice(how(labels[i]), choices) == f"c{i}"


@MANY
@given(
    st.lists(
        st.sampled_from(["LĐTT", "CSTĐCS", "TTLĐXS", "BK_TINH", "GK"]), min_size=1, unique=True
    )
)
def test_an_alias_typed_without_diacritics_picks_its_choice(aliases: list[str]) -> None:
    choices = [
        {"id": f"t{i}", "label": f"Danh hiệu {i}", "aliases": [alias]}
        for i, alias in enumerate(aliases)
    ]
    for i, alias in enumerate(aliases):
        assert match_choice(fold(alias), choices) == f"t{i}"
        assert match_choice(alias.lower(), choices) == f"t{i}"


# --- ids after commands and in buttons ------------------------------------------------------


@MANY
@given(hostile_text)
@example("²")
@example("99999999999999999999999")
@example("-1")
@example("0")
def test_an_id_is_a_positive_int32_or_none(text: str) -> None:
    value = parse_id(text)
    assert value is None or 0 < value <= MAX_ID


@MANY
@given(st.integers(1, MAX_ID))
def test_ids_read_back(value: int) -> None:
    assert parse_id(f" {value} ") == value


# --- splitting and button data ------------------------------------------------------------------


@MANY
@given(hostile_text, st.sampled_from([50, 2000, 4096]))
def test_split_parts_fit_and_lose_no_words(text: str, limit: int) -> None:
    parts = split_message(text, limit)
    assert all(len(part) <= limit for part in parts)
    squeeze = re.compile(r"\s+")
    assert squeeze.sub("", "".join(parts)) == squeeze.sub("", text)


@MANY
@given(
    st.one_of(st.none(), st.integers(-1, 10**9)),
    st.text(string.ascii_letters + string.digits + "_!:-", min_size=1, max_size=40),
)
def test_callback_data_fits_telegram_and_reads_back(seq: int | None, choice_id: str) -> None:
    data = callback_data(seq, choice_id)
    assert len(data.encode()) <= MAX_CALLBACK_BYTES
    assert parse_callback_data(data) == (choice_id, -1 if seq is None else seq)


@MANY
@given(st.text(max_size=100))
def test_any_callback_data_parses_without_error(data: str) -> None:
    choice_id, seq = parse_callback_data(data)
    assert isinstance(choice_id, str) and choice_id and isinstance(seq, int)
