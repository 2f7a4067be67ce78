"""The rules of the title catalogue (domain.md §3), each tested with the source it rests on.

The rules are read from the catalogue itself (storage/seed/titles.yaml), so these tests check
the values the bot uses, and every message is checked for the source it cites and for the
unit's own numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from handlers.i18n import use_locale
from handlers.rules import (
    META_KEYS,
    PersonFacts,
    UnitFacts,
    collective_notes,
    effective_rules,
    individual_notes,
    ldst_candidate,
    share_cap_notes,
)
from storage.campaigns import issuer_award_name
from storage.models import Unit
from storage.seed import catalogue_entries, seed_rules

LAW_2022 = "Luật Thi đua, khen thưởng 2022"
TLD_999 = "QĐ 999/QĐ-TLĐ ngày 29/05/2024"
NAMES = {"LDTT": "LĐTT", "CSTDCS": "CSTĐCS", "TTLDTT": "TTLĐTT", "CSTD_TINH": "CSTĐ cấp tỉnh"}


def catalogue(code: str, campaign: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The rules of ``code`` as the bot applies them in a campaign with these settings."""
    entry = next(e for e in catalogue_entries() if e["code"] == code)
    return effective_rules(code, seed_rules(entry), campaign or {})


def collective(code: str, facts: UnitFacts, campaign: Mapping[str, Any] | None = None) -> list[str]:
    title = {"TTLDXS": "TTLĐXS", "TTLDTT": "TTLĐTT"}[code]
    found = collective_notes(catalogue(code, campaign), facts, title=title, title_names=NAMES)
    return [n.text for n in found]


def personal(code: str, facts: PersonFacts, campaign: Mapping[str, Any] | None = None) -> list[str]:
    rules = catalogue(code, campaign)
    return [n.text for n in individual_notes(rules, facts, year=2027, title_names=NAMES)]


# --- every rule names its source ------------------------------------------------------------


def test_every_title_and_every_rule_of_the_catalogue_names_its_source() -> None:
    """Luật TĐKT 2022, NĐ 98/2023, QĐ 999/QĐ-TLĐ: each title and rule cites one of them."""
    for entry in catalogue_entries():
        rules = entry.get("rules") or {}
        sources = rules.get("sources") or {}
        assert sources.get("title"), entry["code"]
        for key in rules:
            if key not in (*META_KEYS, "names_collective"):
                assert sources.get(key), f"{entry['code']}.{key} has no source"
        for key, option in (entry.get("options") or {}).items():
            assert option.get("source") and "value" in option, f"{entry['code']} option {key}"
        assert entry.get("kind") in ("title", "award"), entry["code"]


# --- TTLĐTT: more than 50 % of the collective -----------------------------------------------


def test_ttldtt_needs_more_than_half_of_the_collective_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022: TTLĐTT needs MORE than 50 % (trên 50 %) LĐTT."""
    half = UnitFacts(roster=10, counts={"LDTT": 5}, name="Tổ Cơ khí")
    (text,) = collective("TTLDTT", half)
    assert text == (
        "TTLĐTT cần trên 50% số cá nhân trong tập thể đạt LĐTT: Tổ Cơ khí có 5/10 người (50%) "
        f"đăng ký LĐTT. (Căn cứ: {LAW_2022})"
    )
    assert "ít nhất 50" not in text
    assert collective("TTLDTT", UnitFacts(roster=10, counts={"LDTT": 6}, name="Tổ Cơ khí")) == []


def test_ttldtt_counts_the_unit_when_the_collective_people_are_unknown_luat_tdkt_2022() -> None:
    """Luật TĐKT 2022 counts over the collective's people; unknown ones are said so."""
    typed = UnitFacts(roster=20, counts={"LDTT": 8}, name="Phân xưởng 2", people_known=False)
    (text,) = collective("TTLDTT", typed)
    assert "đơn vị có 8/20 người (40%)" in text  # not said of the workshop
    assert "Mình chưa có danh sách người thuộc Phân xưởng 2" in text
    assert text.endswith(f"(Căn cứ: {LAW_2022})")


def test_empty_collective_is_said_plainly_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022 (TTLĐTT): nobody on the list is said, not 0/0."""
    (text,) = collective("TTLDTT", UnitFacts(roster=0))
    assert "danh sách của đơn vị chưa có ai" in text and "0/0" not in text


# --- TTLĐXS: at least 70 % LĐTT and a CSTĐCS; the TTLĐTT prerequisite is an option ----------


def test_ttldxs_explains_every_number_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022: TTLĐXS needs ≥ 70 % LĐTT and a CSTĐCS."""
    texts = collective("TTLDXS", UnitFacts(roster=3, counts={"LDTT": 1}))
    assert texts == [
        "TTLĐXS cần ít nhất 70% số cá nhân trong tập thể đạt LĐTT: đơn vị có 1/3 người (33%) "
        f"đăng ký LĐTT. (Căn cứ: {LAW_2022})",
        "TTLĐXS cần ít nhất 1 cá nhân trong tập thể đạt CSTĐCS: đơn vị có 0 người đăng ký "
        f"CSTĐCS. (Căn cứ: {LAW_2022})",
    ]


def test_ttldxs_met_and_just_under_the_bar_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022: 14/20 is exactly 70 %; 139/200 shows 69 %, not 70 %."""
    assert collective("TTLDXS", UnitFacts(roster=20, counts={"LDTT": 14, "CSTDCS": 1})) == []
    (text,) = collective("TTLDXS", UnitFacts(roster=200, counts={"LDTT": 139, "CSTDCS": 2}))
    assert "139/200 người (69%)" in text


def test_ttldtt_before_ttldxs_is_an_option_off_by_default_not_in_luat_tdkt_2022() -> None:
    """Not in Luật Thi đua, khen thưởng 2022: being TTLĐTT first is a campaign option."""
    facts = UnitFacts(roster=20, counts={"LDTT": 15, "CSTDCS": 1})
    assert collective("TTLDXS", facts) == []
    on = {"rules": {"TTLDXS": {"requires_titles": True}}}
    found = collective_notes(catalogue("TTLDXS", on), facts, title="TTLĐXS", title_names=NAMES)
    (note,) = found
    assert note.offer_title == "TTLDTT"
    assert "không có trong Luật Thi đua, khen thưởng 2022" in note.text


def test_a_campaign_value_is_cited_as_the_campaign_rule() -> None:
    """A share changed by the campaign file is not the law's: it cites the campaign."""
    rules = {"rules": {"TTLDTT": {"over_share_ldtt": 0.675}}}
    (text,) = collective("TTLDTT", UnitFacts(roster=20, counts={"LDTT": 12}), rules)
    assert "trên 67,5%" in text and "12/20 người (60%)" in text
    assert text.endswith("(Căn cứ: quy định riêng của phong trào)")
    same = {"rules": {"TTLDTT": {"over_share_ldtt": 0.5}}}  # the law's value, written again
    (text,) = collective("TTLDTT", UnitFacts(roster=20, counts={"LDTT": 10}), same)
    assert text.endswith(f"(Căn cứ: {LAW_2022})")


# --- CSTĐCS: LĐTT and an initiative; the 15 % cap is an option, never "at most 0" -----------


def test_cstdcs_needs_ldtt_and_an_initiative_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022: CSTĐCS needs LĐTT the same year and an initiative."""
    texts = personal("CSTDCS", PersonFacts(registered=set()))
    assert len(texts) == 2
    assert "“LĐTT”" in texts[0] and all(t.endswith(f"(Căn cứ: {LAW_2022})") for t in texts)
    assert personal("CSTDCS", PersonFacts(registered={"LDTT"}, has_initiative=True)) == []


def test_cstdcs_cap_of_nd_91_2017_is_off_by_default() -> None:
    """NĐ 91/2017 (15 % of LĐTT), not confirmed in NĐ 98/2023: no cap unless turned on."""
    facts = UnitFacts(roster=30, counts={"LDTT": 6, "CSTDCS": 4})
    assert share_cap_notes("CSTDCS", catalogue("CSTDCS"), facts, title_names=NAMES) == []


@pytest.mark.parametrize("ldtt", [0, 1, 6])
def test_cstdcs_cap_of_nd_91_2017_below_one_person_never_says_at_most_0(ldtt: int) -> None:
    """NĐ 91/2017 cap turned on in a small unit: the numbers, never "tối đa 0"."""
    rules = catalogue("CSTDCS", {"rules": {"CSTDCS": {"max_share_of_ldtt": True}}})
    facts = UnitFacts(roster=10, counts={"LDTT": ldtt, "CSTDCS": 1})
    (note,) = share_cap_notes("CSTDCS", rules, facts, title_names=NAMES)
    assert "tối đa 0" not in note.text and " là 0 " not in note.text
    assert f"Đơn vị có {ldtt} LĐTT, nên 15% chưa đủ một người" in note.text
    assert "NĐ 91/2017/NĐ-CP" in note.text


def test_cstdcs_cap_of_nd_91_2017_over_the_limit_names_it() -> None:
    """NĐ 91/2017 cap turned on: 4 CSTĐCS for 20 LĐTT is over 15 % (3 people)."""
    rules = catalogue("CSTDCS", {"rules": {"CSTDCS": {"max_share_of_ldtt": True}}})
    within = UnitFacts(roster=40, counts={"LDTT": 20, "CSTDCS": 3})
    assert share_cap_notes("CSTDCS", rules, within, title_names=NAMES) == []
    over = UnitFacts(roster=40, counts={"LDTT": 20, "CSTDCS": 4})
    (note,) = share_cap_notes("CSTDCS", rules, over, title_names=NAMES)
    assert "có 4 người đăng ký CSTĐCS trên 20 LĐTT, mà 15% của số này là 3 người" in note.text


# --- CSTĐ cấp tỉnh and toàn quốc: consecutive TIMES, not years -------------------------------


def test_cstd_tinh_counts_three_times_of_cstdcs_not_years_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022: CSTĐ cấp tỉnh among those with 3 consecutive times of
    CSTĐCS. Three times on record, years apart, meet the count: times are not years."""
    three_times = PersonFacts(registered=set(), approved_years={"CSTDCS": {2018, 2021, 2024}})
    assert personal("CSTD_TINH", three_times) == []
    once = PersonFacts(registered=set(), approved_years={"CSTDCS": {2026}})
    (text,) = personal("CSTD_TINH", once)
    assert "3 lần liên tục đạt “CSTĐCS”" in text and "1 lần (2026)" in text
    assert "năm liên tục" not in text and text.endswith(f"(Căn cứ: {LAW_2022})")


def test_cstd_toan_quoc_counts_two_times_of_cstd_tinh_luat_tdkt_2022() -> None:
    """Luật Thi đua, khen thưởng 2022: CSTĐ toàn quốc among those with 2 consecutive times of
    CSTĐ cấp tỉnh."""
    (text,) = personal("CSTDTQ", PersonFacts(registered=set()))
    assert "2 lần liên tục đạt “CSTĐ cấp tỉnh”" in text and "chưa có dữ liệu" in text
    two = PersonFacts(registered=set(), approved_years={"CSTD_TINH": {2020, 2023}})
    assert personal("CSTDTQ", two) == []


# --- Bằng Lao động sáng tạo: 80 / 150 / 200 triệu by author ---------------------------------


@pytest.mark.parametrize(
    ("category", "total", "candidate"),
    [
        ("worker", 80_000_000, True),
        ("professional", 90_000_000, False),
        ("professional", 150_000_000, True),
        ("manager", 199_000_000, False),
        ("manager", 200_000_000, True),
        (None, 80_000_000, True),  # unknown: the lowest bar marks a possible candidate
        (None, 79_000_000, False),
    ],
)
def test_ldst_thresholds_by_author_qd_999_tld(
    category: str | None, total: int, candidate: bool
) -> None:
    """QĐ 999/QĐ-TLĐ: Bằng LĐST on the total benefit, 80 / 150 / 200 triệu by author."""
    assert ldst_candidate(catalogue("LDST"), total, category) is candidate


def test_ldst_note_explains_the_author_threshold_qd_999_tld() -> None:
    """QĐ 999/QĐ-TLĐ: the note names the author's bar and the person's own total."""
    facts = PersonFacts(
        registered=set(), total_initiative_benefit=90_000_000, author_category="professional"
    )
    (text,) = personal("LDST", facts)
    assert "từ 150 triệu đồng trở lên đối với cán bộ chuyên môn" in text
    assert "tổng cộng 90 triệu đồng" in text and text.endswith(f"(Căn cứ: {TLD_999})")
    (unknown,) = personal("LDST", PersonFacts(registered=set(), total_initiative_benefit=0))
    assert "80 triệu đồng" in unknown and "150 triệu đồng" in unknown
    assert "200 triệu đồng" in unknown


# --- names of the TLĐ's current rules ----------------------------------------------------


def test_names_follow_the_tld_rules_qd_999_tld() -> None:
    """QĐ 999/QĐ-TLĐ: "CĐCS hoàn thành xuất sắc nhiệm vụ"; Bằng khen, Cờ are awards."""
    entries = {e["code"]: e for e in catalogue_entries()}
    assert entries["CDCS_VM"]["name"] == "Công đoàn cơ sở hoàn thành xuất sắc nhiệm vụ"
    assert all("vững mạnh" not in e["name"] for e in entries.values())
    for code in ("BK_TINH", "BK_TLD", "CO_TINH", "CO_TLD", "CO_CP", "GK", "LDST"):
        assert entries[code]["kind"] == "award", code
    assert entries["BK_TINH"]["awarded_by_issuer"] and entries["CO_TINH"]["awarded_by_issuer"]


def test_an_industry_union_awards_in_its_own_name_qd_999_tld() -> None:
    """QĐ 999/QĐ-TLĐ: Bằng khen and Cờ belong to the awarding body (LĐLĐ tỉnh or ngành)."""
    industry = Unit(code="CDN-GD", name="Công đoàn ngành Giáo dục", search_name="", kind="province")
    assert issuer_award_name("Bằng khen của LĐLĐ tỉnh", industry) == (
        "Bằng khen của Công đoàn ngành Giáo dục"
    )
    assert issuer_award_name("Cờ thi đua của LĐLĐ tỉnh", industry) == (
        "Cờ thi đua của Công đoàn ngành Giáo dục"
    )
    assert issuer_award_name("Bằng khen của LĐLĐ tỉnh", None) == "Bằng khen của LĐLĐ tỉnh"


def test_english_messages() -> None:
    with use_locale("en"):
        (text,) = collective("TTLDTT", UnitFacts(roster=20, counts={"LDTT": 9}))
    assert text.startswith("TTLĐTT needs more than 50% of the collective's individuals with LĐTT")
    assert "9/20 (45%)" in text and text.endswith(f"(Source: {LAW_2022})")
