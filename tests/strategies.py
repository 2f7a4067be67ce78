"""Hypothesis strategies for what people (and attackers) type: Vietnamese with and without
diacritics, composed and decomposed, emoji, control and invisible characters, bidi marks,
markup, and very long text.
"""

from __future__ import annotations

import os
import unicodedata

from hypothesis import strategies as st

# THIDUA_FUZZ=full (CI's fuzz job, `make fuzz`): 10,000 examples per property and per step of
# the engine, as the issue asks. Otherwise a few hundred, so an ordinary run stays quick.
FULL = os.environ.get("THIDUA_FUZZ", "") == "full"


def examples(full: int = 10_000, quick: int = 300) -> int:
    # THIDUA_FUZZ_EXAMPLES=n sets any other number (to shake a new flow harder, say).
    override = os.environ.get("THIDUA_FUZZ_EXAMPLES", "")
    if override.isdecimal():
        return int(override)
    return full if FULL else quick


# Characters that render as nothing, flip direction or break things downstream.
INVISIBLE = [
    "\u200b",  # zero-width space
    "\u200c",
    "\u200d",  # zero-width joiner (inside emoji sequences too)
    "\u200e",  # left-to-right mark
    "\u200f",  # right-to-left mark
    "\u202a",
    "\u202e",  # right-to-left override: "Hoa" shown as "aoH"
    "\u2066",
    "\u2069",
    "\u2060",
    "\ufeff",  # byte order mark
    "\u00ad",  # soft hyphen
    "\u061c",
]
CONTROL = ["\x00", "\x07", "\x1b", "\x7f", "\r", "\t", "\x0b", "\x0c", "\u0085", "\u2028"]
# Lone surrogates reach Python from JSON "\ud800" escapes (a web client, a webhook body).
SURROGATES = ["\ud800", "\udfff"]
MARKUP = [
    "<b>",
    "</b>",
    "<script>alert(1)</script>",
    "<a href='javascript:alert(1)'>x</a>",
    "&amp;",
    "&lt;",
    "*đậm*",
    "_nghiêng_",
    "`mã`",
    "[link](http://x.y)",
    "||ẩn||",
    "' OR 1=1 --",
    "${7*7}",
    "{name}",
    "%s",
    "\\",
]
EMOJI = ["🙂", "👍🏽", "👨‍👩‍👧‍👦", "🇻🇳", "❤️", "🏳️‍🌈", "𝕳𝖔𝖆"]
VIETNAMESE = [
    "Nguyễn",
    "Thị",
    "Hoa",
    "Trần",
    "Văn",
    "Bình",
    "Đặng",
    "Lê",
    "Phạm",
    "Quỳnh",
    "Hương",
    "ĐỖ",
    "nguyễn",
    "lao động tiên tiến",
    "Chiến sĩ thi đua",
    "Hoàn thành 110% kế hoạch",
    "có",
    "không",
    "bỏ qua",
    "quay lại",
    "hủy",
]
NUMBERS = ["0", "1", "2", "3", "9", "10", "99", "-1", "1.", "2)", " 3 ", "١", "²", "½", "1e9"]


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


piece = st.one_of(
    st.text(max_size=12),
    st.sampled_from(INVISIBLE + CONTROL + SURROGATES + MARKUP + EMOJI + NUMBERS),
    st.sampled_from(VIETNAMESE),
    st.sampled_from(VIETNAMESE).map(nfd),
    st.sampled_from(VIETNAMESE).map(str.upper),
)

# What a person may type: mostly short, sometimes very long.
hostile_text = st.one_of(
    st.lists(piece, max_size=8).map("".join),
    st.lists(piece, max_size=8).map(" ".join),
    st.text(),
    st.builds(
        lambda p, n: p * n,
        st.sampled_from(["Hoa ", "ệ", "👍", "\u200b", "a"]),
        st.integers(1, 3000),
    ),
)

_syllable = st.sampled_from(
    [
        "Nguyễn",
        "Thị",
        "Văn",
        "Hoa",
        "Bình",
        "Đặng",
        "Lê",
        "Phạm",
        "Quỳnh",
        "Hương",
        "Ánh",
        "Thuỷ",
        "Thủy",
        "Đức",
        "Mạnh",
        "Tuấn",
        "Ngọc",
        "Yến",
        "Khuê",
        "Ý",
        "Ơn",
        "Ưng",
    ]
)
# A plausible Vietnamese full name, in any case, composed or not.
vietnamese_name = st.builds(
    lambda parts, how: how(" ".join(parts)),
    st.lists(_syllable, min_size=2, max_size=5),
    st.sampled_from([str, str.lower, str.upper, nfd, lambda s: nfd(s.lower())]),
)
