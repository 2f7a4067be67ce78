"""`thidua demo`: a small, realistic organisation to try the bot without any setup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.i18n import _
from storage.campaigns import load_campaign
from storage.importers import Row, import_members, import_units
from storage.models import Campaign, Person, Role, Unit
from storage.repo import grant_role

UNITS = [
    ("LDLD-BK", "LĐLĐ tỉnh Bắc Kạn", "", "province"),
    ("CD-KCN-TB", "Công đoàn Khu công nghiệp Thanh Bình", "LDLD-BK", "upper"),
    ("CD-GD", "Công đoàn ngành Giáo dục tỉnh Bắc Kạn", "LDLD-BK", "upper"),
    ("CDCS-MAY", "Công đoàn cơ sở Công ty May Bắc Kạn", "CD-KCN-TB", "grassroots"),
    ("CDCS-XM", "Công đoàn cơ sở Công ty Xi măng Bắc Kạn", "CD-KCN-TB", "grassroots"),
    ("CDCS-THPT-CD", "Công đoàn Trường THPT Chợ Đồn", "CD-GD", "grassroots"),
    ("TO-MAY-1", "Tổ công đoàn Tổ may 1", "CDCS-MAY", "team"),
]

MEMBERS = [
    ("CDCS-MAY", "Nguyễn Thị Hoa", "0912345678", "Tổ trưởng tổ may 1"),
    ("CDCS-MAY", "Trần Văn Bình", "0987654321", "Công nhân may"),
    ("CDCS-MAY", "Lê Thị Mai", "0903123456", "Công nhân may"),
    ("CDCS-MAY", "Hoàng Văn Nam", "0978111222", "Kỹ thuật viên"),
    ("CDCS-XM", "Phạm Văn Dũng", "0911222333", "Trưởng ca sản xuất"),
    ("CDCS-XM", "Đỗ Thị Lan", "0945666777", "Kế toán"),
    ("CDCS-THPT-CD", "Vũ Thị Thu", "0966888999", "Giáo viên Ngữ văn"),
    ("CDCS-THPT-CD", "Ma Văn Khánh", "0355123789", "Giáo viên Toán"),
    ("CDCS-MAY", "Lương Văn Tuấn", "0913555666", "Chủ tịch Công đoàn cơ sở"),
    ("CD-KCN-TB", "Bế Thị Hạnh", "0983444555", "Cán bộ Ban Tổ chức - Thi đua"),
]


@dataclass(frozen=True)
class DemoPerson:
    name: str
    phone: str
    unit_code: str


# Who the web chat's demo role picker signs in as; the leader and officer roles are granted
# by load_demo (everyone on the roster is a member of their unit anyway).
DEMO_ROLES = {
    Role.MEMBER.value: DemoPerson("Nguyễn Thị Hoa", "0912345678", "CDCS-MAY"),
    Role.LEADER.value: DemoPerson("Lương Văn Tuấn", "0913555666", "CDCS-MAY"),
    Role.OFFICER.value: DemoPerson("Bế Thị Hạnh", "0983444555", "CD-KCN-TB"),
}


# Công đoàn Việt Nam was founded on 28/7/1929: 28/7/2027 is its 98th anniversary.
UNION_FOUNDED = date(1929, 7, 28)


def union_anniversary(year: int) -> str:
    """The occasion as unions name it: "98 năm Ngày thành lập Công đoàn Việt Nam (28/7)"."""
    return (
        f"{year - UNION_FOUNDED.year} năm Ngày thành lập Công đoàn Việt Nam "
        f"({UNION_FOUNDED.day}/{UNION_FOUNDED.month})"
    )


def demo_campaign(today: date) -> dict[str, object]:
    """A campaign open today: this year's if January 25 is still ahead, else next year's.

    It speaks like a launch plan: the year's theme, the movements, targets per title, phase
    themes and dated occasions for the works.
    """
    year = today.year if today <= date(today.year, 1, 25) else today.year + 1
    deadline = date(year, 1, 25)
    if (deadline - today).days < 14:
        deadline = today + timedelta(days=30)
    anniversary = f"Kỷ niệm {union_anniversary(year)}"
    return {
        "code": f"TD{year}",
        "name": f"Phong trào thi đua năm {year}",
        "issuer": "LDLD-BK",
        "year": year,
        "registration_deadline": deadline.isoformat(),
        "theme": f"Đoàn kết, đổi mới, sáng tạo, thi đua hoàn thành xuất sắc nhiệm vụ năm {year}",
        "movements": [
            "Lao động giỏi, Lao động sáng tạo",
            "Xanh – Sạch – Đẹp, bảo đảm an toàn, vệ sinh lao động",
            "Giỏi việc nước, đảm việc nhà",
        ],
        "phases": [
            {
                "name": "Đợt 1",
                "start": f"{year}-01-01",
                "end": f"{year}-06-30",
                "theme": "Chào mừng Tháng Công nhân, Tháng hành động về an toàn, vệ sinh lao động",
            },
            {
                "name": "Đợt 2",
                "start": f"{year}-07-01",
                "end": f"{year}-12-31",
                "theme": f"Chào mừng {union_anniversary(year)}",
            },
        ],
        "titles": ["LDTT", "CSTDCS", "BK_TINH", "BK_TLD", "TTLDTT", "TTLDXS", "CO_TINH", "CO_TLD"],
        # Targets of the plan, never caps: a share of the members or of the collectives.
        "targets": {"LDTT": "100%", "CSTDCS": "20%", "TTLDXS": "90%"},
        "occasions": [
            {"name": "Tháng Công nhân", "date": f"{year}-05-01"},
            {"name": anniversary, "date": f"{year}-07-28"},
            {"name": "Ngày Quốc khánh", "date": f"{year}-09-02"},
        ],
    }


class DemoRefused(RuntimeError):
    """The database holds an organisation of its own; the message says so to the operator."""


async def foreign_data(session: AsyncSession) -> list[str]:
    """What in the database did not come from the demo (units, campaigns of other issuers).

    The demo adds roles and an officer who can sign in without a code: on a real database
    that is a way in for anyone who can reach the page.
    """
    demo_units = {code for code, *_rest in UNITS}
    units = list(
        await session.scalars(select(Unit.code).where(Unit.code.not_in(demo_units)).limit(3))
    )
    campaigns = list(
        await session.scalars(
            select(Campaign.code)
            .join(Unit, Unit.id == Campaign.issuer_unit_id)
            .where(Unit.code.not_in(demo_units))
            .limit(3)
        )
    )
    return [f"unit {c}" for c in units] + [f"campaign {c}" for c in campaigns]


async def load_demo(
    sessionmaker: async_sessionmaker[AsyncSession], today: date | None = None
) -> str:
    """Load (or refresh) the demo data; returns a short description for the terminal."""
    today = today or date.today()
    unit_rows = [
        Row(n, {"code": c, "name": name, "parent_code": parent, "kind": kind})
        for n, (c, name, parent, kind) in enumerate(UNITS, start=2)
    ]
    member_rows = [
        Row(n, {"unit_code": u, "full_name": name, "phone": phone, "position": pos})
        for n, (u, name, phone, pos) in enumerate(MEMBERS, start=2)
    ]
    async with sessionmaker() as session, session.begin():
        found = await foreign_data(session)
        if found:
            raise DemoRefused(
                _(
                    "This database holds data that is not the demo's ({found}, ...). "
                    "`thidua demo` adds demo people, roles and a sign-in without a code: "
                    "point DATABASE_URL at an empty database to try it."
                ).format(found=", ".join(found))
            )
        await import_units(session, unit_rows)
        await import_members(session, member_rows)
        await _grant_demo_roles(session)
        campaign = await load_campaign(session, demo_campaign(today), via="demo")
    return _(
        "Demo loaded: {units} units, {members} members, campaign {campaign} (deadline "
        "{deadline}).\nPick a role, or “Người mới” and type a phone: a typed number waits "
        "for the leader's confirmation (sign in as Chủ tịch công đoàn in another window to "
        "confirm it) unless a personal code proves it (thidua person code --phone "
        "0912345678).\nStart again from scratch: stop the bot, delete thidua.db, run "
        "`make demo` again."
    ).format(
        units=len(UNITS),
        members=len(MEMBERS),
        campaign=campaign.code,
        deadline=f"{campaign.registration_deadline:%d/%m/%Y}",
    )


async def _grant_demo_roles(session: AsyncSession) -> None:
    """The demo leader leads the garment factory's union; the officer works at the park's."""
    for role, who in DEMO_ROLES.items():
        if role == Role.MEMBER:
            continue
        person = await session.scalar(select(Person).where(Person.phone == who.phone))
        unit = await session.scalar(select(Unit).where(Unit.code == who.unit_code))
        if person is not None and unit is not None:
            await grant_role(session, person.id, unit.id, role)
