"""Natural yes/no words answer every yes/no question: "ok", "đồng ý", "ừ", "đúng rồi",
"vâng", "có"; "không", "ko" — with or without diacritics."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.engine.flow import EngineConfig
from handlers.engine.runner import match_choice, yes_no
from handlers.flows import build_engine
from storage.models import Registration
from tests.chat import Chat
from tests.factories import Org, make_org

JAN_10 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)
YES = ["ok", "OK!", "oke", "đồng ý", "dong y", "Đồng ý ạ", "ừ", "u", "đúng rồi", "dung roi",
       "có", "co", "vâng", "Vâng ạ.", "dạ", "được"]  # fmt: skip
NO = ["không", "khong", "ko", "Ko.", "k", "không ạ", "thôi", "không phải", "no"]


def as_stored(*choices: tuple[str, str]) -> list[dict[str, object]]:
    return [{"id": i, "label": label, "aliases": []} for i, label in choices]


@pytest.mark.parametrize("word", YES)
def test_yes_words_pick_the_yes_choice(word: str) -> None:
    assert yes_no(word) is True
    choices = as_stored(("yes", "Có, rút đăng ký"), ("no", "Không, giữ lại"))
    assert match_choice(word, choices) == "yes"
    # A summary's confirmation is a yes too.
    summary = as_stored(("confirm", "✅ Xác nhận"), ("edit_title", "✏️ Sửa danh hiệu"))
    assert match_choice(word, summary) == "confirm"
    advice = as_stored(("add_LDTT", "➕ Đăng ký thêm LĐTT"), ("go", "➡️ Vẫn đăng ký"))
    assert match_choice(word, advice) == "go"


@pytest.mark.parametrize("word", NO)
def test_no_words_pick_the_no_choice(word: str) -> None:
    assert yes_no(word) is False
    choices = as_stored(("yes", "Có, rút đăng ký"), ("no", "Không, giữ lại"))
    assert match_choice(word, choices) == "no"


def test_yes_no_words_do_not_answer_other_questions() -> None:
    titles = as_stored(("LDTT", "Lao động tiên tiến (LĐTT)"), ("CSTDCS", "CSTĐCS"))
    assert match_choice("ok", titles) is None
    assert match_choice("không", titles) is None
    assert yes_no("ok con dê") is None


@pytest.fixture
async def org(sessionmaker: async_sessionmaker[AsyncSession]) -> Org:
    return await make_org(sessionmaker)


async def test_withdrawal_answered_in_words(sessionmaker, org: Org) -> None:
    chat = Chat(build_engine(sessionmaker, EngineConfig(now=lambda: JAN_10)), "1")
    await chat.say("/start")
    await chat.contact("+84912345678")
    await chat.say("đúng rồi")  # "Is that you?" on the roster
    assert any("Đăng ký danh hiệu" in b for b in chat.buttons())
    await chat.say("/dangky")
    await chat.say("1")
    await chat.tap("Bỏ qua")
    await chat.say("ok")  # confirms the summary
    assert "TD2027-000001" in chat.text()
    await chat.say("/cuatoi")
    await chat.tap("Rút")
    await chat.say("ko")
    async with sessionmaker() as session:
        assert (await session.scalar(select(Registration.status))) == "submitted"
    await chat.say("/cuatoi")
    await chat.tap("Rút")
    await chat.say("Đồng ý")
    assert "đã rút" in chat.text().lower()
    async with sessionmaker() as session:
        assert (await session.scalar(select(Registration.status))) == "withdrawn"
