"""A campaign with every kind of registration, for the export and import tests.

Built on tests.factories.make_org: LĐLĐ tỉnh Bắc Kạn › Công đoàn KCN Thanh Bình › the garment
union (CDCS-MAY, with Nguyễn Thị Hoa on its roster) and the school union (CDCS-THPT).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.models import (
    Campaign,
    Initiative,
    InitiativeAuthor,
    Person,
    Registration,
    Role,
    UnitRole,
    Work,
)
from tests.factories import Org, make_org

TITLES = ("LDTT", "CSTDCS", "BK_TINH", "TTLDTT", "TTLDXS", "CO_TINH")
OCCASION = "97 năm Ngày thành lập Công đoàn Việt Nam (28/7)"


@dataclass
class Scene:
    org: Org
    binh: Person
    chau: Person


async def make_scene(sessionmaker: async_sessionmaker[AsyncSession]) -> Scene:
    org = await make_org(sessionmaker, titles=TITLES)
    async with sessionmaker() as session, session.begin():
        campaign = await session.get(Campaign, org.campaign.id)
        assert campaign is not None
        binh = Person(
            full_name="Trần Văn Bình",
            phone="0987654321",
            position="Công nhân tổ Cắt",
            unit_id=org.garment.id,
            source="roster",
        )
        chau = Person(
            full_name="Lê Minh Châu",
            phone="0903111222",
            position="Giáo viên",
            unit_id=org.school.id,
            source="roster",
        )
        session.add_all([binh, chau])
        await session.flush()
        for person, unit in ((binh, org.garment), (chau, org.school)):
            session.add(UnitRole(person_id=person.id, unit_id=unit.id, role=Role.MEMBER))
        seq = 0

        def receipt() -> str:
            nonlocal seq
            seq += 1
            return f"TD2027-{seq:06d}"

        def reg(
            title: str, person: Person | None, unit_id: int, status: str = "submitted"
        ) -> Registration:
            return Registration(
                receipt_no=receipt(),
                campaign_id=campaign.id,
                title_code=title,
                is_collective=person is None,
                person_id=person.id if person else None,
                unit_id=unit_id,
                status=status,
            )

        hoa = org.rostered
        garment, school = org.garment.id, org.school.id
        session.add_all(
            [
                reg("LDTT", hoa, garment),
                reg("CSTDCS", hoa, garment, "approved"),
                reg("BK_TINH", hoa, garment),
                reg("LDTT", binh, garment, "returned"),
                reg("CSTDCS", binh, garment, "draft"),  # never sent: not listed
                reg("LDTT", chau, school, "withdrawn"),  # taken back: not listed
                reg("TTLDXS", None, garment),
                reg("TTLDTT", None, garment),
                reg("CO_TINH", None, school),
            ]
        )
        session.add_all(
            [
                Initiative(
                    receipt_no=receipt(),
                    campaign_id=campaign.id,
                    person_id=hoa.id,
                    unit_id=garment,
                    name="Cải tiến máy cắt vải tự động",
                    field="tech",
                    applied_on=date(2026, 3, 15),
                    benefit=120_000_000,
                    authors=[
                        InitiativeAuthor(position=1, person_id=binh.id, name="Trần Văn Bình"),
                        InitiativeAuthor(position=2, person_id=None, name="Phạm Thị Dung"),
                    ],
                ),
                Initiative(
                    receipt_no=receipt(),
                    campaign_id=campaign.id,
                    person_id=chau.id,
                    unit_id=school,
                    name="Ứng dụng chuyển đổi số trong quản lý học sinh",
                    field="digital",
                ),
                Initiative(
                    receipt_no=receipt(),
                    campaign_id=campaign.id,
                    person_id=binh.id,
                    unit_id=garment,
                    name="Sáng kiến đã rút",
                    field="other",
                    status="withdrawn",
                ),
                Work(
                    receipt_no=receipt(),
                    campaign_id=campaign.id,
                    unit_id=garment,
                    name="Nhà văn hóa công nhân",
                    occasion=OCCASION,
                    value=1_200_000_000,
                    starts_on=date(2027, 3, 1),
                    ends_on=date(2027, 7, 20),
                    plaque_requested=True,
                ),
                Work(
                    receipt_no=receipt(),
                    campaign_id=campaign.id,
                    unit_id=school,
                    name="Sân chơi cho con công nhân",
                    occasion="Tháng Công nhân năm 2027",
                    value=450_500_000,
                    starts_on=date(2027, 4, 1),
                    ends_on=date(2027, 4, 30),
                ),
            ]
        )
        campaign.receipt_seq = seq
    return Scene(org, binh, chau)
