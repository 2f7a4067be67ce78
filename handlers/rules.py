"""Eligibility rules, as data (domain.md §3), explained in plain words.

A title's ``rules`` come from the catalogue; a campaign file may override any value under
``rules: {CODE: {...}}``. The rules here advise (a person may still register and the unit
decides), so they return notes rather than refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from handlers.i18n import _, current_locale
from handlers.text import format_money


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
