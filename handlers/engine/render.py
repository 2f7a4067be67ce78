"""Text rendering of replies for channels without buttons (terminal, Zalo Bot, SMS-like)."""

from __future__ import annotations

from handlers.engine.prompt import NAV_IDS, Reply
from handlers.i18n import _


def numbered_text(reply: Reply) -> str:
    """The reply's text, its choices numbered "1. …", and the navigation words to type."""
    lines = [reply.text]
    options = [c for c in reply.choices if c.id not in NAV_IDS]
    navigation = [c for c in reply.choices if c.id in NAV_IDS]
    if options:
        lines.append("")
        lines += [f"{n}. {choice.label}" for n, choice in enumerate(options, start=1)]
    if navigation:
        words = " · ".join(c.label.strip("«»✖ ").strip() for c in navigation)
        lines.append(_("(You can also type: {words})").format(words=words))
    return "\n".join(lines)
