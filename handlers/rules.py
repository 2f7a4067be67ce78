"""Eligibility rules, as data (domain.md §3), explained in plain words.

A title's ``rules`` come from the catalogue; a campaign file may override any value under
``rules: {CODE: {...}}``. The rules here advise (a person may still register and the unit
decides), so they return notes rather than refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from handlers.i18n import _, current_locale
from handlers.text import format_money, format_number


@dataclass(frozen=True)
class Note:
    text: str
    # A title code the person could register together with this one to meet the rule.
    offer_title: str | None = None


@dataclass
class PersonFacts:
    """What we know of the person when they pick a title."""

    registered: set[str]  # title codes already registered in this campaign
    has_initiative: bool = False
    best_initiative_benefit: int = 0
    # title code -> years in which that title was approved
    approved_years: dict[str, set[int]] = field(default_factory=dict)


def effective_rules(
    title_code: str, catalogue_rules: Mapping[str, Any], campaign_settings: Mapping[str, Any]
) -> dict[str, Any]:
    overrides = (campaign_settings.get("rules") or {}).get(title_code) or {}
    return {**catalogue_rules, **overrides}


def individual_notes(
    rules: Mapping[str, Any],
    facts: PersonFacts,
    *,
    year: int,
    title_names: Mapping[str, str],
) -> list[Note]:
    """Notes for a person choosing a title with these rules."""
    notes: list[Note] = []
    for code in rules.get("requires_titles") or []:
        if code not in facts.registered:
            notes.append(
                Note(
                    _(
                        "This title also requires “{required}” in the same year, and you have "
                        "not registered it yet."
                    ).format(required=title_names.get(code, code)),
                    offer_title=code,
                )
            )
    if rules.get("requires_initiative") and not facts.has_initiative:
        notes.append(
            Note(
                _(
                    "It also requires an initiative (sáng kiến) or a research topic recognised "
                    "by your unit. You can register your initiative separately."
                )
            )
        )
    history = rules.get("requires_history")
    if history:
        code, years = history["title"], int(history["years"])
        wanted = set(range(year - years, year))
        have = facts.approved_years.get(code, set())
        missing = sorted(wanted - have)
        if missing:
            notes.append(
                Note(
                    _(
                        "It requires “{required}” for {years} consecutive years before {year}. "
                        "The bot has no record of it for: {missing}. Your unit will check your "
                        "file."
                    ).format(
                        required=title_names.get(code, code),
                        years=years,
                        year=year,
                        missing=", ".join(str(y) for y in missing),
                    )
                )
            )
    threshold = rules.get("min_initiative_benefit")
    if threshold and facts.best_initiative_benefit < int(threshold):
        notes.append(
            Note(
                _(
                    "It is for an initiative whose expected benefit is at least {amount}. "
                    "Please register that initiative too."
                ).format(amount=format_money(int(threshold), current_locale()))
            )
        )
    return notes


# --- collective rules: a unit's title, advised to its leader -------------------------------

LDTT = "LDTT"
CSTDCS = "CSTDCS"


@dataclass
class UnitFacts:
    """What we know of a unit when its leader picks a collective title."""

    roster: int  # people on the unit's roster
    # personal title code -> how many people of the roster registered it in this campaign
    counts: Mapping[str, int] = field(default_factory=dict)
    collective: set[str] = field(default_factory=set)  # collective titles already registered


def _share(value: Any) -> Decimal:
    # Through str: 0.7 read from YAML is 0.6999… as a float, and 14 of 20 must meet 70 %.
    return Decimal(str(value))


def _percent(share: Decimal) -> str:
    return format_number(share * 100, current_locale())  # 0.675 -> "67,5"


def collective_notes(
    rules: Mapping[str, Any],
    facts: UnitFacts,
    *,
    title: str,
    title_names: Mapping[str, str],
) -> list[Note]:
    """Notes for a leader choosing collective title ``title`` (short name) with these rules."""
    notes: list[Note] = []
    for code in rules.get("requires_titles") or []:
        if code not in facts.collective:
            notes.append(
                Note(
                    _(
                        "{title} is chosen among units with {required}, which the unit has not "
                        "registered yet."
                    ).format(title=title, required=title_names.get(code, code)),
                    offer_title=code,
                )
            )
    ldtt = title_names.get(LDTT, "LĐTT")
    if rules.get("min_share_ldtt") is not None:
        need = _share(rules["min_share_ldtt"])
        count = facts.counts.get(LDTT, 0)
        if facts.roster == 0:
            notes.append(
                Note(
                    _(
                        "{title} needs at least {share}% of members with {ldtt}, but the unit "
                        "has nobody on its roster yet."
                    ).format(title=title, share=_percent(need), ldtt=ldtt)
                )
            )
        elif count < need * facts.roster:
            notes.append(
                Note(
                    _(
                        "{title} needs at least {share}% of members with {ldtt}: the unit has "
                        "{count}/{roster} ({actual}%) registered for {ldtt}."
                    ).format(
                        title=title,
                        share=_percent(need),
                        ldtt=ldtt,
                        count=count,
                        roster=facts.roster,
                        # Rounded down, so a share just under the bar never shows as meeting it.
                        actual=count * 100 // facts.roster,
                    )
                )
            )
    min_cstdcs = int(rules.get("min_cstdcs") or 0)
    count = facts.counts.get(CSTDCS, 0)
    if count < min_cstdcs:
        cstdcs = title_names.get(CSTDCS, "CSTĐCS")
        notes.append(
            Note(
                _(
                    "{title} needs at least {n} member(s) with {cstdcs}: the unit has {count} "
                    "registered for {cstdcs}."
                ).format(title=title, n=min_cstdcs, cstdcs=cstdcs, count=count)
            )
        )
    return notes


def share_cap_notes(
    code: str,
    rules: Mapping[str, Any],
    facts: UnitFacts,
    *,
    title_names: Mapping[str, str],
) -> list[Note]:
    """A personal title capped at a share of the unit's LĐTT (CSTĐCS ≤ 15 %): a warning."""
    cap = rules.get("max_share_of_ldtt")
    if cap is None:
        return []
    share = _share(cap)
    ldtt_count = facts.counts.get(LDTT, 0)
    count = facts.counts.get(code, 0)
    allowed = int(share * ldtt_count)  # whole people, rounded down
    if count <= allowed:
        return []
    return [
        Note(
            _(
                "{title} is capped at {share}% of the unit's {ldtt}: {count} registered for "
                "{ldtt_count} {ldtt} (at most {allowed}). Please review them with the unit."
            ).format(
                title=title_names.get(code, code),
                share=_percent(share),
                ldtt=title_names.get(LDTT, "LĐTT"),
                count=count,
                ldtt_count=ldtt_count,
                allowed=allowed,
            )
        )
    ]
