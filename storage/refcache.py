"""Reference data read once per process, not once per update: titles, campaigns, units, roles,
and which units an approved list stops (the lists change a few times a campaign).

A conversation's unit of work used to select the campaign, its phases, the titles and the
person's roles again on every answer: most of its statements, for data that changes a few
times a year. Here they are kept per process and per database, and dropped when they change:

* every write of a reference table through a session (an ORM flush, or an insert / update /
  delete statement run by the session) bumps the one row of ``reference_version`` in the
  same transaction (the session events below, registered once, for every session);
* the conversation engine reads that version in the statement that loads the identity (no
  statement of its own) and hands it to :func:`use_version`; the cache compares it with the
  version its contents were read at and starts afresh when they differ.

Only sessions that were given a version use the cache (the engine's units of work); the
commands, the scheduler and tests read the tables as before. A session that writes reference
data stops using the cache for the rest of its transaction, so it reads its own writes.

Titles and campaigns (with their phases) are handed out as kept: detached, shared by the
units of work of the process, read-only by convention. Every question of a registration reads
them, no conversation changes one, and no object a conversation makes is given one through a
relationship (they carry its id), so none is ever attached to a session; merging each into
the asking session cost more CPU than the rest of an ordinary answer's Python
(bench/steps.py). A campaign's deferred plan document is read by its id where it is sent
(handlers.flows.campaign_info). Units and roles are merged into the asking session without a
load (``Session.merge(load=False)``): flows follow their relationships and give them to the
objects they make, so the caller gets an ordinary instance of its own session.

Writes outside any session (a bare connection, SQL by hand) are not seen: restart the bots
after such a change, or make it through a session.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import bindparam, event, inspect, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session, selectinload

from storage.models import (
    Campaign,
    CampaignPhase,
    ReferenceVersion,
    Role,
    Title,
    Unit,
    UnitRole,
    UnitSubmission,
)

T = TypeVar("T")

# Unit lists (submissions) are not kept, but whether an approved one stops changes in a unit
# is: every answer that starts a registration asks it, and it changes a few times a campaign.
REFERENCE_MODELS = (Title, Campaign, CampaignPhase, Unit, UnitRole, UnitSubmission)
REFERENCE_TABLES = frozenset(m.__tablename__ for m in REFERENCE_MODELS)
# Columns written on every registration (the receipt counter): not reference data.
_NOT_REFERENCE_COLUMNS = frozenset({"receipt_seq", "updated_at"})
# Where a session keeps the version its unit of work read (None: do not use the cache).
VERSION_KEY = "thidua_reference_version"
# Bounds of what one process keeps (the units people are in lately, their roles): at most
# ~7 MB of units (1.4 kB each) and ~5 MB of roles, next to ~170 MB of a bot process.
MAX_UNITS = 5_000
MAX_PEOPLE = 50_000

# The version, read in the same statement as something else (the engine's identity select).
VERSION_SUBQUERY = (
    select(ReferenceVersion.version).where(ReferenceVersion.id == 1).scalar_subquery()
)
_BUMP = (
    update(ReferenceVersion)
    .where(ReferenceVersion.id == 1)
    .values(version=ReferenceVersion.version + 1)
)


class _Bounded(OrderedDict[Any, Any]):
    """A dict that forgets its oldest entries past ``bound`` (read again when asked)."""

    def __init__(self, bound: int) -> None:
        super().__init__()
        self.bound = bound

    def put(self, key: Any, value: Any) -> None:
        self[key] = value
        if len(self) > self.bound:
            self.popitem(last=False)


class ReferenceCache:
    """What one process knows of one database's reference data, at one version."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.titles: dict[str, Title] | None = None  # the whole catalogue, active or not
        self.campaigns: dict[int, Campaign | None] = {}
        # (issuer unit ids, from year) -> ids of the campaigns, in deadline order
        self.campaigns_of: _Bounded = _Bounded(MAX_UNITS)
        self.units: _Bounded = _Bounded(MAX_UNITS)
        # person id -> [(role, unit id)], the person's roles
        self.roles: _Bounded = _Bounded(MAX_PEOPLE)
        # Values computed from reference data alone (a campaign's title names), by key.
        self.derived: _Bounded = _Bounded(MAX_UNITS)
        # (campaign id, unit id) known to have no approved list covering the unit.
        self.unlocked: _Bounded = _Bounded(MAX_PEOPLE)

    def at(self, version: int) -> bool:
        """Whether this cache serves ``version`` (starting afresh on a newer one)."""
        if self.version == version:
            return True
        if self.version is not None and version < self.version:
            return False  # a unit of work that began before the change: read the tables
        self.__init__()  # type: ignore[misc]
        self.version = version
        return True


_caches: weakref.WeakKeyDictionary[Engine, ReferenceCache] = weakref.WeakKeyDictionary()


def use_version(session: AsyncSession, version: int | None) -> None:
    """Let this session's unit of work use the cache, at the version it read."""
    session.info[VERSION_KEY] = version


def _cache(session: AsyncSession) -> ReferenceCache | None:
    version = session.info.get(VERSION_KEY)
    if version is None:
        return None
    if _pending_reference(session.sync_session):
        # Written in this unit of work, not flushed yet (a role an invite grants): read the
        # tables, whose query flushes first, which bumps the version and ends the cache's use.
        return None
    bind = session.bind
    engine = getattr(bind, "sync_engine", None)
    if engine is None:
        return None
    cache = _caches.get(engine)
    if cache is None:
        cache = _caches[engine] = ReferenceCache()
    return cache if cache.at(version) else None


def _merged(session: AsyncSession, rows: Iterable[T]) -> list[T]:
    """The session's own instances of cached rows: merged without a load, once per session
    (a row asked for again in the same unit of work is the instance merged before)."""
    sync = session.sync_session
    known = sync.identity_map
    out = []
    for row in rows:
        key = inspect(row).key
        mine = known.get(key) if key is not None else None
        out.append(mine if mine is not None else sync.merge(row, load=False))
    return out


# --- the reads -------------------------------------------------------------------------------


async def titles_by_code(session: AsyncSession, codes: Sequence[str]) -> dict[str, Title]:
    """Active titles of the catalogue by code (storage.repo.titles_by_code)."""
    if not codes:
        return {}
    cache = _cache(session)
    if cache is None:
        rows = await session.scalars(select(Title).where(Title.code.in_(codes), Title.active))
        return {t.code: t for t in rows}
    if cache.titles is None:
        cache.titles = {t.code: t for t in await _detached(session, select(Title))}
    # Handed out as kept (detached), not merged: every question of a registration names its
    # titles, nothing leads to a title (no relationship) and no conversation changes one.
    found = (cache.titles[c] for c in dict.fromkeys(codes) if c in cache.titles)
    return {t.code: t for t in found if t.active}


def _campaign_query(campaign_id: int) -> Any:
    return select(Campaign).where(Campaign.id == campaign_id).options(selectinload(Campaign.phases))


async def campaign_by_id(session: AsyncSession, campaign_id: int) -> Campaign | None:
    """A campaign with its phases (storage.repo.campaign_by_id); from the cache, detached and
    shared: read it, do not change it."""
    cache = _cache(session)
    if cache is None:
        return await session.scalar(_campaign_query(campaign_id))
    if campaign_id not in cache.campaigns:
        rows = await _detached(session, _campaign_query(campaign_id))
        cache.campaigns[campaign_id] = rows[0] if rows else None
    # Handed out as kept (see the module's docstring), not merged.
    return cast(Campaign | None, cache.campaigns[campaign_id])


async def units_by_ids(session: AsyncSession, ids: Sequence[int]) -> dict[int, Unit]:
    """Units by id, those that exist (storage.repo.units_by_ids)."""
    if not ids:
        return {}
    cache = _cache(session)
    if cache is None:
        rows = await session.scalars(select(Unit).where(Unit.id.in_(ids)))
        return {u.id: u for u in rows}
    await _load_units(session, cache, ids)
    found = [cache.units[i] for i in dict.fromkeys(ids) if i in cache.units]
    return {u.id: u for u in _merged(session, found)}


async def _load_units(session: AsyncSession, cache: ReferenceCache, ids: Iterable[int]) -> None:
    missing = [i for i in dict.fromkeys(ids) if i not in cache.units]
    if missing:
        for unit in await _detached(session, select(Unit).where(Unit.id.in_(missing))):
            cache.units.put(unit.id, unit)


def _issued_query(issuer_ids: Sequence[int], from_year: int) -> Any:
    return (
        select(Campaign)
        .where(Campaign.issuer_unit_id.in_(issuer_ids), Campaign.year >= from_year)
        .options(selectinload(Campaign.phases))
        .order_by(Campaign.registration_deadline, Campaign.id)
    )


async def campaigns_issued_by(
    session: AsyncSession, issuer_ids: Sequence[int], from_year: int
) -> list[Campaign]:
    """Campaigns (with phases) of these issuers from ``from_year`` on, by deadline; from the
    cache, detached and shared: read them, do not change them."""
    cache = _cache(session)
    if cache is None:
        return list(await session.scalars(_issued_query(issuer_ids, from_year)))
    key = (tuple(issuer_ids), from_year)
    ids: list[int] | None = cache.campaigns_of.get(key)
    if ids is None:
        rows = await _detached(session, _issued_query(issuer_ids, from_year))
        for campaign in rows:
            cache.campaigns[campaign.id] = campaign
        ids = [c.id for c in rows]
        cache.campaigns_of.put(key, ids)
    found = [cache.campaigns.get(i) for i in ids]
    if any(c is None for c in found):  # dropped meanwhile: read them again
        cache.campaigns_of.pop(key, None)
        return await campaigns_issued_by(session, issuer_ids, from_year)
    return [c for c in found if c is not None]


# A person's roles but membership, in the order of their units' names (built once).
_ROLES = (
    select(UnitRole.role, UnitRole.unit_id)
    .join(Unit, Unit.id == UnitRole.unit_id)
    .where(UnitRole.person_id == bindparam("person_id"), UnitRole.role != Role.MEMBER)
    .order_by(Unit.name, Unit.id)
)


async def units_with_role(session: AsyncSession, person_id: int, role: str) -> list[Unit]:
    """Units in which the person has ``role``, by name (storage.units.units_with_role).

    Leader and officer roles are kept; membership (granted at every sign-up, read rarely)
    is always read from the table and does not empty the cache when granted.
    """
    cache = _cache(session) if role != Role.MEMBER else None
    if cache is None:
        rows = await session.scalars(
            select(Unit)
            .join(UnitRole, UnitRole.unit_id == Unit.id)
            .where(UnitRole.person_id == person_id, UnitRole.role == role)
            .order_by(Unit.name, Unit.id)
        )
        return list(rows)
    roles: list[tuple[str, int]] | None = cache.roles.get(person_id)
    if roles is None:
        # In the database's order of the unit names, as the query above.
        found = await session.execute(_ROLES, {"person_id": person_id})
        roles = [(r, u) for r, u in found]
        cache.roles.put(person_id, roles)
    ids = [unit_id for r, unit_id in roles if r == role]
    await _load_units(session, cache, ids)
    return _merged(session, [cache.units[i] for i in ids if i in cache.units])


def note_roles(session: AsyncSession, person_id: int, has_roles: bool) -> None:
    """What the caller read with the person (storage.claims.person_and_other_chat), or knows
    of a person it has just created: someone without any role but membership needs no
    statement of their own at the menu (units_with_role). A role granted later in the same
    unit of work is reference data: it bumps the version, which drops this."""
    cache = _cache(session)
    if cache is not None and not has_roles and person_id not in cache.roles:
        cache.roles.put(person_id, [])


async def derived(session: AsyncSession, key: Hashable, compute: Callable[[], Awaitable[T]]) -> T:
    """A value computed from reference data alone (storage.campaigns.title_names), kept with
    the cache and dropped with it. The caller must not change what it is given."""
    cache = _cache(session)
    if cache is None:
        return await compute()
    if key not in cache.derived:
        value = await compute()
        cache = _cache(session)  # the computing may have flushed a reference write
        if cache is None:
            return value
        cache.derived.put(key, value)
    return cast(T, cache.derived[key])


async def approved_list_absent(
    session: AsyncSession, campaign_id: int, unit_id: int, covering: Callable[[], Awaitable[T]]
) -> T | None:
    """``covering()`` (the approved list, or its unit, that stops changes in ``unit_id``), or
    None without a statement when the cache knows there is none (most units, most days)."""
    cache = _cache(session)
    key = (campaign_id, unit_id)
    if cache is not None and key in cache.unlocked:
        return None
    found = await covering()
    if found is None and cache is not None and _cache(session) is cache:
        cache.unlocked.put(key, True)
    return found


async def _detached(session: AsyncSession, query: Any) -> list[Any]:
    """Rows for the cache, read in the session's transaction by a session of their own: the
    asking session's instances (maybe changed, maybe in use) are left alone."""

    def load(sync: Session) -> list[Any]:
        with Session(bind=sync.connection()) as side:
            rows = list(side.scalars(query).unique())
            side.expunge_all()
        return rows

    return await session.run_sync(load)


# --- the writes: the version is bumped by every session that changes reference data ----------


def _bump(session: Session) -> None:
    session.connection().execute(_BUMP)
    session.info[VERSION_KEY] = None  # read its own writes from the tables from now on


def _pending_reference(session: Session) -> bool:
    new = (obj for obj in session.new if not _membership(obj))
    return any(
        isinstance(obj, REFERENCE_MODELS) for obj in (*new, *session.deleted, *session.dirty)
    )


def _membership(obj: object) -> bool:
    """A new member role: granted at every sign-up, never kept (see units_with_role)."""
    return isinstance(obj, UnitRole) and obj.role == Role.MEMBER


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get("thidua_bumped") is session.get_transaction():
        return
    if _pending_reference(session):
        _bump(session)
        session.info["thidua_bumped"] = session.get_transaction()


@event.listens_for(Session, "do_orm_execute")
def _on_statement(state: ORMExecuteState) -> None:
    if state.is_select or not (state.is_insert or state.is_update or state.is_delete):
        return
    table = getattr(state.statement, "table", None)
    if getattr(table, "name", None) not in REFERENCE_TABLES:
        return
    values = getattr(state.statement, "_values", None) or {}
    written = {getattr(key, "key", key) for key in values}
    if state.is_update and written and written <= _NOT_REFERENCE_COLUMNS:
        return
    session = state.session
    if session.info.get("thidua_bumped") is session.get_transaction():
        return
    _bump(session)
    session.info["thidua_bumped"] = session.get_transaction()
