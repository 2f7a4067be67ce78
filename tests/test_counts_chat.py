"""The numbers and the list states as people read them: the leader's /donvi, the officer's
/tonghop (its text and its XLSX), ``thidua digest`` and a member's /cuatoi agree, after
registrations (one by the leader for a member without a phone), an initiative with a
co-author who registered nothing else, a withdrawal, an import that marks its unit's list as
sent, a list returned and a list approved (issue 11: "2/5 to the leader, 3/5 to the officer",
"every row of the XLSX said Chờ duyệt after the approval")."""

from __future__ import annotations

import asyncio
import io
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.charts import progress_chart_png
from bot.cli import main
from handlers.engine.flow import EngineConfig
from handlers.flows import build_engine
from storage.models import Campaign, Role
from storage.registration_import import import_registrations_file
from tests.factories import make_org
from tests.test_leader import add_person, started

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
GARMENT = "Công đoàn cơ sở Công ty May Bắc Kạn"
SCHOOL = "Công đoàn Trường THPT Chợ Đồn"


def unit_line(text: str, unit: str) -> str:
    """The digest's line of one unit."""
    return next(line for line in text.splitlines() if line.startswith(f"• {unit}:"))


def column(sheet, header: str) -> int:
    """The 0-based index of a column of the form (found by its header, row 8)."""
    headers = next(sheet.iter_rows(min_row=8, max_row=8, values_only=True))
    return list(headers).index(header)


async def test_leader_officer_cli_and_export_agree(
    sessionmaker: async_sessionmaker[AsyncSession],
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    org = await make_org(sessionmaker)  # Nguyễn Thị Hoa is on the garment union's roster
    await add_person(
        sessionmaker, org.upper, "Phạm Quang", chat="O", roles=((Role.OFFICER, org.upper),)
    )
    await add_person(
        sessionmaker, org.garment, "Trần Văn Tuấn", chat="G", roles=((Role.LEADER, org.garment),)
    )
    await add_person(sessionmaker, org.garment, "Lê Văn Mạnh", chat="A")
    await add_person(sessionmaker, org.garment, "Trần Văn Bình", chat="B")
    await add_person(sessionmaker, org.garment, "Vũ Thị Yến", chat="C")
    await add_person(sessionmaker, org.garment, "Ngô Văn Tư")  # no phone, no chat
    await add_person(
        sessionmaker, org.school, "Hà Thị Lan", chat="S", roles=((Role.LEADER, org.school),)
    )
    bot = build_engine(
        sessionmaker, EngineConfig(now=lambda: JAN_10, digest_chart=progress_chart_png)
    )

    # Garment union: Mạnh registers LĐTT; Yến registers it and withdraws it.
    manh = await started(bot, "A")
    yen = await started(bot, "C")
    for member in (manh, yen):
        await member.say("/dangky")
        await member.tap("Lao động tiên tiến")
        await member.tap("Bỏ qua")
        await member.tap("Xác nhận")
    await yen.say("/cuatoi")
    await yen.tap("Rút")
    await yen.tap("Có")
    assert "đã rút" in yen.text().lower()
    # Bình registers an initiative only, with Hoa (who registered nothing) as co-author.
    binh = await started(bot, "B")
    await binh.say("/sangkien")
    await binh.say("Cải tiến cữ gá may cổ áo")
    await binh.tap("Kỹ thuật")
    await binh.say("Gắn cữ gá giúp may cổ áo nhanh gấp đôi, giảm lỗi đường may.")
    await binh.say("Nguyen Thi")
    await binh.tap("Nguyễn Thị Hoa")
    await binh.tap("Xong")
    for _question in range(3):
        await binh.tap("Bỏ qua")
    await binh.tap("Xác nhận")
    assert "TD2027-" in binh.text()
    # The leader registers LĐTT for Tư, who has no phone.
    garment = await started(bot, "G")
    await garment.tap("Đăng ký giúp đoàn viên")
    await garment.say("van tu")
    await garment.tap("Ngô Văn Tư")
    await garment.tap("Lao động tiên tiến")
    await garment.tap("Bỏ qua")
    await garment.tap("Xác nhận")
    assert "đăng ký của Ngô Văn Tư" in garment.text()

    # School union: its paper list is imported, and marked as sent to the upper level.
    listing = tmp_path / "truong.csv"
    listing.write_text(
        "unit_code,full_name,title\nCDCS-THPT,Hà Thị Lan,LĐTT\nCDCS-THPT,Đỗ Văn Minh,LĐTT\n",
        encoding="utf-8",
    )
    async with sessionmaker() as session, session.begin():
        campaign = await session.get(Campaign, org.campaign.id)
        assert campaign is not None
        summary = await import_registrations_file(
            session, listing, "titles", campaign, today=JAN_10.date(), lists="sent"
        )
    assert summary.lines()[-1] == "Marked the lists of 1 unit(s) as «Chờ duyệt»"

    # The officer returns the school's list, and approves the garment union's.
    officer = await started(bot, "O")
    await officer.say("/duyet")
    await officer.press("Trả lại", in_message="Chợ Đồn")
    await officer.say("Đề nghị bổ sung danh hiệu tập thể")
    await garment.say("/guilen")
    await garment.tap("Gửi lên cấp trên")
    officer.deliver(garment.last_others)
    await officer.press("Duyệt", in_message="Công ty May")
    assert "Đã duyệt danh sách của Công đoàn cơ sở Công ty May" in officer.text()

    # The leaders: 4 of 6 registered at the garment union (Mạnh, Tư, Bình and his co-author
    # Hoa; not Yến, who withdrew, nor the leader), 2 of 2 at the school.
    await garment.say("/donvi")
    text = garment.text()
    assert "Đoàn viên đã đăng ký: 4/6" in text
    assert "LĐTT: 02" in text
    assert "Danh sách gửi cấp trên: Đã duyệt" in text
    school = await started(bot, "S")
    await school.say("/donvi")
    assert "Đoàn viên đã đăng ký: 2/2" in school.text()
    assert "Danh sách gửi cấp trên: Trả lại (bổ sung)" in school.text()
    # A member sees both states of her registration.
    await manh.say("/cuatoi")
    assert "đã đăng ký; danh sách đơn vị: đã duyệt" in manh.text()

    # The officer's digest says the same per unit, with the same list states.
    await officer.say("/tonghop")
    digest = officer.last[0].text
    assert re.search(r"4 trên 6 người \(66,7 %\), đã duyệt$", unit_line(digest, GARMENT))
    assert re.search(r"2 trên 2 người \(100 %\), trả lại \(bổ sung\)$", unit_line(digest, SCHOOL))
    # The whole subtree: the officer is on the upper union's roster too.
    assert "Đoàn viên đã đăng ký: 6 trên 9 người" in digest
    files = {r.file.filename: r.file for r in officer.last if r.file}
    book = load_workbook(io.BytesIO(files["tong-hop-TD2027-CD-KCN.xlsx"].content))
    people = book["Cá nhân"]
    rows = [r for r in people.iter_rows(min_row=9, values_only=True) if isinstance(r[0], int)]
    unit_code, state = column(people, "Mã đơn vị"), column(people, "Danh sách đơn vị")
    # Four LĐTT (Mạnh, Tư; Lan, Minh), each with its list's state, as the chat says it.
    assert sorted((r[unit_code], r[state]) for r in rows) == [
        ("CDCS-MAY", "Đã duyệt"),
        ("CDCS-MAY", "Đã duyệt"),
        ("CDCS-THPT", "Trả lại (bổ sung)"),
        ("CDCS-THPT", "Trả lại (bổ sung)"),
    ]
    assert {r[column(people, "Trạng thái")] for r in rows} == {"Đã đăng ký"}
    ideas = book["Sáng kiến"]
    idea_rows = [r for r in ideas.iter_rows(min_row=9, values_only=True) if r[0] == 1]
    assert [r[column(ideas, "Danh sách đơn vị")] for r in idea_rows] == ["Đã duyệt"]

    # `thidua digest` on the same database gives the same lines.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", db_url)
    monkeypatch.setenv("THIDUA_LOCALE", "vi")
    assert await asyncio.to_thread(main, ["digest", "--unit", "CD-KCN"]) == 0
    printed = capsys.readouterr().out
    assert unit_line(printed, GARMENT) == unit_line(digest, GARMENT)
    assert unit_line(printed, SCHOOL) == unit_line(digest, SCHOOL)
    assert "Đoàn viên đã đăng ký: 6 trên 9 người" in printed
