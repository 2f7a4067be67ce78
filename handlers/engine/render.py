"""Text rendering of replies for channels without buttons (terminal, Zalo Bot, SMS-like)."""

from __future__ import annotations

from handlers.engine.prompt import ACTION_PREFIX, NAV_IDS, Reply
from handlers.i18n import _


def numbered_text(reply: Reply) -> str:
    """The reply's text, its choices numbered "1. …", and the navigation words to type."""
    lines = [reply.text]
    actions = [c for c in reply.choices if c.id.startswith(ACTION_PREFIX)]
    options = [c for c in reply.choices if c.id not in NAV_IDS and c not in actions]
    navigation = [c for c in reply.choices if c.id in NAV_IDS]
    if options:
        lines.append("")
        lines += [f"{n}. {choice.label}" for n, choice in enumerate(options, start=1)]
    if actions:
        # A notification's buttons are not answers to the current question, so they are not
        # numbered: they are typed as commands ("/approve 12"), which the engine accepts.
        lines.append("")
        for choice in actions:
            name, _sep, arg = choice.id[1:].partition(":")
            command = f"/{name} {arg}".strip()
            lines.append(_("{label}: type {command}").format(label=choice.label, command=command))
    if navigation:
        words = " · ".join(c.label.strip("«»✖ ").strip() for c in navigation)
        lines.append(_("(You can also type: {words})").format(words=words))
    return "\n".join(lines)
