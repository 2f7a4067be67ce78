"""Buttons fit a 360-px phone: every button label of every flow, in Vietnamese as rendered,
is at most 32 characters (MAX_LABEL).

Labels written for buttons are found in the code (every ``Choice(…, _("…"))`` and keyboard
button), translated and filled with the longest values they take; titles on buttons are
checked for the whole catalogue, also with a long awarding body; labels made of data (a
unit's or a person's name) are shortened by ``Choice`` itself and still selected by typing
them whole. Every flow test also checks the buttons of every reply it gets (tests/chat.py).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from handlers.engine.prompt import MAX_LABEL, Choice
from handlers.engine.runner import match_choice, stored_choice
from handlers.flows.common import title_button
from handlers.i18n import _, use_locale
from storage.campaigns import issuer_award_name
from storage.models import Title, Unit
from storage.seed import catalogue_entries, seed_rules

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w*)\}")
BUTTON_CALLS = {"Choice", "KeyboardButton", "InlineKeyboardButton"}


def catalogue_titles() -> list[Title]:
    return [
        Title(
            code=e["code"],
            name=e["name"],
            abbreviation=e.get("abbreviation"),
            target=e["target"],
            level=e["level"],
            rules=seed_rules(e),
        )
        for e in catalogue_entries()
    ]


def longest_value(placeholder: str) -> str:
    """The longest text a placeholder of a button takes (titles are shown abbreviated)."""
    if placeholder == "title":
        return max((t.abbreviation or "" for t in catalogue_titles()), key=len)
    if placeholder == "n":
        return "1000"
    if placeholder == "time":
        return "08:00"
    if placeholder == "date":
        return "25/01/2027"
    # A name (a person's, a file's, a unit's): data, shortened by Choice when too long;
    # the words around it must leave room for a short one.
    return "Nguyễn Hoa"


def button_msgids() -> list[tuple[str, str]]:
    """(where, msgid) of every label written for a button in handlers/ and bot/."""
    found: list[tuple[str, str]] = []
    for directory in ("handlers", "bot"):
        for path in sorted((ROOT / directory).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Call):
                    continue
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name not in BUTTON_CALLS:
                    continue
                label = node.args[1] if len(node.args) > 1 else None
                for keyword in node.keywords:
                    if keyword.arg in ("label", "text"):
                        label = keyword.value
                msgid = _msgid(label)
                if msgid is not None:
                    found.append((f"{path.relative_to(ROOT)}:{node.lineno}", msgid))
    return found


def _msgid(node: ast.expr | None) -> str | None:
    """The msgid of ``_("…")`` or ``_("…").format(…)``; None for labels made of data."""
    if not isinstance(node, ast.Call):
        return None
    if isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _msgid(node.func.value)
    if getattr(node.func, "id", None) == "_":
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            return first.value
    return None


def test_the_scan_finds_the_buttons_of_every_flow() -> None:
    places = {where.split(":")[0] for where, _msgid in button_msgids()}
    for flow in ("menu", "titles", "leader", "initiatives", "works", "mine", "broadcast"):
        assert f"handlers/flows/{flow}.py" in places, flow
    assert "handlers/engine/runner.py" in places  # Bỏ qua, Quay lại, Hủy
    assert "bot/channels/telegram.py" in places  # the share-my-number button


def test_every_button_label_fits_in_vietnamese() -> None:
    too_long = []
    with use_locale("vi"):
        for where, msgid in button_msgids():
            values = {p: longest_value(p) for p in PLACEHOLDER.findall(msgid)}
            label = _(msgid).format(**values) if values else _(msgid)
            if len(label) > MAX_LABEL:
                too_long.append(f"{where}: {label!r} ({len(label)})")
    assert too_long == []


def test_every_title_button_fits_uncut() -> None:
    """Titles are shortened the way officers write them, never cut in the middle."""
    long_bodies = [
        None,
        Unit(code="X", name="LĐLĐ tỉnh Bà Rịa – Vũng Tàu", search_name="", kind="province"),
        Unit(code="Y", name="Công đoàn ngành Giáo dục", search_name="", kind="province"),
        Unit(code="Z", name="LĐLĐ tỉnh Thừa Thiên Huế", search_name="", kind="province"),
    ]
    for body in long_bodies:
        for title in catalogue_titles():
            names = {}
            if title.rules.get("awarded_by_issuer"):
                names[title.code] = issuer_award_name(title.name, body)
            label = title_button(title, names)
            assert len(label) <= MAX_LABEL and not label.endswith("…"), label


def test_a_label_made_of_data_is_shortened_and_still_typed_whole() -> None:
    unit = Choice("u1", "Công đoàn cơ sở Công ty Cổ phần Xi măng Bắc Kạn")
    assert unit.label == "CĐCS Công ty CP Xi măng Bắc Kạn"  # as officers write it
    person = Choice("p1", "Nguyễn Thị Hoa — Tổ trưởng tổ may số 1, phân xưởng 2")
    assert len(person.label) <= MAX_LABEL and person.label.endswith("…")
    for choice in (unit, person):
        assert match_choice(choice.full_label, [stored_choice(choice)]) == choice.id
    assert match_choice("cong ty co phan xi mang", [stored_choice(unit)]) == "u1"  # a part


def test_choices_of_the_initiative_flow_fit_uncut() -> None:
    """The field and author buttons: made by functions, shortened the officers' way."""
    from handlers.flows.initiatives import FIELDS, category_button, field_label
    from handlers.rules import AUTHOR_CATEGORIES

    with use_locale("vi"):
        labels = [field_label(f) for f in FIELDS] + [category_button(c) for c in AUTHOR_CATEGORIES]
        for label in labels:
            shown = Choice("x", label).label
            assert len(shown) <= MAX_LABEL and not shown.endswith("…"), shown
        assert Choice("x", field_label("digital")).label == "Chuyển đổi số, CNTT"
