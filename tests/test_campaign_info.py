"""“Thông tin phong trào”: a member reads the campaign's theme, phases, movements, targets and
gets the plan document where the channel carries files (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.campaigns import load_campaign_file
from tests.chat import Chat
from tests.factories import make_org
from tests.test_flows import make_engine

Sessions = async_sessionmaker[AsyncSession]
VN = ZoneInfo("Asia/Ho_Chi_Minh")

PLAN_YAML = """
code: TD2027
name: Phong trào thi đua năm 2027
issuer: LDLD-BK
year: 2027
registration_deadline: 2027-01-25
theme: "Đoàn kết, sáng tạo, hoàn thành xuất sắc nhiệm vụ năm 2027"
movements:
  - Lao động giỏi, Lao động sáng tạo
  - Xanh – Sạch – Đẹp, bảo đảm an toàn, vệ sinh lao động
phases:
  - {name: Đợt 1, start: 2027-01-01, end: 2027-06-30, theme: Chào mừng Tháng Công nhân,
     works_until: 2027-07-15}
  - {name: Đợt 2, start: 2027-07-01, end: 2027-12-31}
titles: [LDTT, CSTDCS, BK_TINH, TTLDTT, TTLDXS]
targets: {LDTT: 100%, TTLDXS: 90%, CSTDCS: 20%}
award_names: {BK_TINH: Bằng khen của Công đoàn ngành Giáo dục}
plan_document: ke-hoach.pdf
"""


async def load_plan(sessionmaker: Sessions, tmp_path: Path, with_document: bool = True) -> None:
    await make_org(sessionmaker)
    text = PLAN_YAML if with_document else PLAN_YAML.replace("plan_document: ke-hoach.pdf", "")
    (tmp_path / "ke-hoach.pdf").write_bytes(b"%PDF-1.4 Ke hoach phat dong")
    (tmp_path / "td.yaml").write_text(text, encoding="utf-8")
    async with sessionmaker() as session, session.begin():
        await load_campaign_file(session, tmp_path / "td.yaml")


async def member(sessionmaker: Sessions, channel: str, now: datetime) -> Chat:
    """Nguyễn Thị Hoa (on the roster), signed in on ``channel``, at the menu."""
    chat = Chat(make_engine(sessionmaker, now), "hoa", channel=channel)
    await chat.say("/start")
    if "bạn muốn làm gì" in chat.text().lower():
        return chat  # already known on this channel
    await chat.contact("+84912345678")
    await chat.tap("là tôi")
    return chat


async def test_a_member_reads_the_plan_and_gets_the_document(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await load_plan(sessionmaker, tmp_path)
    chat = await member(sessionmaker, "test", datetime(2027, 1, 10, 9, 0, tzinfo=VN))
    assert "📢 Thông tin phong trào" in chat.buttons()
    await chat.tap("Thông tin phong trào")
    info = chat.last[0].text
    assert info == (
        "📢 Phong trào thi đua năm 2027\n"
        "Chủ đề: Đoàn kết, sáng tạo, hoàn thành xuất sắc nhiệm vụ năm 2027\n"
        "Đơn vị phát động: LĐLĐ tỉnh Bắc Kạn\n"
        "Hạn đăng ký: 25/01/2027 (còn 15 ngày).\n"
        "\n"
        "Các đợt thi đua:\n"
        "• Đợt 1 (01/01/2027 – 30/06/2027): đang diễn ra, còn 171 ngày; nhận đăng ký công "
        "trình đến hết 15/07/2027\n"
        "  Chủ đề: Chào mừng Tháng Công nhân\n"
        "• Đợt 2 (01/07/2027 – 31/12/2027): bắt đầu ngày 01/07/2027\n"
        "\n"
        "Các phong trào thi đua:\n"
        "• Lao động giỏi, Lao động sáng tạo\n"
        "• Xanh – Sạch – Đẹp, bảo đảm an toàn, vệ sinh lao động\n"
        "\n"
        "Chỉ tiêu:\n"
        "• Lao động tiên tiến: 100 % đoàn viên\n"
        "• Chiến sĩ thi đua cơ sở: 20 % đoàn viên\n"
        "• Tập thể lao động xuất sắc: 90 % tập thể"
    )
    document = chat.last[1].file
    assert document is not None
    assert (document.filename, document.mime, document.content) == (
        "ke-hoach.pdf",
        "application/pdf",
        b"%PDF-1.4 Ke hoach phat dong",
    )
    assert "bạn muốn làm gì" in chat.last[-1].text.lower()  # back at the menu

    # The command does the same, any time (here in phase 2, registration long closed).
    later = await member(sessionmaker, "test", datetime(2027, 8, 1, 9, 0, tzinfo=VN))
    await later.say("/phongtrao")
    info = later.last[0].text
    assert "Đã hết hạn đăng ký từ ngày 25/01/2027." in info
    assert "• Đợt 1 (01/01/2027 – 30/06/2027): đã kết thúc" in info
    assert "• Đợt 2 (01/07/2027 – 31/12/2027): đang diễn ra, còn 152 ngày" in info


async def test_a_channel_without_files_gets_a_one_line_notice(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await load_plan(sessionmaker, tmp_path)
    chat = await member(sessionmaker, "zalo", datetime(2027, 1, 10, 9, 0, tzinfo=VN))
    await chat.tap("Thông tin phong trào")
    assert chat.last[0].text.startswith("📢 Phong trào thi đua năm 2027")
    assert all(reply.file is None for reply in chat.last)
    notice = chat.last[1].text
    assert notice == (
        "(Kế hoạch phát động “ke-hoach.pdf” có thể nhận trên Telegram hoặc trang web chat.)"
    )
    assert "\n" not in notice


async def test_without_a_document_or_a_campaign_nothing_is_promised(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    await load_plan(sessionmaker, tmp_path, with_document=False)
    chat = await member(sessionmaker, "zalo", datetime(2027, 1, 10, 9, 0, tzinfo=VN))
    await chat.say("/phongtrao")
    assert "Telegram" not in chat.text() and "Chỉ tiêu:" in chat.text()
    after = await member(sessionmaker, "test", datetime(2028, 2, 1, 9, 0, tzinfo=VN))
    await after.say("/phongtrao")
    assert "chưa có" in after.text().lower()
