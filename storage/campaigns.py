"""Load an emulation campaign (phát động phong trào thi đua) from its YAML description.

The file is the officer's plan: code, name, issuing unit, year, registration deadline,
phases (with their themes and, for works, their own last day) and the titles open for
registration; what a launch plan says besides (the year's theme, the movements, targets per
title, dated occasions, award names of the issuing body, the plan document itself); plus
free sections (per-title rule overrides, reminders, digest, announcement) that other parts
of the bot read from ``Campaign.settings``. Loading the same file again updates the campaign
in place.
"""

from __future__ import annotations

import mimetypes
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
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

from storage import refcache
from storage.broadcasts import announcement_problems, schedule_campaign_announcement
from storage.models import AuditEntry, Campaign, CampaignPhase, Title, TitleTarget, Unit, UnitKind
from storage.normalize import Invalid, parse_date
from storage.schedule import schedule_problems
from storage.types import utcnow

# The plan document is kept in the database and sent in chats: Telegram bots send documents
# up to 50 MB; a launch plan is a few hundred kilobytes.
MAX_PLAN_DOCUMENT = 20 * 1024 * 1024
# What a target counts against: the members of the subtree, or its collectives.
TARGET_BASES = ("members", "collectives")


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
    theme: str | None = Field(default=None, max_length=1000)
    # The last day works of this phase can be registered, when not the phase's end.
    works_until: date | None = None

    _dates = field_validator("start", "end", mode="before")(_as_date)

    @field_validator("works_until", mode="before")
    @classmethod
    def _works_date(cls, value: Any) -> Any:
        return None if value is None else _as_date(value)

    @model_validator(mode="after")
    def _ordered(self) -> PhaseSpec:
        if self.end < self.start:
            raise ValueError(
                f"phase {self.name!r} ends ({self.end.isoformat()}) before it starts "
                f"({self.start.isoformat()})"
            )
        if self.works_until is not None and self.works_until < self.start:
            raise ValueError(
                f"phase {self.name!r}: works_until ({self.works_until.isoformat()}) is before "
                f"the phase starts ({self.start.isoformat()})"
            )
        return self


def _percent(value: Any) -> Decimal:
    """90, "90%", "90 %", "12,5%" or 0.9 -> Decimal("90"); a share of 1 or less is a fraction."""
    if isinstance(value, bool):
        raise ValueError("write the target as a percentage, e.g. 90%")
    text = str(value).strip().replace(",", ".")
    is_percent = text.endswith("%")
    try:
        number = Decimal(text.removesuffix("%").strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a percentage (write it as 90% or 0.9)") from None
    if not is_percent and number <= 1:
        number *= 100
    if not 0 < number <= 100:
        raise ValueError(f"{value!r} must be above 0% and at most 100%")
    return number.normalize()


class TargetSpec(BaseModel):
    """A target of the plan ("90 % tập thể đạt TTLĐXS"): a goal reported on, never a cap."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    share: Decimal
    # members or collectives; by default what the title is for (a title for both must say).
    of: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        # "LDTT: 100%" is the short form of "LDTT: {share: 100%}".
        return value if isinstance(value, dict) else {"share": value}

    @field_validator("share", mode="before")
    @classmethod
    def _share(cls, value: Any) -> Decimal:
        return _percent(value)

    @field_validator("of")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is not None and value not in TARGET_BASES:
            raise ValueError(f"must be one of {', '.join(TARGET_BASES)}")
        return value


class OccasionSpec(BaseModel):
    """An occasion works greet: a name and, best, its day ("28/07" is in the campaign year)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=300)
    date: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _short_form(cls, value: Any) -> Any:
        return value if isinstance(value, dict) else {"name": value}

    @field_validator("date", mode="before")
    @classmethod
    def _day_text(cls, value: Any) -> Any:
        # Resolved against the campaign year by CampaignSpec; a full date is kept as ISO.
        if isinstance(value, datetime):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return None if value is None else str(value)


def _occasion_day(text: str, year: int) -> date:
    """ "2027-07-28", "28/07/2027" or "28/07" (in the campaign year)."""
    day_month = re.fullmatch(r"\s*(\d{1,2})\s*[/.-]\s*(\d{1,2})\s*", text)
    if day_month:
        try:
            return date(year, int(day_month[2]), int(day_month[1]))
        except ValueError:
            pass
    return _as_date(text)


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
    # What a launch plan says besides (README, "Campaign file").
    theme: str | None = Field(default=None, max_length=1000)
    movements: list[str] = Field(default_factory=list)
    targets: dict[str, TargetSpec] = Field(default_factory=dict)
    occasions: list[OccasionSpec] = Field(default_factory=list)
    award_names: dict[str, str] = Field(default_factory=dict)
    plan_document: str | None = Field(default=None, min_length=1, max_length=500)

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

    @field_validator("movements")
    @classmethod
    def _movement_names(cls, value: list[str]) -> list[str]:
        names = [str(v).strip() for v in value]
        if any(not n or len(n) > 300 for n in names):
            raise ValueError("each movement is a name of 1 to 300 characters")
        return names

    @field_validator("award_names")
    @classmethod
    def _award_names(cls, value: dict[str, str]) -> dict[str, str]:
        names = {str(k): str(v).strip() for k, v in value.items()}
        empty = [k for k, v in names.items() if not v or len(v) > 300]
        if empty:
            raise ValueError(f"{', '.join(empty)}: a name of 1 to 300 characters")
        return names

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
        problems = []
        for index, occasion in enumerate(self.occasions, start=1):
            if occasion.date is None:
                continue
            try:
                occasion.date = _occasion_day(occasion.date, self.year).isoformat()
            except ValueError as exc:
                problems.append(f"occasions[{index}].date: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


# The rule values a campaign file may set (handlers.rules reads them; the catalogue,
# storage/seed/titles.yaml, has the defaults and their sources). ``true`` turns on an option
# of the catalogue with its value and source (``CSTDCS: {max_share_of_ldtt: true}``).
SHARE_RULES = ("min_share_ldtt", "over_share_ldtt", "max_share_of_ldtt")
AUTHOR_CATEGORIES = ("worker", "professional", "manager")


def _rule_problem(key: str, value: Any, known_titles: set[str]) -> str | None:
    """Why a campaign's rule value is wrong, or None."""
    if value is None or value is False:
        return None  # a rule turned off
    if key in SHARE_RULES:
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 1
        return None if ok else "a share between 0 and 1, e.g. 0.7 for 70 %"
    if key == "requires_titles":
        if not isinstance(value, list):
            return "a list of title codes, e.g. [TTLDTT], or true"
        unknown = [str(c) for c in value if c not in known_titles]
        return f"unknown title code(s) {', '.join(unknown)}" if unknown else None
    if key in ("requires_initiative", "names_collective"):
        return None if isinstance(value, bool) else "true or false"
    if key == "min_cstdcs":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return None if ok else "a whole number of people, e.g. 1"
    if key == "requires_history":
        ok = (
            isinstance(value, dict)
            and value.get("title") in known_titles
            and isinstance(value.get("times"), int)
            and value["times"] > 0
        )
        return None if ok else "{title: CODE, times: N}, e.g. {title: CSTDCS, times: 3}"
    if key == "min_benefit_by_category":
        ok = isinstance(value, dict) and all(
            k in AUTHOR_CATEGORIES and isinstance(v, int | float) and v > 0
            for k, v in value.items()
        )
        return None if ok else "amounts in đồng by worker, professional, manager"
    return "unknown rule; known: " + ", ".join(
        sorted(
            (
                *SHARE_RULES,
                "requires_titles",
                "requires_initiative",
                "names_collective",
                "min_cstdcs",
                "requires_history",
                "min_benefit_by_category",
            )
        )
    )


def rule_problems(rules: dict[str, Any], catalogue: dict[str, dict[str, Any]]) -> list[str]:
    """Every wrong value under ``rules:``, named by its place ("rules.TTLDXS.min_share_ldtt").

    ``catalogue`` maps title codes to their stored rules: ``true`` turns on one of the
    title's options (it takes the option's value and source), nothing else.
    """
    problems = []
    known_titles = set(catalogue)
    for code, values in rules.items():
        options = (catalogue.get(str(code)) or {}).get("options") or {}
        for key, value in values.items():
            if value is True and key in options:
                continue
            if value is True and key != "requires_initiative" and key != "names_collective":
                offered = ", ".join(sorted(options)) or "none"
                problems.append(
                    f"rules.{code}.{key}: true turns on an option of the catalogue; the options "
                    f"of {code} are: {offered}"
                )
                continue
            problem = _rule_problem(str(key), value, known_titles)
            if problem:
                problems.append(f"rules.{code}.{key}: {problem}")
    return problems


def issuer_award_name(catalogue_name: str, issuer: Unit | None) -> str:
    """ "Bằng khen của LĐLĐ tỉnh" as the issuer's own: "Bằng khen của Công đoàn ngành Giáo
    dục", "Cờ thi đua của LĐLĐ tỉnh Bắc Kạn". Bằng khen and Cờ belong to the awarding body
    (LĐLĐ tỉnh or công đoàn ngành), which is the campaign's issuer at that level."""
    marker = " của "
    if issuer is None or marker not in catalogue_name:
        return catalogue_name
    return catalogue_name.split(marker, 1)[0] + marker + issuer.name


async def title_names(session: AsyncSession, campaign: Campaign) -> dict[str, str]:
    """The names of this campaign's titles where they differ from the catalogue's: awards of
    the issuing body carry its name, and the file's ``award_names`` win over both.

    Reference data alone: a conversation's unit of work takes them from the process's cache
    (storage.refcache), as every question of a registration names its titles."""
    names = await refcache.derived(
        session, ("title_names", campaign.id), lambda: _title_names(session, campaign)
    )
    return dict(names)


async def _title_names(session: AsyncSession, campaign: Campaign) -> dict[str, str]:
    titles = await session.scalars(select(Title).where(Title.code.in_(campaign.title_codes)))
    awarded = [t for t in titles if (t.rules or {}).get("awarded_by_issuer")]
    awarding = await _awarding_body(session, campaign.issuer_unit_id) if awarded else None
    names = {t.code: issuer_award_name(t.name, awarding) for t in awarded}
    names.update((campaign.settings or {}).get("award_names") or {})
    return {code: name for code, name in names.items() if name}


async def _awarding_body(session: AsyncSession, unit_id: int) -> Unit | None:
    """The issuer, or its nearest ancestor at the province / industry-union level."""
    unit = await session.get(Unit, unit_id)
    while unit is not None and unit.kind not in (UnitKind.PROVINCE,):
        unit = await session.get(Unit, unit.parent_id) if unit.parent_id else None
    return unit


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
    session: AsyncSession,
    data: dict[str, Any],
    *,
    via: str = "import",
    base_dir: str | Path | None = None,
) -> Campaign:
    """Create or update the campaign described by ``data`` (a parsed campaign file).

    Upserts by ``code``; phases are replaced by those in the file. ``plan_document`` is a
    path relative to ``base_dir`` (the campaign file's folder; the working directory by
    default); the file is read into the database. Raises :class:`CampaignInvalid` listing
    every problem (unknown issuer or titles, bad dates...) before anything is written. Does
    not commit.
    """
    try:
        spec = CampaignSpec.model_validate(data)
    except ValidationError as exc:
        raise CampaignInvalid(_problems(exc)) from exc

    problems: list[str] = []
    issuer = await session.scalar(select(Unit).where(Unit.code == spec.issuer))
    if issuer is None:
        problems.append(f"issuer: unknown unit code {spec.issuer!r} (import the units first)")
    known = {
        str(code): str(target)
        for code, target in await session.execute(select(Title.code, Title.target))
    }
    catalogue = {
        code: rules or {} for code, rules in await session.execute(select(Title.code, Title.rules))
    }
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
            problems += rule_problems(rules, catalogue)
    for key in ("targets", "award_names"):
        stray = [code for code in getattr(spec, key) if code not in spec.titles]
        if stray:
            problems.append(
                f"{key}: title code(s) {', '.join(stray)} are not in this campaign's titles"
            )
    targets = _resolved_targets(spec, known, problems)
    plan = _plan_document(spec.plan_document, base_dir, problems)
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
    settings.update(_plan_settings(spec, targets))
    phases = [
        CampaignPhase(
            position=index,
            name=phase.name,
            starts_on=phase.start,
            ends_on=phase.end,
            theme=phase.theme,
            works_until=phase.works_until,
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
    # A file without plan_document drops the one loaded before.
    campaign.plan_file_name, campaign.plan_file_mime, campaign.plan_file_content = plan
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


def _resolved_targets(
    spec: CampaignSpec, title_targets: dict[str, str], problems: list[str]
) -> dict[str, dict[str, Any]]:
    """Each target with what it counts against: said in the file, or what the title is for."""
    resolved = {}
    for code, target in spec.targets.items():
        of = target.of
        if of is None:
            kind = title_targets.get(code)
            if kind == TitleTarget.INDIVIDUAL:
                of = "members"
            elif kind == TitleTarget.COLLECTIVE:
                of = "collectives"
            elif kind is not None:
                problems.append(
                    f"targets.{code}: the title is for individuals and collectives; say which "
                    "(of: members or of: collectives)"
                )
                continue
            else:
                continue  # an unknown title: already said
        resolved[code] = {"share": str(target.share), "of": of}
    return resolved


def _plan_document(
    path: str | None, base_dir: str | Path | None, problems: list[str]
) -> tuple[str | None, str | None, bytes | None]:
    """(file name, MIME type, content) of the plan document, or Nones without one."""
    if path is None:
        return None, None, None
    full = Path(base_dir or ".") / Path(path).expanduser()
    try:
        size = full.stat().st_size
        if not full.is_file():
            raise IsADirectoryError(path)
        if size > MAX_PLAN_DOCUMENT:
            problems.append(
                f"plan_document: {path} is {size // (1024 * 1024)} MB; at most "
                f"{MAX_PLAN_DOCUMENT // (1024 * 1024)} MB can be sent in a chat"
            )
            return None, None, None
        content = full.read_bytes()
    except OSError:
        problems.append(f"plan_document: cannot read the file {path} (looked for {full})")
        return None, None, None
    mime = mimetypes.guess_type(full.name)[0] or "application/octet-stream"
    return full.name[:200], mime, content


def _plan_settings(spec: CampaignSpec, targets: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The plan's keys as the settings column keeps them (read back by the accessors below)."""
    return {
        "theme": spec.theme,
        "movements": list(spec.movements),
        "targets": targets,
        "occasions": [{"name": o.name, "date": o.date} for o in spec.occasions],
        "award_names": dict(spec.award_names),
        "plan_document": spec.plan_document,
    }


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
    return await load_campaign(session, read_campaign_file(path), base_dir=Path(path).parent)


# --- what the plan says, read back from a loaded campaign ---------------------------------------


@dataclass(frozen=True)
class Target:
    """A plan's target for one title: ``share`` percent of the members or of the collectives."""

    code: str
    share: Decimal
    of: str  # "members" or "collectives"


@dataclass(frozen=True)
class Occasion:
    name: str
    on: date | None


def campaign_theme(campaign: Campaign) -> str | None:
    theme = (campaign.settings or {}).get("theme")
    return str(theme) if theme else None


def campaign_movements(campaign: Campaign) -> list[str]:
    return [str(m) for m in (campaign.settings or {}).get("movements") or []]


def campaign_targets(campaign: Campaign) -> list[Target]:
    """The targets in the order of the campaign's titles (the order of the plan)."""
    raw = (campaign.settings or {}).get("targets") or {}
    found = []
    for code in campaign.title_codes:
        item = raw.get(code)
        if isinstance(item, dict) and item.get("of") in TARGET_BASES:
            found.append(Target(code, Decimal(str(item["share"])), str(item["of"])))
    return found


def campaign_occasions(campaign: Campaign) -> list[Occasion]:
    """The occasions of the file: plain names, or mappings with a name and a day."""
    found: list[Occasion] = []
    for item in (campaign.settings or {}).get("occasions") or []:
        name = item.get("name") if isinstance(item, dict) else item
        if not isinstance(name, str) or not name.strip():
            continue
        raw_day = item.get("date") if isinstance(item, dict) else None
        try:
            day = date.fromisoformat(raw_day) if isinstance(raw_day, str) else None
        except ValueError:
            day = None
        if all(o.name != name.strip() for o in found):
            found.append(Occasion(name.strip()[:300], day))
    return found


# --- works through the year -------------------------------------------------------------------


def phase_works_end(phase: CampaignPhase) -> date:
    return phase.works_until or phase.ends_on


def phase_of(campaign: Campaign, day: date) -> CampaignPhase | None:
    """The phase ``day`` falls in; before the first phase, the first; between two phases, the
    next one; after the last, None."""
    for phase in sorted(campaign.phases, key=lambda p: p.starts_on):
        if day <= phase.ends_on:
            return phase
    return None


def works_deadline(campaign: Campaign, occasion_on: date | None, today: date) -> date | None:
    """The last day a work can be registered: the end (for works) of the phase of its
    occasion, or of the phase running today when the occasion has no date. None when the
    campaign has no phases (works then follow the registration deadline)."""
    if not campaign.phases:
        return None
    phase = phase_of(campaign, occasion_on or today)
    if phase is None:
        # After the last phase: the last phase's end for works (maybe still ahead).
        phase = max(campaign.phases, key=lambda p: p.starts_on)
    return phase_works_end(phase)


def works_open(campaign: Campaign, today: date, occasion_on: date | None = None) -> bool:
    """Whether a work (greeting ``occasion_on``, when known) can be registered ``today``."""
    last = works_deadline(campaign, occasion_on, today)
    if last is None:
        return today <= campaign.registration_deadline
    return today <= last


def works_close(campaign: Campaign) -> date:
    """The last day any work can be registered in the campaign."""
    if not campaign.phases:
        return campaign.registration_deadline
    return max(phase_works_end(p) for p in campaign.phases)
