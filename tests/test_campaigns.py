"""Loading a campaign (phát động thi đua) from the officer's YAML file."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from storage.campaigns import CampaignInvalid, load_campaign, read_campaign_file
from storage.models import AuditEntry, Campaign, CampaignPhase, Unit

Sessions = async_sessionmaker[AsyncSession]

CAMPAIGN_YAML = """
code: TD2027
name: Phong trào thi đua năm 2027
issuer: LDLD-BK          # unit code of the launching body
year: 2027
registration_deadline: 2027-01-25
phases:
  - {name: Đợt 1, start: 2027-01-01, end: 2027-06-30, theme: "Chào mừng Đại hội Công đoàn"}
  - {name: Đợt 2, start: 2027-07-01, end: 2027-12-31}
titles: [LDTT, CSTDCS, BK_TINH, BK_TLD, TTLDTT, TTLDXS, CO_TINH, CO_TLD]
rules:
  TTLDXS: {min_share_ldtt: 0.7}
occasions:
  - {name: Tháng Công nhân, date: 2027-05-01}
reminders: {days_before_deadline: [7, 1]}
announcement: Kính gửi các đồng chí đoàn viên...
"""


@pytest.fixture
async def issuer(sessionmaker: Sessions) -> int:
    async with sessionmaker() as session, session.begin():
        unit = Unit(
            code="LDLD-BK",
            name="LĐLĐ tỉnh Bắc Kạn",
            search_name="ldld tinh bac kan",
            kind="province",
        )
        session.add(unit)
        await session.flush()
        unit.path = f"/{unit.id}/"
        return unit.id


def campaign_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CAMPAIGN_YAML)
    data.update(changes)
    return data


async def load(sessions: Sessions, data: dict[str, Any]) -> int:
    async with sessions() as session, session.begin():
        return (await load_campaign(session, data)).id


async def fetch(sessions: Sessions, code: str = "TD2027") -> Campaign:
    async with sessions() as session:
        campaign = await session.scalar(
            select(Campaign).where(Campaign.code == code).options(selectinload(Campaign.phases))
        )
    assert campaign is not None
    return campaign


async def test_the_example_file_loads(sessionmaker: Sessions, issuer: int) -> None:
    await load(sessionmaker, campaign_data())
    campaign = await fetch(sessionmaker)
    assert campaign.name == "Phong trào thi đua năm 2027"
    assert campaign.issuer_unit_id == issuer
    assert campaign.year == 2027
    assert campaign.registration_deadline == date(2027, 1, 25)
    assert campaign.title_codes == [
        "LDTT",
        "CSTDCS",
        "BK_TINH",
        "BK_TLD",
        "TTLDTT",
        "TTLDXS",
        "CO_TINH",
        "CO_TLD",
    ]
    assert [(p.position, p.name, p.starts_on, p.ends_on) for p in campaign.phases] == [
        (1, "Đợt 1", date(2027, 1, 1), date(2027, 6, 30)),
        (2, "Đợt 2", date(2027, 7, 1), date(2027, 12, 31)),
    ]
    assert campaign.phases[0].theme == "Chào mừng Đại hội Công đoàn"
    # Everything else in the file is kept for the reminders, digest and rules.
    assert campaign.settings == {
        "rules": {"TTLDXS": {"min_share_ldtt": 0.7}},
        "occasions": [{"name": "Tháng Công nhân", "date": "2027-05-01"}],
        "reminders": {"days_before_deadline": [7, 1]},
        "announcement": "Kính gửi các đồng chí đoàn viên...",
    }
    async with sessionmaker() as session:
        entry = await session.scalar(select(AuditEntry))
    assert entry is not None
    assert (entry.action, entry.entity, entry.entity_id) == (
        "campaign.create",
        "campaign",
        campaign.id,
    )


async def test_reloading_updates_in_place_and_replaces_phases(
    sessionmaker: Sessions, issuer: int
) -> None:
    first = await load(sessionmaker, campaign_data())
    second = await load(
        sessionmaker,
        campaign_data(
            name="Phong trào thi đua lao động giỏi năm 2027",
            registration_deadline="31/01/2027",  # the way officers write dates
            phases=[{"name": "Cả năm", "start": date(2027, 1, 1), "end": date(2027, 12, 31)}],
        ),
    )
    assert second == first
    campaign = await fetch(sessionmaker)
    assert campaign.name == "Phong trào thi đua lao động giỏi năm 2027"
    assert campaign.registration_deadline == date(2027, 1, 31)
    assert [p.name for p in campaign.phases] == ["Cả năm"]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 1
        assert await session.scalar(select(func.count()).select_from(CampaignPhase)) == 1
        update = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "campaign.update")
        )
    assert update is not None
    assert set(update.details["changes"]) == {"name", "registration_deadline", "phases"}


async def test_every_problem_is_reported_and_nothing_written(
    sessionmaker: Sessions, issuer: int
) -> None:
    data = campaign_data(
        issuer="LDLD-XX",
        titles=["LDTT", "DANH_HIEU_LA"],
    )
    with pytest.raises(CampaignInvalid) as failed:
        await load(sessionmaker, data)
    problems = failed.value.problems
    assert problems[0] == "issuer: unknown unit code 'LDLD-XX' (import the units first)"
    assert problems[1].startswith("titles: unknown title code(s) DANH_HIEU_LA; known codes: ")
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Campaign)) == 0


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"registration_deadline": "sắp tới"},
            "registration_deadline: 'sắp tới' is not a date (write it as 2027-01-25 or 25/01/2027)",
        ),
        (
            {"phases": [{"name": "Đợt 1", "start": "2027-06-30", "end": "2027-01-01"}]},
            "phases[1]: phase 'Đợt 1' ends (2027-01-01) before it starts (2027-06-30)",
        ),
        (
            {
                "phases": [
                    {"name": "Đợt 1", "start": "2027-01-01", "end": "2027-07-31"},
                    {"name": "Đợt 2", "start": "2027-07-01", "end": "2027-12-31"},
                ]
            },
            "phases 'Đợt 1' and 'Đợt 2' overlap ('Đợt 2' starts on 2027-07-01, before "
            "'Đợt 1' ends on 2027-07-31)",
        ),
        ({"titles": []}, "titles: List should have at least 1 item after validation, not 0"),
        ({"code": "TD 2027"}, "code: use only letters, digits, '_', '-' and '.' (no spaces)"),
        (
            {"rules": {"CO_CP": {"min_share_ldtt": 0.5}}},
            "rules: title code(s) CO_CP are not in this campaign's titles",
        ),
        (
            {"rules": {"TTLDXS": {"min_share_ldtt": 70}}},
            "rules.TTLDXS.min_share_ldtt: a share between 0 and 1, e.g. 0.7 for 70 %",
        ),
        (
            {"rules": {"CSTDCS": {"max_share": 0.15}}},
            "rules.CSTDCS.max_share: unknown rule; known: max_share_of_ldtt, min_benefit_by_"
            "category, min_cstdcs, min_share_ldtt, names_collective, over_share_ldtt, "
            "requires_history, requires_initiative, requires_titles",
        ),
        (
            {"rules": {"TTLDXS": {"requires_titles": ["TTLD"]}}},
            "rules.TTLDXS.requires_titles: unknown title code(s) TTLD",
        ),
        (
            {"rules": {"TTLDTT": {"requires_titles": True}}},
            "rules.TTLDTT.requires_titles: true turns on an option of the catalogue; the "
            "options of TTLDTT are: none",
        ),
        (
            {"title_names": {"CO_CP": "Cờ thi đua của Chính phủ"}},
            "title_names: title code(s) CO_CP are not in this campaign's titles",
        ),
    ],
)
async def test_clear_messages_for_bad_values(
    sessionmaker: Sessions, issuer: int, changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(CampaignInvalid) as failed:
        await load(sessionmaker, campaign_data(**changes))
    assert expected in failed.value.problems


async def test_missing_keys_are_named(sessionmaker: Sessions, issuer: int) -> None:
    data = campaign_data()
    del data["registration_deadline"], data["issuer"]
    with pytest.raises(CampaignInvalid) as failed:
        await load(sessionmaker, data)
    assert failed.value.problems == ["issuer: is required", "registration_deadline: is required"]


def test_bad_yaml_says_where(tmp_path: Path) -> None:
    path = tmp_path / "td.yaml"
    path.write_text("code: TD2027\nname: [không đóng ngoặc\nyear: 2027\n", encoding="utf-8")
    with pytest.raises(CampaignInvalid) as failed:
        read_campaign_file(path)
    assert failed.value.problems[0].startswith("not valid YAML at line")


def test_a_list_is_not_a_campaign(tmp_path: Path) -> None:
    path = tmp_path / "td.yaml"
    path.write_text("- TD2027\n", encoding="utf-8")
    with pytest.raises(CampaignInvalid, match="must be a YAML mapping"):
        read_campaign_file(path)


async def test_options_and_issuer_names_are_kept(sessionmaker: Sessions, issuer: int) -> None:
    """The CSTĐCS cap (NĐ 91/2017) and the TTLĐTT prerequisite are turned on with true; an
    industry union names its own awards (QĐ 999/QĐ-TLĐ: Bằng khen of the awarding body)."""
    from storage.campaigns import title_names

    rules = {"CSTDCS": {"max_share_of_ldtt": True}, "TTLDXS": {"requires_titles": True}}
    await load(sessionmaker, campaign_data(rules=rules))
    async with sessionmaker() as session:
        campaign = await fetch(sessionmaker)
        names = await title_names(session, campaign)
    assert campaign.settings["rules"] == rules
    assert names == {
        "BK_TINH": "Bằng khen của LĐLĐ tỉnh Bắc Kạn",
        "CO_TINH": "Cờ thi đua của LĐLĐ tỉnh Bắc Kạn",
    }
    async with sessionmaker() as session, session.begin():
        unit = await session.get(Unit, issuer)
        assert unit is not None
        unit.name = "Công đoàn ngành Giáo dục"
    own = {"title_names": {"CO_TINH": "Cờ thi đua của Công đoàn Giáo dục Việt Nam"}}
    await load(sessionmaker, campaign_data(**own))
    async with sessionmaker() as session:
        names = await title_names(session, await fetch(sessionmaker))
    assert names == {
        "BK_TINH": "Bằng khen của Công đoàn ngành Giáo dục",
        "CO_TINH": "Cờ thi đua của Công đoàn Giáo dục Việt Nam",  # the file's own name wins
    }
