"""Loading a campaign (phát động thi đua) from the officer's YAML file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload, undefer

from storage.campaigns import (
    CampaignInvalid,
    Occasion,
    Target,
    campaign_movements,
    campaign_occasions,
    campaign_targets,
    campaign_theme,
    load_campaign,
    load_campaign_file,
    read_campaign_file,
    title_names,
    works_deadline,
    works_open,
)
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
        # A file without the plan's keys: empty ones.
        "theme": None,
        "movements": [],
        "targets": {},
        "award_names": {},
        "plan_document": None,
    }
    assert campaign.plan_file_name is None
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
            {"award_names": {"CO_CP": "Cờ thi đua của Chính phủ"}},
            "award_names: title code(s) CO_CP are not in this campaign's titles",
        ),
    ],
)
async def test_clear_messages_for_bad_values(
    sessionmaker: Sessions, issuer: int, changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(CampaignInvalid) as failed:
        await load(sessionmaker, campaign_data(**changes))
    assert expected in failed.value.problems


LAUNCH_PLAN_YAML = """
code: GD2027
name: Phong trào thi đua năm 2027
issuer: LDLD-BK
year: 2027
registration_deadline: 25/01/2027
theme: "Đoàn kết, sáng tạo, thi đua hoàn thành xuất sắc nhiệm vụ năm 2027"
movements:
  - Lao động giỏi, Lao động sáng tạo
  - Xanh – Sạch – Đẹp, bảo đảm an toàn, vệ sinh lao động
phases:
  - {name: Đợt 1, start: 2027-01-01, end: 2027-06-30, theme: Chào mừng Tháng Công nhân,
     works_until: 2027-07-15}
  - {name: Đợt 2, start: 2027-07-01, end: 2027-12-31, theme: Chào mừng 98 năm Công đoàn Việt Nam}
titles: [LDTT, CSTDCS, BK_TINH, TTLDTT, TTLDXS, CO_TINH]
targets:
  LDTT: 100%
  TTLDXS: {share: 90 %}
  CSTDCS: 0.2
  BK_TINH: {share: 5%, of: collectives}
occasions:
  - {name: Tháng Công nhân, date: 01/05}
  - {name: Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam, date: 2027-07-28}
  - Đại hội Công đoàn các cấp
award_names:
  BK_TINH: Bằng khen của Công đoàn ngành Giáo dục
  CO_TINH: Cờ thi đua của Công đoàn ngành Giáo dục
plan_document: ke-hoach-phat-dong-2027.pdf
"""


async def test_a_launch_plan_loads_with_every_part(
    sessionmaker: Sessions, issuer: int, tmp_path: Path
) -> None:
    (tmp_path / "ke-hoach-phat-dong-2027.pdf").write_bytes(b"%PDF-1.4 ke hoach")
    path = tmp_path / "td.yaml"
    path.write_text(LAUNCH_PLAN_YAML, encoding="utf-8")
    # Loaded from another working directory: the document is found next to the file.
    async with sessionmaker() as session, session.begin():
        await load_campaign_file(session, path)
    campaign = await fetch(sessionmaker, "GD2027")
    assert campaign_theme(campaign) == (
        "Đoàn kết, sáng tạo, thi đua hoàn thành xuất sắc nhiệm vụ năm 2027"
    )
    assert campaign_movements(campaign) == [
        "Lao động giỏi, Lao động sáng tạo",
        "Xanh – Sạch – Đẹp, bảo đảm an toàn, vệ sinh lao động",
    ]
    # In the order of the titles; each against what the title is for unless the file says.
    assert campaign_targets(campaign) == [
        Target("LDTT", Decimal(100), "members"),
        Target("CSTDCS", Decimal(20), "members"),
        Target("BK_TINH", Decimal(5), "collectives"),
        Target("TTLDXS", Decimal(90), "collectives"),
    ]
    assert campaign_occasions(campaign) == [
        Occasion("Tháng Công nhân", date(2027, 5, 1)),
        Occasion("Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam", date(2027, 7, 28)),
        Occasion("Đại hội Công đoàn các cấp", None),
    ]
    async with sessionmaker() as session:
        names = await title_names(session, campaign)
    assert names["BK_TINH"] == "Bằng khen của Công đoàn ngành Giáo dục"
    assert "BK_TLD" not in names  # the TLĐ's own award keeps the catalogue's name
    assert [(p.name, p.theme, p.works_until) for p in campaign.phases] == [
        ("Đợt 1", "Chào mừng Tháng Công nhân", date(2027, 7, 15)),
        ("Đợt 2", "Chào mừng 98 năm Công đoàn Việt Nam", None),
    ]
    async with sessionmaker() as session:
        stored = await session.get(
            Campaign, campaign.id, options=[undefer(Campaign.plan_file_content)]
        )
        assert stored is not None
        assert (stored.plan_file_name, stored.plan_file_mime) == (
            "ke-hoach-phat-dong-2027.pdf",
            "application/pdf",
        )
        assert stored.plan_file_content == b"%PDF-1.4 ke hoach"

    # Works: until the end (for works) of the phase of their occasion.
    may_day, july = date(2027, 5, 1), date(2027, 7, 28)
    assert works_deadline(campaign, may_day, date(2027, 3, 1)) == date(2027, 7, 15)
    assert works_open(campaign, date(2027, 7, 10), may_day)
    assert not works_open(campaign, date(2027, 7, 16), may_day)
    # Long after the January registration deadline, a work of phase 2 is still welcome.
    assert works_open(campaign, date(2027, 9, 2), july)
    assert works_deadline(campaign, None, date(2027, 9, 2)) == date(2027, 12, 31)
    assert not works_open(campaign, date(2028, 1, 1))

    # Loaded again without the document: it is dropped.
    async with sessionmaker() as session, session.begin():
        await load_campaign(session, {**read_campaign_file(path), "plan_document": None})
    async with sessionmaker() as session:
        stored = await session.get(
            Campaign, campaign.id, options=[undefer(Campaign.plan_file_content)]
        )
        assert stored is not None and stored.plan_file_content is None


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"targets": {"LDTT": "nhiều"}}, "targets.LDTT.share: 'nhiều' is not a percentage"),
        ({"targets": {"LDTT": "120%"}}, "targets.LDTT.share: '120%' must be above 0%"),
        (
            {"targets": {"LDTT": {"share": "90%", "of": "units"}}},
            "targets.LDTT.of: must be one of members, collectives",
        ),
        (
            {"targets": {"CO_CP": "10%"}},
            "targets: title code(s) CO_CP are not in this campaign's titles",
        ),
        (
            {"targets": {"BK_TINH": "10%"}},
            "targets.BK_TINH: the title is for individuals and collectives; say which",
        ),
        (
            {"award_names": {"CO_CP": "Cờ của Chính phủ"}},
            "award_names: title code(s) CO_CP are not in this campaign's titles",
        ),
        ({"award_names": {"BK_TINH": " "}}, "award_names: BK_TINH: a name of 1 to 300"),
        ({"movements": ["Lao động giỏi", ""]}, "movements: each movement is a name"),
        (
            {"occasions": [{"name": "Ngày Công đoàn", "date": "31/02"}]},
            "occasions[1].date: '31/02' is not a date",
        ),
        ({"occasions": [{"date": "28/07"}]}, "occasions[1].name: is required"),
        (
            {
                "phases": [
                    {
                        "name": "Đợt 1",
                        "start": "2027-01-01",
                        "end": "2027-06-30",
                        "works_until": "2026-12-01",
                    }
                ]
            },
            "works_until (2026-12-01) is before the phase starts",
        ),
        ({"plan_document": "khong-co.pdf"}, "plan_document: cannot read the file khong-co.pdf"),
    ],
)
async def test_bad_plan_values_name_the_field(
    sessionmaker: Sessions, issuer: int, changes: dict[str, Any], expected: str
) -> None:
    with pytest.raises(CampaignInvalid) as failed:
        await load(sessionmaker, campaign_data(**changes))
    assert any(expected in problem for problem in failed.value.problems), failed.value.problems


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


async def test_the_readme_example_loads(
    sessionmaker: Sessions, issuer: int, tmp_path: Path
) -> None:
    """The campaign file shown in the README is a file the bot accepts."""
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("Campaign file") :]
    example = section[section.index("```yaml") + len("```yaml") : section.index("```\n", 10)]
    (tmp_path / "td.yaml").write_text(example, encoding="utf-8")
    (tmp_path / "ke-hoach-phat-dong-2027.pdf").write_bytes(b"%PDF-1.4")
    async with sessionmaker() as session, session.begin():
        campaign = await load_campaign_file(session, tmp_path / "td.yaml")
    assert campaign.plan_file_name == "ke-hoach-phat-dong-2027.pdf"
    assert [(t.code, t.of) for t in campaign_targets(campaign)] == [
        ("LDTT", "members"),
        ("CSTDCS", "members"),
        ("BK_TINH", "collectives"),
        ("TTLDXS", "collectives"),
    ]
    assert [o.on for o in campaign_occasions(campaign)] == [
        date(2027, 5, 1),
        date(2027, 7, 28),
        None,
    ]


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
    own = {"award_names": {"CO_TINH": "Cờ thi đua của Công đoàn Giáo dục Việt Nam"}}
    await load(sessionmaker, campaign_data(**own))
    async with sessionmaker() as session:
        names = await title_names(session, await fetch(sessionmaker))
    assert names == {
        "BK_TINH": "Bằng khen của Công đoàn ngành Giáo dục",
        "CO_TINH": "Cờ thi đua của Công đoàn Giáo dục Việt Nam",  # the file's own name wins
    }
