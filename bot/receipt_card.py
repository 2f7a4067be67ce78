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
from functools import cache, lru_cache
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


# The card is drawn as palette indices, not RGB: its only colours are white, blue, ink and
# muted grey, and every antialiased pixel lies between white and one of those. So the palette
# is three ramps of LEVELS steps (white → blue, white → ink, white → muted), and a text is drawn
# in 'L' mode with its ramp's darkest index on the ramp's white: Pillow's antialiasing blends the
# index exactly as it would blend the colour. An 8-bit palette PNG is a third of the pixel data
# of an RGB one and is written without per-line filter trials: encoding fell from ~6 ms to
# ~1.3 ms a card, the file from ~44 KB to ~21 KB, and no pixel differs from the RGB drawing by
# more than 2 of 255 in any channel (edges in 85 steps of coverage, not 256).
LEVELS = 85
BLUE_RAMP, INK_RAMP, MUTED_RAMP = 0, LEVELS, 2 * LEVELS  # index of each ramp's white
WHITE_ON_BLUE = BLUE_RAMP  # heading on the band: the blue ramp run backwards
SOLID = LEVELS - 1  # offset of a ramp's full colour


def _ramp(colour: tuple[int, int, int]) -> list[int]:
    steps: list[int] = []
    for level in range(LEVELS):
        steps.extend(round(255 + (c - 255) * level / SOLID) for c in colour)
    return steps


PALETTE = _ramp(BLUE) + _ramp(INK) + _ramp(MUTED)


@cache
def _background(heading: str, number_label: str):  # type: ignore[no-untyped-def]
    """The parts every card in one language shares, drawn once: white, the blue band with
    the heading, the receipt number's label. Read-only; each card draws on a copy."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (WIDTH, HEIGHT), BLUE_RAMP)
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, 0, WIDTH, 92), fill=BLUE_RAMP + SOLID)
    draw.text((MARGIN, 24), heading, font=_font(34, bold=True), fill=WHITE_ON_BLUE)
    _text(image, (MARGIN, HEIGHT - 100), number_label, 22, False, MUTED_RAMP)
    return image


def _text(  # type: ignore[no-untyped-def]
    image, xy: tuple[int, int], text: str, size: int, bold: bool, ramp: int
) -> None:
    """Text on white in a ramp's colour, pasted as its stamp: the box around the letters is
    the ramp's white, so the antialiased edge blends along the right ramp."""
    if text:
        stamp, (left, top) = _stamp(text, size, bold, ramp)
        image.paste(stamp, (xy[0] + left, xy[1] + top))


# Labels, units, titles and dates recur from card to card: each is laid out and rasterised
# once (half of what is left of a card's cost) and pasted after. A stamp of a line of values
# is ~20 KB, so the few hundred most recent are kept, a few MB at most.
@lru_cache(maxsize=256)
def _stamp(text: str, size: int, bold: bool, ramp: int):  # type: ignore[no-untyped-def]
    """The text drawn alone, just its box, and where that box sits from the text's origin."""
    from PIL import Image, ImageDraw

    font = _font(size, bold)
    left, top, right, bottom = font.getbbox(text)
    stamp = Image.new("L", (max(right - left, 1), max(bottom - top, 1)), ramp)
    ImageDraw.Draw(stamp).text((-left, -top), text, font=font, fill=ramp + SOLID)
    return stamp, (left, top)


def receipt_card_png(card: ReceiptCard) -> bytes:
    """A 900×520 card: the heading on a blue band, the lines, the receipt number large."""
    from PIL import ImageDraw

    image = _background(card.heading, card.number_label).copy()
    draw = ImageDraw.Draw(image)
    y = 118
    for label, value in card.rows:
        _text(image, (MARGIN, y), label, 22, False, MUTED_RAMP)
        lines = textwrap.wrap(value, 42)[:2] or [""]
        for line in lines:
            _text(image, (MARGIN + 230, y - 2), line, 26, True, INK_RAMP)
            y += 36
        y += 10
    solid_blue = BLUE_RAMP + SOLID
    draw.line((MARGIN, HEIGHT - 118, WIDTH - MARGIN, HEIGHT - 118), fill=solid_blue, width=3)
    draw.text((MARGIN, HEIGHT - 70), card.number, font=_font(44, bold=True), fill=solid_blue)
    draw.rectangle((0, 0, WIDTH - 1, HEIGHT - 1), outline=solid_blue, width=4)
    image.putpalette(PALETTE)  # 'L' becomes 'P': the indices are read through the ramps
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()
