"""Test data: a small organisation, a roster and a campaign, written through the models."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.text import fold
from storage.models import Campaign, CampaignPhase, Person, Role, Unit, UnitKind, UnitRole


@dataclass
class Org:
    province: Unit
    upper: Unit
    garment: Unit
    school: Unit
    campaign: Campaign
    rostered: Person


async def add_unit(
    session: AsyncSession, code: str, name: str, kind: str, parent: Unit | None
) -> Unit:
    unit = Unit(
        code=code,
        name=name,
        search_name=fold(name),
        kind=kind,
        parent_id=parent.id if parent else None,
    )
    session.add(unit)
    await session.flush()
    unit.path = f"{parent.path if parent else '/'}{unit.id}/"
    return unit


async def make_org(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    deadline: date = date(2027, 1, 25),
    year: int = 2027,
    titles: tuple[str, ...] = ("LDTT", "CSTDCS", "BK_TINH", "TTLDTT", "TTLDXS"),
) -> Org:
    async with sessionmaker() as session, session.begin():
        province = await add_unit(session, "LDLD-BK", "LĐLĐ tỉnh Bắc Kạn", UnitKind.PROVINCE, None)
        upper = await add_unit(
            session, "CD-KCN", "Công đoàn Khu công nghiệp Thanh Bình", UnitKind.UPPER, province
        )
        garment = await add_unit(
            session, "CDCS-MAY", "Công đoàn cơ sở Công ty May Bắc Kạn", UnitKind.GRASSROOTS, upper
        )
        school = await add_unit(
            session, "CDCS-THPT", "Công đoàn Trường THPT Chợ Đồn", UnitKind.GRASSROOTS, upper
        )
        campaign = Campaign(
            code=f"TD{year}",
            name=f"Phong trào thi đua năm {year}",
            issuer_unit_id=province.id,
            year=year,
            registration_deadline=deadline,
            title_codes=list(titles),
            settings={},
        )
        campaign.phases = [
            CampaignPhase(
                position=1, name="Đợt 1", starts_on=date(year, 1, 1), ends_on=date(year, 6, 30)
            ),
            CampaignPhase(
                position=2, name="Đợt 2", starts_on=date(year, 7, 1), ends_on=date(year, 12, 31)
            ),
        ]
        session.add(campaign)
        rostered = Person(
            full_name="Nguyễn Thị Hoa",
            phone="0912345678",
            position="Tổ trưởng tổ may 1",
            unit_id=garment.id,
            source="roster",
        )
        session.add(rostered)
        await session.flush()
        session.add(UnitRole(person_id=rostered.id, unit_id=garment.id, role=Role.MEMBER))
    return Org(province, upper, garment, school, campaign, rostered)
