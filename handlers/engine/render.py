"""Text rendering of replies for channels without buttons (terminal, Zalo Bot, SMS-like)."""

from __future__ import annotations

from handlers.engine.prompt import ACTION_PREFIX, NAV_IDS, Reply
from handlers.i18n import _, current_locale

# Notification buttons typed as commands on channels without buttons: Vietnamese words in
# Vietnamese text ("Duyệt: gõ /pheduyet 12"). The engine takes the word and the action's
# own name (handlers.flows.default_actions registers both).
ACTION_WORDS = {
    "approve": "pheduyet",
    "return": "tralai",
    "reopen": "molai",
    "resume": "tieptuc",
    "reg": "dangkyngay",
    "bcancel": "huythongbao",
    "bpreview": "xemthu",
    "claim_ok": "xacnhan",
    "claim_no": "tuchoi",
}
# Buttons that are an existing command already: "📝 Đăng ký ngay" of a reminder is /dangky.
ACTION_COMMANDS = {"start:title": "/dangky", "remind:off": "/tatnhac"}


def typed_command(action: str) -> str:
    """ "approve:12" -> "/pheduyet 12" in Vietnamese, "/approve 12" in English."""
    if action in ACTION_COMMANDS:
        return ACTION_COMMANDS[action]
    name, _sep, arg = action.partition(":")
    if current_locale() == "vi":
        name = ACTION_WORDS.get(name, name)
    return f"/{name} {arg}".strip()


def numbered_text(reply: Reply) -> str:
    """The reply's text, its choices numbered "1. …", and the navigation words to type."""
    lines = [reply.text]
    actions = [c for c in reply.choices if c.id.startswith(ACTION_PREFIX)]
    options = [c for c in reply.choices if c.id not in NAV_IDS and c not in actions]
    navigation = [c for c in reply.choices if c.id in NAV_IDS]
    if options:
        lines.append("")
        # No button to fit here: the whole label.
        lines += [
            f"{n}. {choice.full_label or choice.label}" for n, choice in enumerate(options, start=1)
        ]
    if actions:
        # A notification's buttons are not answers to the current question, so they are not
        # numbered: they are typed as commands ("/approve 12"), which the engine accepts.
        lines.append("")
        for choice in actions:
            command = typed_command(choice.id[1:])
            lines.append(_("{label}: type {command}").format(label=choice.label, command=command))
    if navigation:
        words = " · ".join(c.label.strip("«»✖ ").strip() for c in navigation)
        lines.append(_("(You can also type: {words})").format(words=words))
    return "\n".join(lines)
