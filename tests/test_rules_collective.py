"""Collective rules (domain.md §3): pure functions, the numbers explained."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from handlers.i18n import use_locale
from handlers.rules import UnitFacts, collective_notes, effective_rules, share_cap_notes

TTLDXS = {"requires_titles": ["TTLDTT"], "min_share_ldtt": 0.70, "min_cstdcs": 1}
TTLDTT = {"min_share_ldtt": 0.50}
CSTDCS = {"requires_titles": ["LDTT"], "requires_initiative": True, "max_share_of_ldtt": 0.15}
NAMES = {"LDTT": "LĐTT", "CSTDCS": "CSTĐCS", "TTLDTT": "TTLĐTT"}


def notes(rules: Mapping[str, Any], facts: UnitFacts, title: str = "TTLĐXS") -> list[str]:
    return [n.text for n in collective_notes(rules, facts, title=title, title_names=NAMES)]


def test_ttldxs_with_one_of_three_explains_every_number() -> None:
    found = collective_notes(
        TTLDXS, UnitFacts(roster=3, counts={"LDTT": 1}), title="TTLĐXS", title_names=NAMES
    )
    texts = [n.text for n in found]
    assert len(texts) == 3
    assert "TTLĐTT" in texts[0] and found[0].offer_title == "TTLDTT"
    assert texts[1] == (
        "TTLĐXS cần ít nhất 70% đoàn viên đạt LĐTT: đơn vị có 1/3 (33%) đăng ký LĐTT."
    )
    assert "ít nhất 1 đoàn viên đạt CSTĐCS" in texts[2] and "có 0 người" in texts[2]


def test_met_rules_say_nothing() -> None:
    facts = UnitFacts(roster=20, counts={"LDTT": 14, "CSTDCS": 1}, collective={"TTLDTT"})
    assert notes(TTLDXS, facts) == []  # 14/20 is exactly 70 %


def test_just_under_the_bar_is_rounded_down() -> None:
    facts = UnitFacts(roster=200, counts={"LDTT": 139, "CSTDCS": 2}, collective={"TTLDTT"})
    (text,) = notes(TTLDXS, facts)
    assert "139/200 (69%)" in text


def test_percentages_in_vietnamese_style_and_campaign_override() -> None:
    rules = effective_rules("TTLDTT", TTLDTT, {"rules": {"TTLDTT": {"min_share_ldtt": 0.675}}})
    (text,) = notes(rules, UnitFacts(roster=20, counts={"LDTT": 12}), title="TTLĐTT")
    assert "67,5%" in text and "12/20 (60%)" in text


def test_empty_roster_is_said_plainly() -> None:
    (text,) = notes(TTLDTT, UnitFacts(roster=0), title="TTLĐTT")
    assert "chưa có ai" in text


def test_english_messages() -> None:
    with use_locale("en"):
        (text,) = notes(TTLDTT, UnitFacts(roster=20, counts={"LDTT": 9}), title="TTLĐTT")
    assert text.startswith("TTLĐTT needs at least 50% of members with LĐTT")
    assert "9/20 (45%)" in text


def test_cstdcs_cap_warns_above_fifteen_percent_of_ldtt() -> None:
    at_cap = UnitFacts(roster=40, counts={"LDTT": 20, "CSTDCS": 3})
    assert share_cap_notes("CSTDCS", CSTDCS, at_cap, title_names=NAMES) == []
    over = UnitFacts(roster=40, counts={"LDTT": 20, "CSTDCS": 4})
    (note,) = share_cap_notes("CSTDCS", CSTDCS, over, title_names=NAMES)
    assert "15%" in note.text and "4 người đăng ký trên 20 LĐTT" in note.text
    assert "tối đa 3" in note.text
    assert share_cap_notes("LDTT", {}, over, title_names=NAMES) == []
