"""The session's own ORM instances from columns read by a plain (Core) statement.

The conversation engine reads an identity, its person and their unit on every update. The
ORM's loading (row processors, eager-load paths, the identity map's bookkeeping) cost more
CPU than the statement itself (bench/steps.py); reading the columns with Core and making the
instances here costs a fraction. The instances are what a query would have given: persistent
in the session, every column loaded, nothing marked changed, so a flow reads and writes them
as usual (a write is flushed at the commit).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Column, Table, event, inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper, Session, make_transient_to_detached

T = TypeVar("T")


class Columns:
    """A mapped class's table columns, in order, with the attribute name of each."""

    def __init__(self, cls: type[Any]) -> None:
        self.cls = cls
        self.mapper: Mapper[Any] = inspect(cls)
        table = cast(Table, self.mapper.local_table)
        self.columns: list[Column[Any]] = list(table.c)
        self.keys = [self.mapper.get_property_by_column(c).key for c in self.columns]
        self.primary_key = self.keys.index(self.mapper.primary_key[0].key)

    def __len__(self) -> int:
        return len(self.columns)

    def instance(self, session: Session, values: Sequence[Any], **related: Any) -> Any:
        """The persistent instance of these column values (None for a row of NULLs: the
        outer join found nothing), its ``related`` relationships set as loaded."""
        if values[self.primary_key] is None:
            return None
        obj = self.mapper.class_manager.new_instance()
        obj.__dict__.update(zip(self.keys, values, strict=True))
        for name, value in related.items():
            obj.__dict__[name] = value
        # Loaded as from a query: no history, then attached to the session as persistent.
        make_transient_to_detached(obj)
        session.add(obj)
        return obj


# Where a session keeps what it loaded (see keep_loaded).
_KEPT = "thidua_kept"


def keep_loaded(session: AsyncSession) -> None:
    """Hold every instance this session loads until the session ends.

    The identity map holds instances weakly: a step that looks up the person its answer just
    found (``session.get``) selected them again once the answer had let go of them. A
    conversation's unit of work loads a few instances; commands that stream many rows do not
    call this.
    """
    session.info[_KEPT] = []


@event.listens_for(Session, "loaded_as_persistent")
def _keep(session: Session, instance: Any) -> None:
    kept = session.info.get(_KEPT)
    if kept is not None:
        kept.append(instance)
