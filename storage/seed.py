"""The title catalogue seed (storage/seed/titles.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from storage.db import make_sessionmaker, upgrade
from storage.models import Title

SEED_DIR = Path(__file__).resolve().parent / "seed"


def catalogue_entries() -> list[dict[str, Any]]:
    with (SEED_DIR / "titles.yaml").open(encoding="utf-8") as fh:
        entries: list[dict[str, Any]] = yaml.safe_load(fh)
    return entries


def seed_rules(entry: dict[str, Any]) -> dict[str, Any]:
    """A catalogue entry's rules as stored in ``titles.rules``.

    The entry's ``kind`` (title or award), ``awarded_by_issuer`` and ``options`` (rules off
    unless a campaign turns them on) travel with the rules: the table has one JSON column
    for everything handlers.rules reads.
    """
    rules = dict(entry.get("rules") or {})
    for key in ("kind", "awarded_by_issuer", "options"):
        if key in entry:
            rules[key] = entry[key]
    return rules


async def seed_titles(session: AsyncSession) -> int:
    """Add catalogue entries that are missing; rows already there (maybe edited) stay."""
    known = set(await session.scalars(select(Title.code)))
    added = 0
    for entry in catalogue_entries():
        if entry["code"] in known:
            continue
        session.add(
            Title(
                code=entry["code"],
                name=entry["name"],
                abbreviation=entry.get("abbreviation"),
                target=entry["target"],
                level=entry["level"],
                rank=entry.get("rank", 100),
                rules=seed_rules(entry),
            )
        )
        added += 1
    return added


async def prepare_database(engine: AsyncEngine) -> None:
    """Schema to the newest revision, then the catalogue seed: what `thidua db upgrade` does."""
    await upgrade(engine)
    async with make_sessionmaker(engine)() as session, session.begin():
        await seed_titles(session)
