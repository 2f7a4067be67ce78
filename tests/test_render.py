"""Numbered text, as channels without buttons (terminal, Zalo Bot) show a reply."""

from __future__ import annotations

from handlers.engine.prompt import BACK, CANCEL, Choice, Reply
from handlers.engine.render import numbered_text
from handlers.i18n import use_locale


def test_choices_are_numbered_and_navigation_is_offered_as_words() -> None:
    reply = Reply(
        "Bạn đăng ký danh hiệu nào?",
        (
            Choice("LDTT", "Lao động tiên tiến"),
            Choice("CSTDCS", "Chiến sĩ thi đua cơ sở"),
            Choice(BACK, "« Quay lại"),
            Choice(CANCEL, "✖ Hủy"),
        ),
    )
    with use_locale("vi"):
        text = numbered_text(reply)
    assert "1. Lao động tiên tiến\n2. Chiến sĩ thi đua cơ sở" in text
    assert "Quay lại · Hủy" in text
    assert "3." not in text


def test_notification_buttons_become_commands_not_numbers() -> None:
    reply = Reply(
        "Công đoàn cơ sở May đã gửi danh sách.",
        (Choice("!approve:12", "✅ Duyệt"), Choice("!return:12", "↩️ Trả lại")),
    )
    with use_locale("vi"):
        text = numbered_text(reply)
    assert "1." not in text
    # Vietnamese commands in Vietnamese text; the engine takes them (tests/test_access.py).
    assert "✅ Duyệt: gõ /pheduyet 12" in text and "↩️ Trả lại: gõ /tralai 12" in text
    with use_locale("en"):
        assert "/approve 12" in numbered_text(reply)


def test_a_reminder_button_is_the_command_it_stands_for() -> None:
    reply = Reply("Nhắc hạn", (Choice("!start:title", "📝 Đăng ký ngay"),))
    with use_locale("vi"):
        assert "📝 Đăng ký ngay: gõ /dangky" in numbered_text(reply)
