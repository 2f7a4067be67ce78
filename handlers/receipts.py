"""What a receipt card says (the words, in the member's language); the composition root
passes the drawing (bot.receipt_card), so pictures stay out of the conversation layer."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from handlers.engine.flow import Ctx
from handlers.engine.prompt import OutFile
from handlers.i18n import _


@dataclass(frozen=True)
class ReceiptCard:
    heading: str
    rows: tuple[tuple[str, str], ...]
    number_label: str
    number: str


async def receipt_file(
    ctx: Ctx, *, name: str, unit: str, title: str, receipt: str, day: str
) -> OutFile | None:
    """The card as a photo to send with the receipt; None when no drawing is configured."""
    draw = ctx.config.receipt_card
    if draw is None:
        return None
    card = ReceiptCard(
        heading=_("EMULATION REGISTRATION"),
        rows=(
            (_("Full name"), name),
            (_("Unit"), unit),
            (_("Title"), title),
            (_("Date"), day),
        ),
        number_label=_("Receipt number"),
        number=receipt,
    )
    # A few milliseconds of drawing, off the event loop all the same.
    png = await asyncio.to_thread(draw, card)
    if not png:
        return None
    return OutFile(f"{receipt}.png", png, "image/png", kind="photo")
