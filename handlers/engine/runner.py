"""The runner: one update in, replies out, state persisted in between.

Every update is one unit of work: load the identity and its conversation, match the input
against the prompt the person last saw, run the step, save the new state with a version
check, commit, and only then hand the replies to the channel. A lost race (two fast messages
of one person, two processes) or a busy database rolls everything back and runs the update
again on fresh state, so the state never mixes two answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from handlers.engine.flood import FloodGuard, Verdict
from handlers.engine.flow import (
    Again,
    Answer,
    Cancel,
    Ctx,
    Edit,
    EngineConfig,
    Finish,
    Flow,
    Go,
    Next,
    Switch,
)
from handlers.engine.prompt import (
    ACTION_PREFIX,
    BACK,
    CANCEL,
    SKIP,
    Choice,
    Incoming,
    InputKind,
    Outgoing,
    Prompt,
    Reply,
    Result,
    reply_to_payload,
)
from handlers.i18n import _, use_locale
from handlers.text import Invalid, clean, fold, parse_date, parse_money, parse_phone
from storage import late_begin
from storage.late_begin import SINGLE_WRITE
from storage.models import ChannelIdentity, Conversation, OutboxMessage, Person, Unit
from storage.refcache import VERSION_SUBQUERY, use_version
from storage.rows import Columns, keep_loaded
from storage.types import utcnow

log = logging.getLogger(__name__)

MENU_FLOW = "menu"
# Redos of an update that lost a race or met a database failure before it is given up.
MAX_RACE_ATTEMPTS = 200
# Database failures in a row before the person is told it takes a moment.
BUSY_NOTICE_AFTER = 3
# Steps followed in one update without asking anything; a guard against a flow loop.
MAX_HOPS = 25
MAX_TEXT = 4000
MAX_HISTORY = 30
# Event ids remembered per conversation; platforms redeliver recent events only.
MAX_SEEN = 30
# Answers given in a flow from which "✖ Hủy" asks before dropping them.
CONFIRM_CANCEL_AFTER = 2

CommandFn = Callable[[Ctx, str], Awaitable[Go | None]]
BusyFn = Callable[[Reply], Awaitable[None]]

_NAV_WORDS = {
    BACK: {"quay lai", "tro lai", "back", "<", "«"},
    CANCEL: {"huy", "huy bo", "cancel", "thoat", "dung lai"},
    SKIP: {"bo qua", "skip", "khong", "khong co", "-"},
}


def queue_outgoing(session: AsyncSession, messages: list[Outgoing]) -> None:
    """Write messages for other people into the outbox, in the caller's transaction."""
    for out in messages:
        file = out.reply.file
        session.add(
            OutboxMessage(
                channel=out.to.channel,
                external_id=out.to.external_id,
                payload=reply_to_payload(out.reply),
                file_name=file.filename if file else None,
                file_mime=file.mime if file else None,
                file_content=file.content if file else None,
                **({"next_attempt_at": out.not_before} if out.not_before else {}),
            )
        )


# The two statements of an ordinary answer, built once: constructing a statement costs more
# CPU than running it (bench/conversation.py); a built one also keeps its cache key.
# 1. The identity, its person and unit, its conversation and the version of the reference
#    data (storage.refcache), in one statement, as plain columns: the instances are made from
#    them (storage.rows) at a fraction of the ORM's loading.
_IDENTITY, _PERSON, _UNIT = Columns(ChannelIdentity), Columns(Person), Columns(Unit)
_people, _units = cast(Table, Person.__table__), cast(Table, Unit.__table__)
_identities = cast(Table, ChannelIdentity.__table__)
_conversations_table = cast(Table, Conversation.__table__)
_conversations = _conversations_table.c
_LOAD = (
    select(
        *_IDENTITY.columns,
        *_PERSON.columns,
        *_UNIT.columns,
        _conversations.id,
        _conversations.flow,
        _conversations.step,
        _conversations.data,
        _conversations.version,
        VERSION_SUBQUERY,
    )
    .select_from(
        _identities.outerjoin(_people, _people.c.id == _identities.c.person_id)
        .outerjoin(_units, _units.c.id == _people.c.unit_id)
        .outerjoin(_conversations_table, _conversations.identity_id == _identities.c.id)
    )
    .where(
        _identities.c.channel == bindparam("channel"),
        _identities.c.external_id == bindparam("external_id"),
    )
)
_PERSON_AT = len(_IDENTITY)
_UNIT_AT = _PERSON_AT + len(_PERSON)
_CONVERSATION_AT = _UNIT_AT + len(_UNIT)
# 2. The new state, if nobody saved another since it was read (the optimistic check).
_SAVE = (
    update(_conversations_table)
    .where(
        _conversations.id == bindparam("conversation_id"),
        _conversations.version == bindparam("read_version"),
    )
    .values(
        flow=bindparam("new_flow"),
        step=bindparam("new_step"),
        data=bindparam("new_data"),
        version=bindparam("new_version"),
        updated_at=bindparam("now"),
    )
    # One statement, all or nothing by itself: on PostgreSQL an answer that wrote nothing
    # else needs no transaction around it (storage.late_begin).
    .execution_options(**{SINGLE_WRITE: True})
)


# 3. The first state of a conversation (the identity's first update).
_CREATE = (
    insert(_conversations_table)
    .values(
        identity_id=bindparam("identity_id"),
        flow=bindparam("new_flow"),
        step=bindparam("new_step"),
        data=bindparam("new_data"),
        version=1,
        updated_at=bindparam("now"),
    )
    .execution_options(**{SINGLE_WRITE: True})
)


class _LostRace(Exception):
    """Another update of the same person was saved first: redo this one."""


def _load(
    sync: Session, channel: str, external_id: str
) -> tuple[ChannelIdentity, _Saved | None, int | None] | None:
    """The identity (with its person and unit, as the session's own instances), its
    conversation and the reference version; None for an address never seen. Run inside the
    session's greenlet: checking out the connection, the statement and the instances are one
    hop from the event loop, not three."""
    connection = sync.connection()
    # On PostgreSQL, no BEGIN (a round trip) until the first write (storage.late_begin).
    late_begin.start(connection)
    row = connection.execute(_LOAD, {"channel": channel, "external_id": external_id}).first()
    if row is None:
        return None
    unit = _UNIT.instance(sync, row[_UNIT_AT:_CONVERSATION_AT])
    person = _PERSON.instance(sync, row[_PERSON_AT:_UNIT_AT], unit=unit)
    identity = _IDENTITY.instance(sync, row[:_PERSON_AT], person=person)
    conversation_id, flow, step, data, version, reference = row[_CONVERSATION_AT:]
    if conversation_id is None:
        return identity, None, reference
    return identity, _Saved(conversation_id, flow, step, data, version), reference


def _save_and_commit(sync: Session, identity_id: int, new: _Saved, now: datetime) -> None:
    """Write the new state of the conversation (``new.version`` is the version read) and
    commit the unit of work, in one hop into the session's greenlet.

    Whatever the flow left pending in the session is flushed first, so the conversation's
    row is the last write of the transaction, as before.
    """
    sync.flush()
    connection = sync.connection()
    if new.id is None:
        # A second first message that raced this one inserts too: the unique identity id
        # refuses one of them (IntegrityError), which is redone as a lost race.
        connection.execute(
            _CREATE,
            {
                "identity_id": identity_id,
                "new_flow": new.flow,
                "new_step": new.step,
                "new_data": new.data,
                "now": now,
            },
        )
    else:
        saved = connection.execute(
            _SAVE,
            {
                "conversation_id": new.id,
                "read_version": new.version,
                "new_flow": new.flow,
                "new_step": new.step,
                "new_data": new.data,
                "new_version": new.version + 1,
                "now": now,
            },
        )
        if saved.rowcount != 1:
            raise _LostRace()
    sync.commit()


def nav_choices(prompt: Prompt, can_back: bool) -> tuple[Choice, ...]:
    nav: list[Choice] = []
    if prompt.optional:
        nav.append(Choice(SKIP, _("Skip »")))
    if prompt.allow_back and can_back:
        nav.append(Choice(BACK, _("« Back")))
    if prompt.allow_cancel:
        nav.append(Choice(CANCEL, _("✖ Cancel")))
    return tuple(nav)


# How people answer a yes/no question in a chat, folded (no diacritics, lower case): "ok",
# "đồng ý", "ừ", "đúng rồi", "vâng ạ"; "không", "ko", "thôi". They pick the choice whose id
# is in YES_IDS / NO_IDS, on every yes/no question of every flow.
YES_WORDS = frozenset(
    {
        "co", "co a", "ok", "oke", "okie", "okay", "ok a", "dong y", "dong y a", "u", "uh",
        "um", "uhm", "u a", "vang", "vang a", "da", "da vang", "da co", "dung", "dung roi",
        "dung vay", "dung a", "chinh xac", "duoc", "chac chan", "yes", "y", "yep", "sure",
        "phai", "phai roi", "chuan",
    }
)  # fmt: skip
NO_WORDS = frozenset(
    {
        "khong", "khong a", "ko", "k", "kh", "khg", "hong", "hok", "khong phai", "khong dung",
        "sai", "sai roi", "thoi", "no", "n", "nope", "khong dong y", "chua", "da khong",
    }
)  # fmt: skip
# "go" carries on past a rule's advice, "send" sends a unit's list: both a yes.
YES_IDS = ("yes", "confirm", "go", "send")
NO_IDS = ("no",)


def yes_no(text: str) -> bool | None:
    """True for a typed yes ("ok", "Đồng ý!", "ừ"), False for a no ("ko"), None otherwise."""
    folded = fold(text).strip(" .!?,;:)~")
    if folded in YES_WORDS:
        return True
    if folded in NO_WORDS:
        return False
    return None


def stored_choice(choice: Choice) -> dict[str, Any]:
    """A choice as the conversation keeps it: a shortened label keeps its whole text too
    (channels without buttons show it whole; a re-asked question shortens it again)."""
    if not choice.full_label:
        return {"id": choice.id, "label": choice.label, "aliases": list(choice.aliases)}
    aliases = [a for a in choice.aliases if a != choice.full_label]
    return {"id": choice.id, "label": choice.label, "aliases": aliases, "full": choice.full_label}


def match_choice(text: str, choices: list[dict[str, Any]]) -> str | None:
    """Which choice a typed answer means: its number, its label, an alias, a yes or a no
    where the question is a yes/no one, or a unique part of a label."""
    typed = fold(text)
    # "2." or "2)" is a number; a label such as "… (LĐTT)" must still match as typed.
    folded = typed.strip(" .)")
    if not folded:
        return None
    # isdecimal, not isdigit: "²" is a digit that int() refuses.
    if folded.isdecimal():
        n = int(folded)
        return choices[n - 1]["id"] if 1 <= n <= len(choices) else None
    for c in choices:
        names = [
            fold(c["label"]),
            *(fold(a) for a in (*c.get("aliases", ()), c.get("full", ""))),
            c["id"].lower(),
        ]
        if folded in names or typed in names:
            return str(c["id"])
    answer = yes_no(text)
    if answer is not None:
        wanted = YES_IDS if answer else NO_IDS
        for c in choices:
            if c["id"] in wanted or (not answer and "no" in c.get("aliases", ())):
                return str(c["id"])
    if len(folded) >= 3:
        # The label, or a label shortened for the button (its whole text is an alias).
        partial = [
            c["id"]
            for c in choices
            if any(
                folded in fold(text)
                for text in (c["label"], c.get("full", ""), *c.get("aliases", ()))
            )
        ]
        if len(partial) == 1:
            return str(partial[0])
    return None


def kind_hint(kind: str, buttons: bool = True) -> str:
    hints = {
        InputKind.CHOICE: _("Please tap one of the buttons, or type its number.")
        if buttons
        else _("Please type the number of your choice, for example 1."),
        InputKind.DATE: _("Please type a date as day/month/year, for example 25/01/2027."),
        InputKind.MONEY: _(
            "Please type an amount in đồng, for example 80 triệu, 1,2 tỷ or 1.200.000."
        ),
        InputKind.PHONE: _(
            "Please type a Vietnamese mobile number, for example 0912 345 678 or +84 912 345 678."
        ),
        InputKind.NUMBER: _("Please type a whole number, for example 12."),
        InputKind.FILE: _("Please send a document or a photo."),
        InputKind.TEXT: _("Please type your answer as text."),
    }
    return hints.get(InputKind(kind), hints[InputKind.TEXT])


class Engine:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        flows: Mapping[str, Flow],
        commands: Mapping[str, CommandFn],
        config: EngineConfig | None = None,
        actions: Mapping[str, CommandFn] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.flows = flows
        self.commands = commands
        # Buttons on notifications ("Duyệt" on a unit's list sent to an officer) are not
        # answers to the person's current question: their ids start with "!" and name an
        # action, "!name:argument", that works whatever the person is doing.
        self.actions = actions or {}
        # Called after a commit that queued messages for others (wakes the dispatcher).
        self.on_queued: Callable[[], None] | None = None
        self.config = config or EngineConfig()
        # Slows down a person who floods the bot (handlers.engine.flood); the composition
        # root sets it. None: every update is handled (tests drive journeys at full speed).
        self.flood: FloodGuard | None = None
        # Told of every update handled: (channel, outcome, seconds); outcome is "answered",
        # "dropped" (flood guard) or "busy" (the database did not answer in time). The
        # composition root feeds the metrics with it (bot.metrics.update_handled).
        self.on_handled: Callable[[str, str, float], None] | None = None
        # SQLite has one writer at a time and every unit of work writes (the conversation):
        # in this process they take turns here, in arrival order, instead of meeting in
        # SQLite's busy handler, which naps 1 to 100 ms at a time while the lock is often
        # already free (bench/conversation.py: that was the p99 of an update on SQLite).
        bind = sessionmaker.kw.get("bind")
        dialect = getattr(getattr(bind, "dialect", None), "name", None)
        self._turns = asyncio.Lock() if dialect == "sqlite" else None

    # --- the unit of work --------------------------------------------------------------

    async def handle(self, incoming: Incoming, on_busy: BusyFn | None = None) -> Result:
        """Process one update as one unit of work, redone until it commits.

        Lost races are redone at once. When the database is unreachable (restarting, busy),
        the person is told once through ``on_busy`` that it takes a moment, and the update
        keeps being retried for up to ``config.busy_patience`` seconds, so their answer is
        not lost when the database comes back.
        """
        if self.on_handled is None:
            return (await self._handle_update(incoming, on_busy))[0]
        started = time.perf_counter()
        result, outcome = await self._handle_update(incoming, on_busy)
        self.on_handled(incoming.address.channel, outcome, time.perf_counter() - started)
        return result

    async def _handle_update(
        self, incoming: Incoming, on_busy: BusyFn | None
    ) -> tuple[Result, str]:
        if self.flood is not None:
            address = incoming.address
            verdict = await self.flood.check(f"{address.channel}:{address.external_id}")
            if verdict is not Verdict.PASS:
                # Dropped before any database work, so a flood costs others nothing.
                log.info("update of %s dropped: too many too fast", address)
                notice = [self._slow_down_reply(incoming)] if verdict is Verdict.WARN else []
                return Result(notice), "dropped"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.busy_patience
        delay, db_failures = 0.02, 0
        for attempt in range(1, MAX_RACE_ATTEMPTS + 1):
            try:
                # No session.begin(): the session begins by itself at the first statement,
                # and _handle commits with its last one (one hop into SQLAlchemy's greenlet
                # for both). Leaving the block any other way closes the session, which rolls
                # back whatever was done.
                async with self._turn(), self.sessionmaker() as session:
                    result = await self._handle(session, incoming)
                if result.others and self.on_queued is not None:
                    self.on_queued()
                return result, "answered"
            except (_LostRace, IntegrityError):
                log.debug("update of %s lost a race, attempt %d", incoming.address, attempt)
            except (OperationalError, DBAPIError, OSError) as exc:
                # Nothing of the update was committed: it is redone whole.
                db_failures += 1
                log.warning("database error on attempt %d: %s", attempt, exc.__class__.__name__)
                if db_failures == BUSY_NOTICE_AFTER and on_busy is not None:
                    await on_busy(self._busy_reply(incoming))
            if loop.time() + delay > deadline:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, 3.0)
        return Result([self._busy_reply(incoming)]), "busy"

    def _slow_down_reply(self, incoming: Incoming) -> Reply:
        with use_locale(incoming.locale or self.config.default_locale):
            return Reply(
                _(
                    "You are sending messages too fast, so some of them were not read. Please "
                    "wait a few seconds, then send your answer again."
                )
            )

    def _turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return self._turns if self._turns is not None else contextlib.nullcontext()

    def _busy_reply(self, incoming: Incoming) -> Reply:
        with use_locale(incoming.locale or self.config.default_locale):
            return Reply(_("The system is busy, please try again in a moment."))

    async def _handle(self, session: AsyncSession, incoming: Incoming) -> Result:
        keep_loaded(session)
        identity, conv, first_contact = await self._identity(session, incoming)
        if conv is None:
            # Written with its first state at the end (an insert, not an insert and an update).
            conv = _Saved(None, None, None, {}, 0)
        version = conv.version
        state: dict[str, Any] = dict(conv.data or {})
        state.setdefault("draft", {})
        if incoming.event_id is not None:
            seen: list[str] = list(state.get("seen", []))
            if incoming.event_id in seen:
                log.info("event %s of %s seen before: ignored", incoming.event_id, identity.id)
                return Result()
            state["seen"] = [*seen, incoming.event_id][-MAX_SEEN:]
        now = self.config.now() if self.config.now else utcnow()
        ctx = Ctx(
            session=session,
            config=self.config,
            identity=identity,
            person=identity.person,
            incoming=incoming,
            now=now,
            data=state["draft"],
            first_contact=first_contact,
        )
        locale = ctx.locale if identity.person else (incoming.locale or self.config.default_locale)
        with use_locale(locale):
            flow, step = await self._process(ctx, conv.flow, conv.step, state)
        state["draft"] = ctx.data
        queue_outgoing(session, ctx.others)
        saved = _Saved(conv.id, flow, step, state, version)
        await session.run_sync(_save_and_commit, identity.id, saved, now)
        return Result(
            replies=ctx.said, others=ctx.others, locale=locale, press_taken=not ctx.press_refused
        )

    async def _identity(
        self, session: AsyncSession, incoming: Incoming
    ) -> tuple[ChannelIdentity, _Saved | None, bool]:
        """The identity with its person and unit, its conversation, and whether the identity
        is new (created by this update: the first message from this address).

        One statement (joins), not one per relationship: it runs for every update, and each
        statement costs more CPU in the ORM than in the database (bench/conversation.py).
        It also reads the version of the reference data, which this unit of work then
        takes from the process's cache (storage.refcache) instead of selecting it again.
        """
        address = incoming.address
        loaded = await session.run_sync(_load, address.channel, address.external_id)
        if loaded is not None:
            identity, conversation, reference = loaded
            use_version(session, reference)
            return identity, conversation, False
        # Platforms do not bound display names (Zalo): cleaned and cut to the column.
        display_name = clean(incoming.display_name or "")[:200] or None
        identity = ChannelIdentity(
            channel=incoming.address.channel,
            external_id=incoming.address.external_id,
            display_name=display_name,
            # Known to be nobody yet: set, so reading it later needs no lazy load.
            person=None,
        )
        session.add(identity)
        await session.flush()
        return identity, None, True

    # --- one update --------------------------------------------------------------------

    async def _process(
        self, ctx: Ctx, flow_name: str | None, step_name: str | None, state: dict[str, Any]
    ) -> tuple[str, str]:
        runner = _Turn(self, ctx, state, flow_name, step_name)
        await runner.run()
        return runner.flow_name, runner.step_name


@dataclass(frozen=True, slots=True)
class _Saved:
    """The conversation as read: a plain row, the ORM keeps no copy of it."""

    id: int | None  # None: no conversation yet (inserted at the end of the update)
    flow: str | None
    step: str | None
    data: dict[str, Any] | None
    version: int


class _Turn:
    """The processing of one update; holds the moving parts so the steps read simply."""

    def __init__(
        self,
        engine: Engine,
        ctx: Ctx,
        state: dict[str, Any],
        flow_name: str | None,
        step_name: str | None,
    ) -> None:
        self.engine = engine
        self.ctx = ctx
        self.state = state
        self.flow_name = flow_name or ""
        self.step_name = step_name or ""
        ctx.flow = self.flow_name

    @property
    def flow(self) -> Flow:
        return self.engine.flows[self.flow_name]

    @property
    def history(self) -> list[str]:
        return self.state.setdefault("history", [])

    async def run(self) -> None:
        incoming = self.ctx.incoming
        text = clean(incoming.text or "", multiline=True) if incoming.text else None
        if text is not None and len(text) > MAX_TEXT:
            text = text[:MAX_TEXT]

        if incoming.unreadable:
            # Said in the bot's voice, and the pending question comes again below it.
            self.ctx.say(_("Sorry, I can only read typed text here. Please type your answer."))
            await self._reask()
            return
        if text and text.startswith("/"):
            await self._command(text)
            return
        if incoming.choice_id and incoming.choice_id.startswith(ACTION_PREFIX):
            await self._action(incoming.choice_id[1:])
            return
        if self.flow_name not in self.engine.flows or not self.step_name:
            await self._start_fresh()
            return
        if self.ctx.person is None and self.flow.needs_person:
            # The chat lost its person in the middle of a flow (another chat of the same
            # channel took the person over): the flow's steps need one, so it starts over.
            await self._start_fresh()
            return
        prompt = self.state.get("prompt")
        if prompt is None:
            await self._ask_again()
            return
        answer = self._match(prompt, text)
        if answer is None:
            return
        if isinstance(answer, str):  # navigation
            await self._navigate(answer)
            return
        step = self.flow.step(self.step_name)
        go = await step.answer(self.ctx, answer)
        await self._apply(go)

    async def _start_fresh(self) -> None:
        if self.ctx.person is None:
            await self._apply(Switch("onboarding"))
        else:
            await self._apply(Finish())

    async def _command(self, text: str) -> None:
        name, _sep, arg = text[1:].partition(" ")
        name = name.split("@", 1)[0].lower()
        handler = self.engine.commands.get(name)
        if handler is None and name in self.engine.actions:
            # Channels without buttons show a notification's buttons as "/name arg".
            await self._action(f"{name}:{arg.strip()}")
            return
        if handler is None:
            self.ctx.say(
                _("I do not know the command /{name}. Type /trogiup to see what I can do.").format(
                    name=name[:30]
                )
            )
            await self._reask()
            return
        go = await handler(self.ctx, arg.strip())
        if go is None:
            await self._reask()
        else:
            await self._apply(go)

    async def _action(self, spec: str) -> None:
        name, _sep, arg = spec.partition(":")
        handler = self.engine.actions.get(name)
        if handler is None or self.ctx.person is None:
            self.ctx.press_refused = True
            self.ctx.say(_("This button is no longer valid."))
            # A refusal repeats the pending question, so the person is not left stranded.
            await self._reask()
            return
        go = await handler(self.ctx, arg)
        if go is not None:
            await self._apply(go)

    async def _reask(self) -> None:
        if self.flow_name in self.engine.flows and self.step_name:
            await self._ask_again()
        else:
            await self._start_fresh()

    def _match(self, prompt: dict[str, Any], text: str | None) -> Answer | str | None:
        """Turn the input into an Answer, a navigation id, or None after a re-ask."""
        incoming = self.ctx.incoming
        choices: list[dict[str, Any]] = prompt["choices"]
        nav = [n["id"] for n in prompt["nav"]]
        kind = prompt["kind"]

        if incoming.choice_id is not None:
            if incoming.seq != prompt["seq"]:
                self.ctx.press_refused = True
                self.ctx.say(_("That button belongs to an earlier question. Here is where we are:"))
                self._resend(prompt)
                return None
            if incoming.choice_id in nav:
                return incoming.choice_id
            if any(c["id"] == incoming.choice_id for c in choices):
                return Answer(choice=incoming.choice_id)
            self.ctx.press_refused = True
            self._resend(prompt)
            return None

        if incoming.contact_phone is not None:
            if kind == InputKind.PHONE:
                return Answer(
                    contact_phone=incoming.contact_phone,
                    contact_is_own=incoming.contact_is_own,
                    value=incoming.contact_phone,
                )
            self._wrong(prompt)
            return None

        if incoming.file is not None:
            if kind == InputKind.FILE:
                return Answer(file=incoming.file)
            self._wrong(prompt)
            return None

        if not text:
            self._wrong(prompt)
            return None

        folded = fold(text)
        for item in prompt["nav"]:
            # The label itself ("« Quay lại") counts too: keyboards without callbacks send it.
            if folded in _NAV_WORDS[item["id"]] or folded == fold(item["label"]):
                return str(item["id"])
        if choices:
            chosen = match_choice(text, choices)
            if chosen is not None:
                return Answer(choice=chosen, text=text)
            if kind == InputKind.CHOICE:
                self._wrong(prompt)
                return None
        try:
            value: Any = text
            if kind == InputKind.DATE:
                value = parse_date(text, default_year=self.ctx.today.year)
            elif kind == InputKind.MONEY:
                value = parse_money(text)
            elif kind == InputKind.PHONE:
                value = parse_phone(text)
            elif kind == InputKind.NUMBER:
                digits = text.replace(".", "").replace(" ", "")
                if not digits.isdecimal():
                    raise Invalid("not_a_number")
                value = int(digits)
            elif kind == InputKind.FILE:
                raise Invalid("not_a_file")
        except Invalid:
            self._wrong(prompt)
            return None
        return Answer(text=text, value=value)

    def _wrong(self, prompt: dict[str, Any]) -> None:
        hint = kind_hint(prompt["kind"], buttons=self.ctx.shows_buttons)
        self.ctx.say(_("Sorry, that does not fit.") + " " + hint)
        self._resend(prompt)

    def _resend(self, prompt: dict[str, Any]) -> None:
        """Show the last prompt again exactly as it was (same seq, same buttons)."""
        choices = tuple(
            Choice(c["id"], c.get("full") or c["label"], tuple(c.get("aliases", ())))
            for c in prompt["choices"]
        )
        nav = tuple(Choice(n["id"], n["label"]) for n in prompt["nav"])
        self.ctx.said.append(
            Reply(
                text=prompt["text"],
                choices=choices + nav,
                request_contact=prompt.get("request_contact", False),
                seq=prompt["seq"],
                one_per_row=prompt.get("one_per_row", True),
            )
        )

    async def _navigate(self, nav_id: str) -> None:
        if nav_id == SKIP:
            step = self.flow.step(self.step_name)
            await self._apply(await step.answer(self.ctx, Answer(skipped=True)))
        elif nav_id == BACK:
            if self.history:
                self.step_name = self.history.pop()
                self.state.pop("return_to", None)
                await self._ask_again()
            else:
                await self._cancel()
        elif len(self.history) >= CONFIRM_CANCEL_AFTER and self.state.get("cancel_at") != (
            self.state.get("prompt") or {}
        ).get("seq"):
            # "✖ Hủy" on a form with answers asks once: a slip must not lose a half-typed
            # initiative. Tapped again at the same question, it cancels.
            prompt = self.state["prompt"]
            self.state["cancel_at"] = prompt["seq"]
            ask = (
                _(
                    "Drop the {n} answers you gave? Tap ✖ Cancel again to drop them, or answer "
                    "the question to go on."
                )
                if self.ctx.shows_buttons
                else _(
                    "Drop the {n} answers you gave? Type “{cancel}” again to drop them, or "
                    "answer the question to go on."
                )
            )
            cancel = _("✖ Cancel").strip("✖ ")
            self.ctx.say(ask.format(n=len(self.history), cancel=cancel))
            self._resend(prompt)
        else:
            await self._cancel()

    async def _cancel(self) -> None:
        if self.ctx.person is None:
            self.ctx.say(_("Let us start again."))
            await self._apply(Switch("onboarding"))
            return
        if self.flow_name != MENU_FLOW:
            self.ctx.say(_("Cancelled. Nothing was saved from this step on."))
        await self._apply(Finish())

    async def _ask_again(self) -> None:
        """Ask the current step again (after Back, a command, a lost prompt). A step that no
        longer applies (the unit was lost, a campaign closed) answers with a transition, which
        is followed: otherwise the stored prompt would belong to another step."""
        go = await self._ask()
        if go is not None:
            await self._apply(go, shown=False)

    async def _apply(self, go: Go, shown: bool = True) -> None:
        # A step whose ``ask`` moved on by itself was never shown: "Back" must not land on it.
        for _hop in range(MAX_HOPS):
            if isinstance(go, Cancel):
                await self._cancel()
                return
            if isinstance(go, Again):
                self.ctx.say(go.reason)
            elif isinstance(go, Next):
                return_to = self.state.pop("return_to", None)
                target = go.step
                if return_to and not go.edit_chain:
                    target = return_to
                    # The summary was reached before: going back from it returns to the
                    # step before the summary, not to the edited field.
                    if self.history and self.history[-1] == target:
                        self.history.pop()
                elif return_to:
                    self.state["return_to"] = return_to
                if target != self.step_name and shown:
                    self.history.append(self.step_name)
                    del self.history[:-MAX_HISTORY]
                self.step_name = target
            elif isinstance(go, Edit):
                self.state["return_to"] = self.step_name
                if shown:
                    self.history.append(self.step_name)
                self.step_name = go.step
            elif isinstance(go, Switch):
                self.flow_name = go.flow
                self.step_name = go.step or self.flow.first
                self.state["history"] = []
                self.state.pop("return_to", None)
                self.ctx.data.clear()
                self.ctx.data.update(go.data)
            elif isinstance(go, Finish):
                self.flow_name = MENU_FLOW
                self.step_name = self.flow.first
                self.state["history"] = []
                self.state.pop("return_to", None)
                self.ctx.data.clear()
                if not go.show_menu:
                    self.state.pop("prompt", None)
                    return
            asked = await self._ask()
            if asked is None:
                return
            go, shown = asked, False
        raise RuntimeError(f"flow {self.flow_name} keeps moving without asking")

    async def _ask(self) -> Go | None:
        """Ask the current step; a step that does not apply answers with a transition."""
        step = self.flow.step(self.step_name)
        prompt = await step.ask(self.ctx)
        if not isinstance(prompt, Prompt):
            return prompt
        seq = int(self.state.get("seq", 0)) + 1
        self.state["seq"] = seq
        can_back = bool(self.history) or self.flow_name != MENU_FLOW
        nav = nav_choices(prompt, can_back)
        self.state["prompt"] = {
            "seq": seq,
            "text": prompt.text,
            "kind": str(prompt.kind),
            "choices": [stored_choice(c) for c in prompt.choices],
            "nav": [{"id": c.id, "label": c.label} for c in nav],
            "request_contact": prompt.request_contact,
            "one_per_row": prompt.one_per_row,
        }
        self.ctx.said.append(
            Reply(
                text=prompt.text,
                choices=prompt.choices + nav,
                request_contact=prompt.request_contact,
                seq=seq,
                one_per_row=prompt.one_per_row,
            )
        )
        return None
