"""Load an emulation campaign (phát động phong trào thi đua) from its YAML description.

The file is the officer's plan: code, name, issuing unit, year, registration deadline,
phases and the titles open for registration, plus free sections (occasions, per-title rule
overrides, reminders, digest, announcement) that other parts of the bot read from
``Campaign.settings``. Loading the same file again updates the campaign in place.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from storage.broadcasts import announcement_problems, schedule_campaign_announcement
from storage.models import AuditEntry, Campaign, CampaignPhase, Title, Unit
from storage.normalize import Invalid, parse_date
from storage.schedule import schedule_problems
from storage.types import utcnow


class CampaignInvalid(Exception):
    """The campaign file cannot be loaded; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


def _as_date(value: Any) -> date:
    """YAML gives dates for 2027-01-25; officers also write "25/01/2027" in quotes."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return parse_date(value)
        except Invalid:
            pass
    raise ValueError(f"{value!r} is not a date (write it as 2027-01-25 or 25/01/2027)")


class PhaseSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)
    start: date
    end: date
    theme: str | None = None

    _dates = field_validator("start", "end", mode="before")(_as_date)

    @model_validator(mode="after")
    def _ordered(self) -> PhaseSpec:
        if self.end < self.start:
            raise ValueError(
                f"phase {self.name!r} ends ({self.end.isoformat()}) before it starts "
                f"({self.start.isoformat()})"
            )
        return self


class CampaignSpec(BaseModel):
    """The known keys of a campaign file; any other key is kept in ``settings``."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    code: str = Field(min_length=1, max_length=32)
    name: str = Field(min_length=1, max_length=300)
    issuer: str = Field(min_length=1, max_length=64)
    year: int = Field(ge=2000, le=2100)
    registration_deadline: date
    phases: list[PhaseSpec] = Field(default_factory=list)
    titles: list[str] = Field(min_length=1)

    _deadline = field_validator("registration_deadline", mode="before")(_as_date)

    @field_validator("code", "issuer", mode="before")
    @classmethod
    def _code_text(cls, value: Any) -> Any:
        # YAML reads "code: 2027" as a number; a code is text either way.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("code")
    @classmethod
    def _code_chars(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.\-]+", value):
            raise ValueError("use only letters, digits, '_', '-' and '.' (no spaces)")
        return value

    @field_validator("titles")
    @classmethod
    def _unique_titles(cls, value: list[str]) -> list[str]:
        repeated = sorted({t for t in value if value.count(t) > 1})
        if repeated:
            raise ValueError(f"listed more than once: {', '.join(repeated)}")
        return value

    @model_validator(mode="after")
    def _phases_consistent(self) -> CampaignSpec:
        names = [p.name for p in self.phases]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"phase name(s) used twice: {', '.join(repeated)}")
        ordered = sorted(self.phases, key=lambda p: p.start)
        for first, second in pairwise(ordered):
            if second.start <= first.end:
                raise ValueError(
                    f"phases {first.name!r} and {second.name!r} overlap "
                    f"({second.name!r} starts on {second.start.isoformat()}, before "
                    f"{first.name!r} ends on {first.end.isoformat()})"
                )
        return self


def _where(loc: tuple[int | str, ...]) -> str:
    """("phases", 1, "end") -> "phases[2].end": 1-based, as a person counts list items."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part + 1}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def _problems(error: ValidationError) -> list[str]:
    problems = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        where = _where(tuple(item["loc"]))
        if item["type"] == "missing":
            message = "is required"
        problems.append(f"{where}: {message}" if where else message)
    return problems


def _jsonable(value: Any) -> Any:
    """Settings go to a JSON column: YAML dates become ISO text, keys become text."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def read_campaign_file(path: str | Path) -> dict[str, Any]:
    """The YAML file as a mapping; :class:`CampaignInvalid` when it is not valid YAML."""
    text = Path(path).read_text(encoding="utf-8-sig")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise CampaignInvalid([f"not valid YAML{where}: {problem}"]) from exc
    if not isinstance(data, dict):
        raise CampaignInvalid(["the file must be a YAML mapping (code: ..., name: ..., ...)"])
    return data


async def load_campaign(
    session: AsyncSession, data: dict[str, Any], *, via: str = "import"
) -> Campaign:
    """Create or update the campaign described by ``data`` (a parsed campaign file).

    Upserts by ``code``; phases are replaced by those in the file. Raises
    :class:`CampaignInvalid` listing every problem (unknown issuer or titles, bad dates...)
    before anything is written. Does not commit.
    """
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignInvalid(_problems(exc)) from exc

    problems: list[str] = []
    issuer = await session.scalar(select(Unit).where(Unit.code == spec.issuer))
    if issuer is None:
        problems.append(f"issuer: unknown unit code {spec.issuer!r} (import the units first)")
    known = set(await session.scalars(select(Title.code)))
    unknown = [t for t in spec.titles if t not in known]
    if unknown:
        problems.append(
            f"titles: unknown title code(s) {', '.join(unknown)}; known codes: "
            + ", ".join(sorted(known))
        )
    extra = dict(spec.model_extra or {})
    rules = extra.get("rules")
    if rules is not None:
        if not isinstance(rules, dict) or not all(isinstance(v, dict) for v in rules.values()):
            problems.append(
                "rules: must map title codes to settings, e.g. {TTLDXS: {min_share_ldtt: 0.7}}"
            )
        else:
            stray = [str(code) for code in rules if code not in spec.titles]
            if stray:
                problems.append(
                    f"rules: title code(s) {', '.join(stray)} are not in this campaign's titles"
                )
    problems += schedule_problems(extra)
    problems += announcement_problems(extra)
    if spec.registration_deadline.year not in (spec.year - 1, spec.year, spec.year + 1):
        problems.append(
            f"registration_deadline: {spec.registration_deadline.isoformat()} is far from "
            f"the campaign year {spec.year}"
        )
    if problems:
        raise CampaignInvalid(problems)
    assert issuer is not None

    settings = _jsonable(extra)
    phases = [
        CampaignPhase(
            position=index,
            name=phase.name,
            starts_on=phase.start,
            ends_on=phase.end,
            theme=phase.theme,
        )
        for index, phase in enumerate(sorted(spec.phases, key=lambda p: p.start), start=1)
    ]
    campaign = await session.scalar(
        select(Campaign).where(Campaign.code == spec.code).options(selectinload(Campaign.phases))
    )
    created = campaign is None
    if campaign is None:
        campaign = Campaign(
            code=spec.code,
            name=spec.name,
            issuer_unit_id=issuer.id,
            year=spec.year,
            registration_deadline=spec.registration_deadline,
            title_codes=list(spec.titles),
            settings=settings,
            phases=phases,
        )
        session.add(campaign)
        details: dict[str, Any] = {
            "code": spec.code,
            "name": spec.name,
            "issuer": spec.issuer,
            "titles": list(spec.titles),
            "phases": len(phases),
        }
    else:
        before = _snapshot(campaign)
        campaign.name = spec.name
        campaign.issuer_unit_id = issuer.id
        campaign.year = spec.year
        campaign.registration_deadline = spec.registration_deadline
        campaign.title_codes = list(spec.titles)
        campaign.settings = settings
        # The old phases are deleted (delete-orphan) before the new ones are inserted.
        campaign.phases = []
        await session.flush()
        campaign.phases = phases
        after = _snapshot_from(spec, issuer.id, settings)
        details = {
            "code": spec.code,
            "changes": {k: [before[k], after[k]] for k in after if before[k] != after[k]},
        }
    await session.flush()
    session.add(
        AuditEntry(
            via=via,
            action="campaign.create" if created else "campaign.update",
            entity="campaign",
            entity_id=campaign.id,
            details=details,
        )
    )
    # The file's ``announcement:`` goes out at the campaign start (storage.broadcasts).
    await schedule_campaign_announcement(session, campaign, utcnow())
    return campaign


def _phases_json(rows: list[tuple[str, date, date, str | None]]) -> list[list[Any]]:
    return [[name, start.isoformat(), end.isoformat(), theme] for name, start, end, theme in rows]


def _snapshot(campaign: Campaign) -> dict[str, Any]:
    return {
        "name": campaign.name,
        "issuer_unit_id": campaign.issuer_unit_id,
        "year": campaign.year,
        "registration_deadline": campaign.registration_deadline.isoformat(),
        "title_codes": list(campaign.title_codes),
        "settings": campaign.settings,
        "phases": _phases_json(
            [(p.name, p.starts_on, p.ends_on, p.theme) for p in campaign.phases]
        ),
    }


def _snapshot_from(spec: CampaignSpec, issuer_id: int, settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": spec.name,
        "issuer_unit_id": issuer_id,
        "year": spec.year,
        "registration_deadline": spec.registration_deadline.isoformat(),
        "title_codes": list(spec.titles),
        "settings": settings,
        "phases": _phases_json(
            [(p.name, p.start, p.end, p.theme) for p in sorted(spec.phases, key=lambda p: p.start)]
        ),
    }


async def load_campaign_file(session: AsyncSession, path: str | Path) -> Campaign:
    """Read a campaign YAML file and load it (see :func:`load_campaign`)."""
    return await load_campaign(session, read_campaign_file(path))
