"""The receipt as a small picture card (PNG) a member can keep in the phone's gallery and
show: drawn with Pillow (matplotlib's own dependency), in DejaVu Sans, which has every
Vietnamese letter; the font files come with matplotlib, so nothing depends on the system's.

Pillow is imported inside the function: a bot that never registers anyone never loads it.
"""

from __future__ import annotations

import importlib.util
import io
import textwrap
import threading
from functools import cache
from pathlib import Path

from handlers.receipts import ReceiptCard

WIDTH, HEIGHT = 900, 520
MARGIN = 40
BLUE = (11, 87, 164)
INK = (28, 39, 51)
MUTED = (74, 90, 106)


@cache
def _font_dir() -> Path | None:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"
    return folder if folder.is_dir() else None


# Fonts loaded by this thread (size, bold) -> font: reading and parsing a TrueType file is
# 0.1-0.3 ms each, five per card. Per thread, as cards are drawn in asyncio's executor and a
# FreeType face is not meant to be used by two threads at once.
_fonts = threading.local()


def _font(size: int, bold: bool = False):  # type: ignore[no-untyped-def]
    loaded = getattr(_fonts, "loaded", None)
    if loaded is None:
        loaded = _fonts.loaded = {}
    font = loaded.get((size, bold))
    if font is None:
        font = loaded[(size, bold)] = _load_font(size, bold)
    return font


def _load_font(size: int, bold: bool):  # type: ignore[no-untyped-def]
    from PIL import ImageFont

    folder = _font_dir()
    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    if folder is not None and (folder / name).exists():
        return ImageFont.truetype(str(folder / name), size)
    return ImageFont.load_default(size)


def receipt_card_png(card: ReceiptCard) -> bytes:
    """A 900×520 card: the heading on a blue band, the lines, the receipt number large."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 92), fill=BLUE)
    draw.text((MARGIN, 24), card.heading, font=_font(34, bold=True), fill="white")
    y = 118
    label_font, value_font = _font(22), _font(26, bold=True)
    for label, value in card.rows:
        draw.text((MARGIN, y), label, font=label_font, fill=MUTED)
        lines = textwrap.wrap(value, 42)[:2] or [""]
        for line in lines:
            draw.text((MARGIN + 230, y - 2), line, font=value_font, fill=INK)
            y += 36
        y += 10
    draw.line((MARGIN, HEIGHT - 118, WIDTH - MARGIN, HEIGHT - 118), fill=BLUE, width=3)
    draw.text((MARGIN, HEIGHT - 100), card.number_label, font=label_font, fill=MUTED)
    draw.text((MARGIN, HEIGHT - 70), card.number, font=_font(44, bold=True), fill=BLUE)
    draw.rectangle((0, 0, WIDTH - 1, HEIGHT - 1), outline=BLUE, width=4)
    buffer = io.BytesIO()
    # The fastest zlib level: the same pixels in 3 ms less (of 11 ms a card, once per
    # registration: bench/conversation.py), for a file about 15 % larger (42 KB).
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
