"""The officers' digest: numbers checked against an independent count, wording, splitting,
files, /tonghop and the scheduled sending (SQLite and PostgreSQL)."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.charts import progress_chart_png
from bot.config import Settings
from bot.scheduler import policy_from_settings
from handlers.digest import build_digest, digest_pass, digest_text, list_fits_a_sheet
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from handlers.i18n import use_locale
from handlers.reminders import ReminderPolicy
from handlers.text import split_message
from storage.models import (
    Campaign,
    ChannelIdentity,
    Initiative,
    OutboxMessage,
    Person,
    Registration,
    Role,
    Unit,
    UnitKind,
    UnitRole,
    UnitSubmission,
    Work,
)
from storage.registration_forms import MAX_TABLE_ROWS
from storage.stats import digest_data
from tests.chat import Chat
from tests.factories import Org, add_unit, make_org

VN = ZoneInfo("Asia/Ho_Chi_Minh")
POLICY = ReminderPolicy()
COUNTED = ("submitted", "approved", "returned")


def vn(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=VN)


class Builder:
    """Registrations, works and initiatives with unique receipt numbers."""

    def __init__(self, session: AsyncSession, org: Org) -> None:
        self.session = session
        self.org = org
        self.n = 0

    def receipt(self) -> str:
        self.n += 1
        return f"T-{self.n:05d}"

    def title(
        self, unit: Unit, code: str, person: Person | None = None, status: str = "submitted"
    ) -> None:
        self.session.add(
            Registration(
                receipt_no=self.receipt(),
                campaign_id=self.org.campaign.id,
                title_code=code,
                is_collective=person is None,
                person_id=person.id if person else None,
                unit_id=unit.id,
                status=status,
            )
        )

    def work(self, unit: Unit, value: int, status: str = "submitted") -> None:
        self.session.add(
            Work(
                receipt_no=self.receipt(),
                campaign_id=self.org.campaign.id,
                unit_id=unit.id,
                name="Công trình chào mừng",
                occasion="28/7",
                value=value,
                starts_on=self.org.campaign.registration_deadline,
                ends_on=self.org.campaign.registration_deadline,
                status=status,
            )
        )

    def initiative(self, person: Person, benefit: int | None, status: str = "submitted") -> None:
        assert person.unit_id is not None
        self.session.add(
            Initiative(
                receipt_no=self.receipt(),
                campaign_id=self.org.campaign.id,
                person_id=person.id,
                unit_id=person.unit_id,
                name="Sáng kiến",
                field="ky_thuat",
                benefit=benefit,
                status=status,
            )
        )


async def person(session: AsyncSession, name: str, unit: Unit, chat: str | None = None) -> Person:
    p = Person(full_name=name, unit_id=unit.id, source="roster")
    session.add(p)
    await session.flush()
    if chat:
        session.add(ChannelIdentity(channel="test", external_id=chat, person_id=p.id))
    return p


async def known_org(sessionmaker: async_sessionmaker[AsyncSession]) -> tuple[Org, Unit]:
    """A small tree with hand-made numbers (the §6 phrases can be checked by eye)."""
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        dien = await add_unit(
            session, "CDCS-DIEN", "Công đoàn Điện lực Chợ Mới", UnitKind.GRASSROOTS, org.upper
        )
        b = Builder(session, org)
        garment = await session.get(Unit, org.garment.id)
        school = await session.get(Unit, org.school.id)
        assert garment is not None and school is not None
        workers = [await person(session, f"Công nhân {i}", garment) for i in range(6)]
        teachers = [await person(session, f"Giáo viên {i}", school) for i in range(4)]
        for w in workers[:3]:
            b.title(garment, "LDTT", w)
        b.title(garment, "CSTDCS", workers[0])
        b.title(garment, "BK_TINH", workers[1])
        b.title(garment, "LDTT", workers[4], status="withdrawn")  # taken back: not counted
        b.title(garment, "LDTT", workers[5], status="draft")  # never sent: not counted
        for t in teachers[:2]:
            b.title(school, "LDTT", t)
        b.title(school, "BK_TINH", teachers[0], status="approved")
        b.title(garment, "TTLDTT")
        b.title(school, "TTLDTT")
        b.title(garment, "BK_TINH")
        b.title(school, "CO_TLD", status="returned")
        b.work(garment, 40_000_000_000)
        b.work(school, 4_930_000_000)
        b.work(school, 1_000_000, status="withdrawn")
        b.initiative(workers[0], 85_000_000)
        b.initiative(teachers[1], 15_000_000)
        b.initiative(teachers[2], None)
        session.add(
            UnitSubmission(campaign_id=org.campaign.id, unit_id=garment.id, status="pending")
        )
        session.add(
            UnitSubmission(campaign_id=org.campaign.id, unit_id=school.id, status="returned")
        )
    return org, dien


# --- numbers --------------------------------------------------------------------------------


async def independent_counts(session: AsyncSession, campaign_id: int, path: str) -> dict:
    """The same numbers, counted with plain SQL written for this test."""
    params = {"c": campaign_id, "p": path + "%"}
    statuses = "('submitted', 'approved', 'returned')"
    titles = {
        (code, bool(coll)): n
        for code, coll, n in await session.execute(
            text(
                "SELECT r.title_code, r.is_collective, COUNT(*) FROM registrations r "
                "JOIN units u ON u.id = r.unit_id WHERE r.campaign_id = :c "
                f"AND r.status IN {statuses} AND u.path LIKE :p GROUP BY 1, 2"
            ),
            params,
        )
    }
    works = (
        await session.execute(
            text(
                "SELECT COUNT(*), COALESCE(SUM(w.value), 0) FROM works w JOIN units u "
                f"ON u.id = w.unit_id WHERE w.campaign_id = :c AND w.status IN {statuses} "
                "AND u.path LIKE :p"
            ),
            params,
        )
    ).one()
    initiatives = (
        await session.execute(
            text(
                "SELECT COUNT(*), COALESCE(SUM(i.benefit), 0) FROM initiatives i JOIN units u "
                f"ON u.id = i.unit_id WHERE i.campaign_id = :c AND i.status IN {statuses} "
                "AND u.path LIKE :p"
            ),
            params,
        )
    ).one()
    members = await session.scalar(
        text("SELECT COUNT(*) FROM people p JOIN units u ON u.id = p.unit_id WHERE u.path LIKE :p"),
        params,
    )
    registered = await session.scalar(
        text(
            "SELECT COUNT(*) FROM people p JOIN units u ON u.id = p.unit_id WHERE u.path LIKE :p "
            "AND (EXISTS (SELECT 1 FROM registrations r WHERE r.person_id = p.id "
            f"AND r.campaign_id = :c AND r.status IN {statuses}) "
            "OR EXISTS (SELECT 1 FROM initiatives i WHERE i.person_id = p.id "
            f"AND i.campaign_id = :c AND i.status IN {statuses}))"
        ),
        params,
    )
    return {
        "titles": titles,
        "works": tuple(works),
        "initiatives": tuple(initiatives),
        "members": members,
        "registered": registered,
    }


def digest_numbers(data) -> dict:
    titles = {}
    for t in data.titles:
        if t.collectives:
            titles[(t.code, True)] = t.collectives
        if t.individuals:
            titles[(t.code, False)] = t.individuals
    return {
        "titles": titles,
        "works": (data.works, data.works_value),
        "initiatives": (data.initiatives, data.initiatives_benefit),
        "members": data.progress.members,
        "registered": data.progress.registered,
    }


async def test_digest_numbers_match_a_direct_count(sessionmaker) -> None:
    org = await make_org(sessionmaker)
    rng = random.Random(20270125)
    codes = ["LDTT", "CSTDCS", "BK_TINH", "CSTD_TINH", "BK_TLD"]
    collective_codes = ["TTLDTT", "TTLDXS", "BK_TINH", "CO_TINH", "CO_TLD"]
    statuses = ["submitted", "submitted", "approved", "returned", "withdrawn", "draft"]
    async with sessionmaker() as session, session.begin():
        b = Builder(session, org)
        units = [org.garment, org.school]
        for i in range(6):
            units.append(
                await add_unit(session, f"U{i}", f"Công đoàn cơ sở số {i}", "grassroots", org.upper)
            )
        units.append(await add_unit(session, "T1", "Tổ may 1", "team", units[0]))
        for unit in units:
            for code in rng.sample(collective_codes, 2):
                b.title(unit, code, status=rng.choice(statuses))
            for k in range(rng.randint(0, 15)):
                p = await person(session, f"Người {unit.code}-{k}", unit)
                for code in rng.sample(codes, rng.randint(0, 2)):
                    b.title(unit, code, p, status=rng.choice(statuses))
                if rng.random() < 0.3:
                    b.initiative(
                        p, rng.choice([None, 5_000_000, 120_000_000]), rng.choice(statuses)
                    )
            for _w in range(rng.randint(0, 2)):
                b.work(unit, rng.randint(1, 900) * 10_000_000, rng.choice(statuses))
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        for root_id in (org.province.id, org.upper.id, org.garment.id):
            root = await session.get(Unit, root_id)
            assert campaign is not None and root is not None
            data = await digest_data(session, campaign, root)
            expected = await independent_counts(session, campaign.id, root.path)
            assert digest_numbers(data) == expected, root.code
            # Ranks never go up along the list: the highest award level comes first.
            ranks = [t.rank for t in data.titles]
            assert ranks == sorted(ranks)
            # The breakdown adds up to the whole (people of the root itself aside).
            if root_id != org.garment.id:
                assert sum(c.progress.members for c in data.children) == data.progress.members


async def test_digest_text_reads_like_the_upper_level_summary(sessionmaker) -> None:
    org, _dien = await known_org(sessionmaker)
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        root = await session.get(Unit, org.province.id)
        assert campaign is not None and root is not None
        await session.refresh(campaign, ["phases"])
        data = await digest_data(session, campaign, root)
    with use_locale("vi"):
        body = digest_text(data, vn(1, 18, 8), POLICY)
    lines = body.splitlines()
    assert lines[0] == "📊 Báo cáo tổng hợp: Phong trào thi đua năm 2027"
    assert "08:00 ngày 18/01/2027" in lines[1] and "hạn đăng ký 25/01/2027" in lines[1]
    # A fraction in words (not "01/03", which reads like a date), zero as "0".
    assert "Đơn vị đã gửi danh sách: 1 trên 3 đơn vị (đã duyệt 0, chờ duyệt 1)." in body
    assert "Chưa gửi (1): Công đoàn Điện lực Chợ Mới." in body
    assert "Trả lại để bổ sung (1): Công đoàn Trường THPT Chợ Đồn." in body
    # Seed 002's order: works, Cờ TLĐ, Bằng khen, collective titles, CSTĐ các cấp, LĐTT,
    # initiatives.
    expected_order = [
        "02 công trình, sản phẩm đăng ký chào mừng, tổng trị giá 44,93 tỷ đồng",
        "01 tập thể đăng ký Cờ thi đua của Tổng Liên đoàn;",
        "01 tập thể, 02 cá nhân đăng ký Bằng khen của LĐLĐ tỉnh Bắc Kạn;",  # the issuer's name
        "02 tập thể đăng ký Tập thể lao động tiên tiến;",
        "01 cá nhân đăng ký đạt CSTĐ các cấp (Chiến sĩ thi đua cơ sở 01);",
        "05 cá nhân đăng ký Lao động tiên tiến;",
        "03 sáng kiến được đăng ký, giá trị làm lợi dự kiến 100 triệu đồng.",
    ]
    positions = [body.index(phrase) for phrase in expected_order]
    assert positions == sorted(positions), body
    assert "Tổng cộng: 04 lượt đăng ký của tập thể và 08 lượt đăng ký của cá nhân." in body
    # Members: 1 rostered + 6 workers + 4 teachers; registered: 5 with titles + 1 initiative.
    assert "Đoàn viên đã đăng ký: 6 trên 11 người (54,5 %)." in body
    # The province has one child: the breakdown goes down to the industrial-zone union.
    assert "Theo đơn vị (Công đoàn Khu công nghiệp Thanh Bình):" in body
    assert "• Công đoàn cơ sở Công ty May Bắc Kạn: 3 trên 7 người (42,9 %), chờ duyệt" in body
    assert "• Công đoàn Trường THPT Chợ Đồn: 3 trên 4 người (75 %), trả lại (bổ sung)" in body


async def test_long_digest_is_split_under_the_limits_never_mid_word(sessionmaker) -> None:
    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        for i in range(40):
            await add_unit(
                session,
                f"CDCS-{i:02d}",
                f"Công đoàn cơ sở Công ty Trách nhiệm hữu hạn Một thành viên Số {i:02d}",
                UnitKind.GRASSROOTS,
                org.upper,
            )
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        root = await session.get(Unit, org.upper.id)
        assert campaign is not None and root is not None
        await session.refresh(campaign, ["phases"])
        with use_locale("vi"):
            digest = await build_digest(session, campaign, root, vn(1, 18, 8), POLICY)
            zalo = digest.replies("zalo")
            telegram = digest.replies("telegram")
    assert len(digest.text) > 2000
    words = digest.text.split()
    for limit in (2000, 4096):
        parts = split_message(digest.text, limit)
        assert all(0 < len(p) <= limit for p in parts)
        assert " ".join(parts).split() == words
        # Every cut falls on white space of the text: no word is broken in two.
        position = 0
        for part in parts:
            start = digest.text.index(part, position)
            end = start + len(part)
            assert start == 0 or digest.text[start - 1].isspace()
            assert end == len(digest.text) or digest.text[end].isspace()
            position = end
    assert len([r for r in zalo if r.text]) >= 2
    assert all(r.file is None for r in zalo)
    assert "Telegram" in zalo[-1].text
    assert [r.file.filename for r in telegram if r.file] == ["tong-hop-TD2027-CD-KCN.xlsx"]


# --- files and /tonghop ----------------------------------------------------------------------


async def test_tonghop_gives_an_officer_text_xlsx_and_chart(sessionmaker) -> None:
    org, _dien = await known_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        quang = await person(session, "Trần Văn Quang", org.upper, chat="quang")
        session.add(UnitRole(person_id=quang.id, unit_id=org.upper.id, role=Role.OFFICER))
        await person(session, "Đoàn viên Thường", org.garment, chat="thuong")
    engine = build_engine(
        sessionmaker, EngineConfig(now=lambda: vn(1, 18, 9), digest_chart=progress_chart_png)
    )
    officer = Chat(engine, "quang")
    await officer.say("/tonghop")
    replies = officer.last
    assert replies[0].text.startswith("📊 Báo cáo tổng hợp")
    files = {r.file.filename: r.file for r in replies if r.file}
    xlsx = files["tong-hop-TD2027-CD-KCN.xlsx"]
    assert xlsx.content[:2] == b"PK"
    png = files["tong-hop-TD2027-CD-KCN.png"]
    assert png.content[:8] == b"\x89PNG\r\n\x1a\n" and png.mime == "image/png"
    import io

    from openpyxl import load_workbook

    book = load_workbook(io.BytesIO(xlsx.content))
    # The officers' form: the issuing body and motto, the title, then the table (header on
    # row 8, a person's receipts one per line); the counted registrations of the subtree
    # only (withdrawn and drafts left out).
    assert book["Cá nhân"]["A5"].value == "DANH SÁCH ĐĂNG KÝ DANH HIỆU THI ĐUA NĂM 2027"
    assert book["Cá nhân"]["A2"].value == "CÔNG ĐOÀN KHU CÔNG NGHIỆP THANH BÌNH"

    def receipts(sheet: str) -> int:
        header = [c.value for c in book[sheet][8]]
        column = header.index("Số đăng ký")
        rows = book[sheet].iter_rows(min_row=9, values_only=True)
        return sum(len(str(r[column]).split("\n")) for r in rows if r[column])

    assert receipts("Cá nhân") == 8
    assert receipts("Tập thể") == 4

    # The same from the officer's menu.
    await officer.say("/menu")
    await officer.tap("Báo cáo tổng hợp")
    assert officer.last[0].text.startswith("📊 Báo cáo tổng hợp: Phong trào thi đua năm 2027")
    assert "Báo cáo tổng hợp" in " ".join(officer.buttons())  # back at the menu

    member = Chat(engine, "thuong")
    await member.say("/tonghop")
    assert "dành cho cán bộ công đoàn cấp trên" in member.text()


# --- the schedule ----------------------------------------------------------------------------


async def officers_scene(sessionmaker, **settings):
    org, _dien = await known_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Campaign).where(Campaign.id == org.campaign.id).values(settings=settings)
        )
        # The campaign was loaded before the first Monday of the tests.
        await session.execute(
            update(Campaign).where(Campaign.id == org.campaign.id).values(created_at=vn(1, 1, 7))
        )
        ids = {}
        for name, unit in (("quang", org.upper), ("minh", org.province), ("muted", org.upper)):
            p = await person(session, name, unit, chat=name)
            p.reminders_muted = name == "muted"
            session.add(UnitRole(person_id=p.id, unit_id=unit.id, role=Role.OFFICER))
            ids[name] = p.id
    return org, ids


async def sent_to(sessionmaker) -> list[str]:
    async with sessionmaker() as session:
        rows = await session.scalars(
            select(OutboxMessage.external_id)
            .where(OutboxMessage.file_name.is_(None))
            .order_by(OutboxMessage.id)
        )
        return list(rows)


async def test_weekly_digest_goes_on_mondays_once(sessionmaker) -> None:
    org, _ids = await officers_scene(sessionmaker)
    cid = org.campaign.id
    # 18/01/2027 is a Monday.
    report = await digest_pass(sessionmaker, cid, vn(1, 18, 7, 59), POLICY)
    assert report.messages == []
    report = await digest_pass(sessionmaker, cid, vn(1, 18, 8), POLICY, chart=progress_chart_png)
    assert {(m.external_id, m.detail) for m in report.messages} == {
        ("quang", "CD-KCN"),
        ("minh", "LDLD-BK"),
    }
    # Again the same day, on Tuesday, after a restart: nothing more.
    assert (await digest_pass(sessionmaker, cid, vn(1, 18, 9), POLICY)).messages == []
    assert (await digest_pass(sessionmaker, cid, vn(1, 19, 9), POLICY)).messages == []
    async with sessionmaker() as session:
        files = list(
            await session.scalars(
                select(OutboxMessage.file_name).where(OutboxMessage.file_name.is_not(None))
            )
        )
    assert sorted(files) == sorted(
        [
            "tong-hop-TD2027-CD-KCN.xlsx",
            "tong-hop-TD2027-CD-KCN.png",
            "tong-hop-TD2027-LDLD-BK.xlsx",
            "tong-hop-TD2027-LDLD-BK.png",
        ]
    )
    # The bot was down the next Monday: it catches up on Wednesday, once.
    report = await digest_pass(sessionmaker, cid, vn(1, 27, 10), POLICY)
    assert {m.external_id for m in report.messages} == {"quang", "minh"}
    assert (await digest_pass(sessionmaker, cid, vn(1, 28, 10), POLICY)).messages == []
    assert sorted(await sent_to(sessionmaker)).count("quang") == 2


async def test_daily_and_off(sessionmaker) -> None:
    org, _ids = await officers_scene(sessionmaker, digest="daily")
    cid = org.campaign.id
    for day in (19, 20, 21):
        report = await digest_pass(sessionmaker, cid, vn(1, day, 8, 30), POLICY)
        assert {m.external_id for m in report.messages} == {"quang", "minh"}
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(Campaign).where(Campaign.id == cid).values(settings={"digest": False})
        )
    assert (await digest_pass(sessionmaker, cid, vn(1, 22, 8, 30), POLICY)).messages == []


async def test_a_list_longer_than_a_sheet_is_left_out_before_reading_it(sessionmaker) -> None:
    # The nation's digest would need more rows than a sheet holds: decided from its counts,
    # so millions of rows are not read into memory only for the workbook to be refused.
    org, _dien = await known_org(sessionmaker)
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        root = await session.get(Unit, org.province.id)
        assert campaign is not None and root is not None
        data = await digest_data(session, campaign, root)
    assert list_fits_a_sheet(data)
    assert list_fits_a_sheet(replace(data, works=MAX_TABLE_ROWS))
    assert not list_fits_a_sheet(replace(data, works=MAX_TABLE_ROWS + 1))
    assert not list_fits_a_sheet(replace(data, initiatives=MAX_TABLE_ROWS + 1))


async def test_digest_counts_in_sql_not_per_row(sessionmaker) -> None:
    """The digest of a unit with many registrations is a fixed number of statements."""
    org, _dien = await known_org(sessionmaker)
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        root = await session.get(Unit, org.province.id)
        assert campaign is not None and root is not None
        statements: list[str] = []
        from sqlalchemy import event

        sync_engine = session.bind.sync_engine

        def count(_conn, _cursor, statement, *_args) -> None:
            statements.append(statement)

        event.listen(sync_engine, "before_cursor_execute", count)
        try:
            await digest_data(session, campaign, root)
        finally:
            event.remove(sync_engine, "before_cursor_execute", count)
        registrations = await session.scalar(select(func.count()).select_from(Registration))
    assert registrations and registrations > 10
    # + the list states (storage.counts) and the campaign's award names (its titles and the
    # awarding body)
    assert len(statements) <= 17


# --- the officer's own report: order, zero, fractions, natural order, targets ----------------

PLAN = {
    "code": "TD2027",
    "name": "Phong trào thi đua năm 2027",
    "issuer": "LDLD-BK",
    "year": 2027,
    "registration_deadline": "2027-01-25",
    "phases": [
        {"name": "Đợt 1", "start": "2027-01-01", "end": "2027-06-30"},
        {"name": "Đợt 2", "start": "2027-07-01", "end": "2027-12-31"},
    ],
    "titles": ["LDTT", "CSTDCS", "CSTD_TINH", "BK_TINH", "TTLDTT", "TTLDXS", "CO_TLD"],
    "targets": {"LDTT": "100%", "CSTDCS": "20%", "TTLDXS": "90%"},
    "award_names": {"BK_TINH": "Bằng khen của Công đoàn ngành Giáo dục"},
    "occasions": [
        {"name": "Tháng Công nhân", "date": "01/05"},
        {"name": "Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam", "date": "28/07"},
    ],
}

EXPECTED_REPORT = """\
📊 Báo cáo tổng hợp: Phong trào thi đua năm 2027
LĐLĐ tỉnh Bắc Kạn, số liệu đến 08:00 ngày 18/01/2027 (hạn đăng ký 25/01/2027).

Đơn vị đã gửi danh sách: 2 trên 5 đơn vị (đã duyệt 1, chờ duyệt 1).
Chưa gửi (3): Công đoàn cơ sở số 2; Công đoàn cơ sở số 10; Công đoàn Trường THPT Chợ Đồn.

Kết quả đăng ký đến nay (từ cấp cao xuống):
• 02 công trình, sản phẩm đăng ký chào mừng, tổng trị giá 1,7 tỷ đồng (02 công trình đề nghị \
gắn biển, 01 công trình đã gắn biển), theo dịp chào mừng:
   – Tháng Công nhân (01/05/2027): 01 công trình, 1,2 tỷ đồng
   – Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam (28/07/2027): 01 công trình, 500 triệu \
đồng;
• 01 cá nhân đăng ký Bằng khen của Công đoàn ngành Giáo dục;
• 02 tập thể đăng ký Tập thể lao động xuất sắc;
• 02 cá nhân đăng ký đạt CSTĐ các cấp (Chiến sĩ thi đua cấp tỉnh 01, Chiến sĩ thi đua cơ sở 01);
• 03 cá nhân đăng ký Lao động tiên tiến;
• 01 sáng kiến được đăng ký, giá trị làm lợi dự kiến 85 triệu đồng.

Tổng cộng: 02 lượt đăng ký của tập thể và 06 lượt đăng ký của cá nhân.

Tiến độ so với chỉ tiêu của kế hoạch:
• LĐTT: 3/7 = 42,9 % — chỉ tiêu 100 %
• CSTĐCS: 1/7 = 14,3 % — chỉ tiêu 20 %
• TTLĐXS: 2/5 = 40 % — chỉ tiêu 90 %

Đoàn viên đã đăng ký: 4 trên 7 người (57,1 %).
Theo đơn vị (Công đoàn Khu công nghiệp Thanh Bình):
• Công đoàn cơ sở Công ty May Bắc Kạn: 3 trên 4 người (75 %), đã duyệt
• Công đoàn cơ sở số 1: 1 trên 2 người (50 %), chờ duyệt
• Công đoàn cơ sở số 2: 0 trên 0 người (–), chưa gửi
• Công đoàn cơ sở số 10: 0 trên 1 người (0 %), chưa gửi
• Công đoàn Trường THPT Chợ Đồn: 0 trên 0 người (–), chưa gửi"""


async def test_digest_reads_like_the_officers_own_report(sessionmaker) -> None:
    """A small organisation whose whole report is written out: seed 002's order (works by
    occasion, awards, TTLĐXS, CSTĐ các cấp as one total, LĐTT, initiatives), zero as "0",
    fractions in words, "số 2" before "số 10", progress against the plan's targets."""
    from datetime import date

    from storage.campaigns import load_campaign

    org = await make_org(sessionmaker)
    async with sessionmaker() as session, session.begin():
        await load_campaign(session, PLAN)
        b = Builder(session, org)
        garment = await session.get(Unit, org.garment.id)
        assert garment is not None
        # Created out of order: the report puts them in natural order.
        no10 = await add_unit(session, "CDCS-10", "Công đoàn cơ sở số 10", "grassroots", org.upper)
        no2 = await add_unit(session, "CDCS-2", "Công đoàn cơ sở số 2", "grassroots", org.upper)
        no1 = await add_unit(session, "CDCS-1", "Công đoàn cơ sở số 1", "grassroots", org.upper)
        assert no2 is not None
        workers = [await person(session, f"Công nhân {i}", garment) for i in range(3)]
        first = [await person(session, f"Đoàn viên {i}", no1) for i in range(2)]
        await person(session, "Đoàn viên số 10", no10)
        b.title(garment, "LDTT", workers[0])
        b.title(garment, "CSTDCS", workers[0])
        b.title(garment, "LDTT", workers[1])
        b.title(garment, "BK_TINH", workers[1])
        b.title(garment, "CSTD_TINH", workers[2])
        b.title(no1, "LDTT", first[0])
        b.title(garment, "TTLDXS")
        b.title(no1, "TTLDXS")
        b.initiative(workers[0], 85_000_000)
        for unit, occasion, day, value, installed in (
            (garment, "Tháng Công nhân", date(2027, 5, 1), 1_200_000_000, date(2027, 5, 2)),
            (
                no1,
                "Kỷ niệm 98 năm Ngày thành lập Công đoàn Việt Nam",
                date(2027, 7, 28),
                500_000_000,
                None,
            ),
        ):
            session.add(
                Work(
                    receipt_no=b.receipt(),
                    campaign_id=org.campaign.id,
                    unit_id=unit.id,
                    name="Nhà văn hóa công nhân",
                    occasion=occasion,
                    occasion_on=day,
                    value=value,
                    starts_on=date(2027, 2, 1),
                    ends_on=day,
                    plaque_requested=True,
                    plaque_installed_on=installed,
                )
            )
        session.add(
            UnitSubmission(campaign_id=org.campaign.id, unit_id=garment.id, status="approved")
        )
        session.add(UnitSubmission(campaign_id=org.campaign.id, unit_id=no1.id, status="pending"))
    async with sessionmaker() as session:
        campaign = await session.get(Campaign, org.campaign.id)
        root = await session.get(Unit, org.province.id)
        assert campaign is not None and root is not None
        await session.refresh(campaign, ["phases"])
        data = await digest_data(session, campaign, root)
    with use_locale("vi"):
        body = digest_text(data, vn(1, 18, 8), POLICY)
    assert body == EXPECTED_REPORT, body


def test_counts_are_two_digits_and_zero_is_zero() -> None:
    from handlers.text import format_count

    assert [format_count(n) for n in (0, 2, 17, 1445)] == ["0", "02", "17", "1.445"]
    assert format_count(0, "en") == "0" and format_count(2, "en") == "2"


async def test_a_scheduled_digest_reaches_zalo_with_its_files_as_links(sessionmaker) -> None:
    """Zalo carries no files: with an address for signed links (THIDUA_PUBLIC_URL) the
    scheduled digest queues its workbook and chart for the Zalo officer too (the channel
    turns them into links when it sends); without one, the text says where to get them."""
    org, ids = await officers_scene(sessionmaker)
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(ChannelIdentity)
            .where(ChannelIdentity.person_id == ids["quang"])
            .values(channel="zalo")
        )
    settings = Settings(_env_file=None, THIDUA_PUBLIC_URL="https://thidua.example.vn")  # type: ignore[call-arg]
    linked = policy_from_settings(settings)
    assert linked.linked_file_channels == {"zalo", "zalo_oa"}
    plain = Settings(_env_file=None)  # type: ignore[call-arg]
    assert policy_from_settings(plain).linked_file_channels == frozenset()

    async def files_of(name: str) -> list[str]:
        async with sessionmaker() as session:
            rows = await session.scalars(
                select(OutboxMessage.file_name)
                .where(OutboxMessage.external_id == name, OutboxMessage.file_name.is_not(None))
                .order_by(OutboxMessage.file_name)
            )
            return list(rows)

    # Monday 18/01 without links: text only for Zalo, said so.
    await digest_pass(sessionmaker, org.campaign.id, vn(1, 18, 8), POLICY, chart=progress_chart_png)
    assert await files_of("quang") == []
    assert await files_of("minh") == ["tong-hop-TD2027-LDLD-BK.png", "tong-hop-TD2027-LDLD-BK.xlsx"]
    # The next Monday with links: the Zalo officer's files are queued as well.
    await digest_pass(sessionmaker, org.campaign.id, vn(1, 25, 8), linked, chart=progress_chart_png)
    assert await files_of("quang") == ["tong-hop-TD2027-CD-KCN.png", "tong-hop-TD2027-CD-KCN.xlsx"]
