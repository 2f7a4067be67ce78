"""The demo campaign says what a union would: the anniversary counted from 28/7/1929."""

from __future__ import annotations

from datetime import date

from bot.demo import demo_campaign, union_anniversary


def test_the_anniversary_is_counted_from_the_founding_in_1929() -> None:
    assert union_anniversary(2027) == "98 năm Ngày thành lập Công đoàn Việt Nam (28/7)"
    assert union_anniversary(2029) == "100 năm Ngày thành lập Công đoàn Việt Nam (28/7)"
    campaign = demo_campaign(date(2026, 12, 1))  # the demo of 2027
    assert campaign["year"] == 2027
    occasions = campaign["occasions"]
    assert isinstance(occasions, list)
    assert {
        "name": "Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam (28/7)",
        "date": "2027-07-28",
    } in occasions
    assert "98 năm" in str(campaign["phases"])
