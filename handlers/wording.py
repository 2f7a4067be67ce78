"""Wording that fits the channel: where buttons show, a prompt says "bấm “Bỏ qua”"; where
choices come as numbered text (Zalo Bot, the console), it says what to type instead. The
numbered rendering accepts a choice's label or its number, so both ways of saying it work.
"""

from __future__ import annotations

from handlers.engine.flow import Ctx
from handlers.i18n import _

# Decorations a button label carries but nobody types ("Bỏ qua »", "✖ Hủy", "↩️ Làm lại từ đầu").
_DECORATION = "«»✖✅➖↩\ufe0f "


def press(ctx: Ctx, label: str, number: int | None = None) -> str:
    """How the person picks ``label`` on their channel: "bấm “Xong”" where buttons show;
    elsewhere "gõ số 1" for the numbered choice ``number``, or "gõ “Bỏ qua”" for a
    navigation word (those are not numbered)."""
    label = label.strip(_DECORATION).strip()
    if ctx.shows_buttons:
        return _("tap “{label}”").format(label=label)
    if number is not None:
        return _("type {number}").format(number=number)
    return _("type “{label}”").format(label=label)


def skip(ctx: Ctx) -> str:
    """ "bấm “Bỏ qua”" / "gõ “Bỏ qua”": the way out of an optional question."""
    return press(ctx, _("Skip »"))


def cancel(ctx: Ctx) -> str:
    return press(ctx, _("✖ Cancel"))
