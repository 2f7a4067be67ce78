"""Issue 15 where the channel matters: marks on Telegram, wording on Zalo."""

from __future__ import annotations

import re

from handlers.i18n import _, use_locale
from tests.proof import personal_code
from tests.test_telegram_channel import Harness, at_home, tg
from tests.test_zalo_bot import JAN_10, Zalo, sign_up, zalo

__all__ = ["tg", "zalo"]  # the channels' harness fixtures, shared


async def test_a_refused_old_button_is_not_marked_as_chosen(tg: Harness) -> None:
    user = tg.user()
    home = await at_home(user)
    await user.send("1")  # typed: the home message keeps its buttons
    await user.wait_for("Chọn danh hiệu")
    edits = len(tg.server.calls_of("editMessageText"))

    await user.press("Nhập chữ")  # the old home question's button: refused
    with use_locale("vi"):
        stale = _("That button belongs to an earlier question. Here is where we are:")
    await user.wait_for(stale)
    await user.wait_for("Chọn danh hiệu")
    assert len(tg.server.calls_of("editMessageText")) == edits
    assert "✔" not in (home.text or "")

    # A press that is taken is still marked.
    await user.press("Lao động")
    await user.wait_for("Đã chọn")
    await user.wait_for("✔ Lao động")


async def test_on_zalo_a_wrong_choice_is_told_to_type_the_number(zalo: Zalo, sessionmaker) -> None:
    user = zalo.user()
    await sign_up(user, await personal_code(sessionmaker, now=JAN_10))
    answer = await user.say("xin chào bot", "gõ số")
    assert "gõ số 1" in answer and "bấm" not in answer.split("\n")[0]
    assert re.search(r"^1\. ", answer, re.M)  # the menu again, numbered


async def test_on_zalo_cancel_asks_once_in_words_to_type(zalo: Zalo, sessionmaker) -> None:
    user = zalo.user()
    await sign_up(user, await personal_code(sessionmaker, now=JAN_10))
    await user.say("/sangkien", "tên sáng kiến")
    await user.say("Cải tiến dây chuyền may cổ áo", "lĩnh vực")
    await user.say("ky thuat", "mô tả")
    answer = await user.say("huy", "Bỏ 2 câu trả lời")
    assert "Gõ “Hủy” lần nữa" in answer and "bấm" not in answer.split("\n")[0].lower()
    assert "mô tả" in answer.lower()  # the question again
    await user.say("huy", "Đã hủy")
