"""Eligibility rules, as data (domain.md §3), explained in plain words with their source.

A title's ``rules`` come from the catalogue (storage/seed/titles.yaml), each with its legal
source under ``sources``; a campaign file may override any value under
``rules: {CODE: {...}}``, or turn on one of the catalogue's ``options`` (rules the current
text does not support, off by default) with ``true``. The rules here advise (a person may
still register and the unit decides), so they return notes rather than refusals, and every
note says which text it rests on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from handlers.i18n import _, current_locale
from handlers.text import format_money, format_number

# Keys of ``titles.rules`` that describe the rules rather than being one.
META_KEYS = ("sources", "options", "kind", "awarded_by_issuer")
# Author categories of Bằng Lao động sáng tạo, in the catalogue's order.
AUTHOR_CATEGORIES = ("worker", "professional", "manager")


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
    # The total expected benefit of the person's live initiatives in this campaign (as
    # author or co-author), and who the author is ("worker", "professional", "manager").
    total_initiative_benefit: int = 0
    author_category: str | None = None
    # title code -> years in which that title was approved
    approved_years: dict[str, set[int]] = field(default_factory=dict)


def effective_rules(
    title_code: str, catalogue_rules: Mapping[str, Any], campaign_settings: Mapping[str, Any]
) -> dict[str, Any]:
    """The catalogue's rules with the campaign's overrides; ``sources`` follows the values.

    An option of the catalogue is on only when the campaign names it: ``true`` takes the
    catalogue's value and source, a value of its own is cited as the campaign's rule. A
    value of the law changed by the campaign is cited as the campaign's rule too; the same
    value written again keeps the law's source.
    """
    overrides = dict((campaign_settings.get("rules") or {}).get(title_code) or {})
    options = catalogue_rules.get("options") or {}
    sources = dict(catalogue_rules.get("sources") or {})
    rules = {k: v for k, v in catalogue_rules.items() if k not in ("sources", "options")}
    for key, value in overrides.items():
        option = options.get(key)
        if value is True and isinstance(option, Mapping):
            rules[key] = option.get("value")
            sources[key] = option.get("source")
        elif value != catalogue_rules.get(key):
            rules[key] = value
            sources[key] = None  # the campaign's own value
    rules["sources"] = sources
    return rules


def required_titles(rules: Mapping[str, Any]) -> list[str]:
    """The title codes a rule requires first (a list; anything else, e.g. an option left at
    ``true`` without its value, requires nothing)."""
    codes = rules.get("requires_titles")
    return [str(c) for c in codes] if isinstance(codes, list) else []


def source_of(rules: Mapping[str, Any], key: str) -> str:
    """The text a rule rests on, as people cite it ("Luật Thi đua, khen thưởng 2022")."""
    source = (rules.get("sources") or {}).get(key)
    return str(source) if source else _("the campaign's own rules")


def _cited(text: str, rules: Mapping[str, Any], key: str) -> str:
    return text + " " + _("(Source: {source})").format(source=source_of(rules, key))


def category_label(category: str) -> str:
    labels = {
        "worker": _("a worker in production or services"),
        "professional": _("a professional (specialist, technical or clerical staff)"),
        "manager": _("a manager or leader"),
    }
    return labels.get(category, category)


def benefit_thresholds(rules: Mapping[str, Any]) -> dict[str, int]:
    """Bằng Lao động sáng tạo: the total benefit wanted, by author category."""
    table = rules.get("min_benefit_by_category") or {}
    return {c: int(table[c]) for c in AUTHOR_CATEGORIES if table.get(c) is not None}


def individual_notes(
    rules: Mapping[str, Any],
    facts: PersonFacts,
    *,
    year: int,
    title_names: Mapping[str, str],
) -> list[Note]:
    """Notes for a person choosing a title with these rules."""
    notes: list[Note] = []
    for code in required_titles(rules):
        if code not in facts.registered:
            text = _(
                "This title also requires “{required}” in the same year, and you have not "
                "registered it yet."
            ).format(required=title_names.get(code, code))
            notes.append(Note(_cited(text, rules, "requires_titles"), offer_title=code))
    if rules.get("requires_initiative") and not facts.has_initiative:
        text = _(
            "It also requires an initiative (sáng kiến) or a research topic recognised by your "
            "unit. You can register your initiative separately."
        )
        notes.append(Note(_cited(text, rules, "requires_initiative")))
    history = rules.get("requires_history")
    if history:
        notes += _history_notes(rules, history, facts, year=year, title_names=title_names)
    thresholds = benefit_thresholds(rules)
    if thresholds:
        notes += _benefit_notes(rules, thresholds, facts)
    return notes


def _history_notes(
    rules: Mapping[str, Any],
    history: Mapping[str, Any],
    facts: PersonFacts,
    *,
    year: int,
    title_names: Mapping[str, str],
) -> list[Note]:
    """Consecutive TIMES of a lower title (Luật TĐKT 2022), not calendar years: the bot can
    count the times it has on record; whether they were consecutive is the unit's check."""
    code, times = history["title"], int(history.get("times") or history.get("years") or 0)
    had = sorted(y for y in facts.approved_years.get(code, set()) if y < year)
    if len(had) >= times:
        return []
    required = title_names.get(code, code)
    if had:
        text = _(
            "It is chosen among people who have been “{required}” {times} times in a row. The "
            "bot has {count} on record ({years}); your unit will check your file."
        ).format(
            required=required,
            times=times,
            count=len(had),
            years=", ".join(str(y) for y in had),
        )
    else:
        text = _(
            "It is chosen among people who have been “{required}” {times} times in a row. The "
            "bot has no record of it yet; your unit will check your file."
        ).format(required=required, times=times)
    return [Note(_cited(text, rules, "requires_history"))]


def _benefit_notes(
    rules: Mapping[str, Any], thresholds: Mapping[str, int], facts: PersonFacts
) -> list[Note]:
    locale = current_locale()
    total = format_money(facts.total_initiative_benefit, locale)
    category = facts.author_category
    if category is not None and category in thresholds:
        wanted = thresholds[category]
        if facts.total_initiative_benefit >= wanted:
            return []
        text = _(
            "It is for initiatives whose total benefit reaches {amount} for {category}; yours "
            "total {total}. Please register your initiatives too."
        ).format(
            amount=format_money(wanted, locale), category=category_label(category), total=total
        )
    else:
        if facts.total_initiative_benefit >= max(thresholds.values()):
            return []
        table = "; ".join(
            _("{amount} for {category}").format(
                amount=format_money(amount, locale), category=category_label(c)
            )
            for c, amount in thresholds.items()
        )
        if facts.total_initiative_benefit:
            text = _(
                "It is for initiatives whose total benefit reaches, by who the author is: "
                "{table}. Yours total {total}. Please register your initiatives too."
            ).format(table=table, total=total)
        else:
            text = _(
                "It is for initiatives whose total benefit reaches, by who the author is: "
                "{table}. You have no initiative with a benefit registered yet."
            ).format(table=table)
    return [Note(_cited(text, rules, "min_benefit_by_category"))]


def ldst_candidate(rules: Mapping[str, Any], total_benefit: int, category: str | None) -> bool:
    """Whether a total benefit makes the author a Bằng Lao động sáng tạo candidate."""
    thresholds = benefit_thresholds(rules)
    if category in thresholds:
        return total_benefit >= thresholds[category]
    # Category unknown: the lowest threshold marks a possible candidate for the unit to check.
    return bool(thresholds) and total_benefit >= min(thresholds.values())


# --- collective rules: a collective's title, advised to its leader -------------------------

LDTT = "LDTT"
CSTDCS = "CSTDCS"


@dataclass
class UnitFacts:
    """What we know of a collective when its leader picks a collective title.

    ``roster`` and ``counts`` are the collective's own people where the bot knows them (a
    sub-unit of the org tree); otherwise the unit's members, and ``people_known`` is False.
    """

    roster: int  # people counted
    # personal title code -> how many of those people registered it in this campaign
    counts: Mapping[str, int] = field(default_factory=dict)
    collective: set[str] = field(default_factory=set)  # collective titles already registered
    # The collective by name ("Tổ Cơ khí"), or None for the unit itself.
    name: str | None = None
    people_known: bool = True


def _share(value: Any) -> Decimal:
    # Through str: 0.7 read from YAML is 0.6999… as a float, and 14 of 20 must meet 70 %.
    return Decimal(str(value))


def _percent(share: Decimal) -> str:
    """0.675 -> "67,5%": the sign travels with the number, so no message has a "%"."""
    return format_number(share * 100, current_locale()) + "%"


def _who(facts: UnitFacts) -> str:
    return facts.name or _("the unit")


def collective_notes(
    rules: Mapping[str, Any],
    facts: UnitFacts,
    *,
    title: str,
    title_names: Mapping[str, str],
) -> list[Note]:
    """Notes for a leader choosing collective title ``title`` (short name) with these rules."""
    notes: list[Note] = []
    who = _who(facts)
    for code in required_titles(rules):
        if code not in facts.collective:
            text = _(
                "{title} is chosen among collectives with {required}, which {who} has not "
                "registered yet."
            ).format(title=title, required=title_names.get(code, code), who=who)
            notes.append(Note(_cited(text, rules, "requires_titles"), offer_title=code))
    ldtt = title_names.get(LDTT, "LĐTT")
    count = facts.counts.get(LDTT, 0)
    # Whose people the counts are: the collective's, or the unit's when they are not known.
    who = who if facts.people_known else _("the unit")
    for key, strictly in (("min_share_ldtt", False), ("over_share_ldtt", True)):
        if rules.get(key) is None:
            continue
        need = _share(rules[key])
        if facts.roster == 0:
            text = _(
                "{title} needs {share} of the collective's individuals with {ldtt}, but {who} "
                "has nobody on its list yet."
            ).format(title=title, share=_shown_share(need, strictly), ldtt=ldtt, who=who)
        elif (count > need * facts.roster) if strictly else (count >= need * facts.roster):
            continue
        else:
            text = _(
                "{title} needs {share} of the collective's individuals with {ldtt}: {who} has "
                "{count}/{roster} ({actual}) registered for {ldtt}."
            ).format(
                title=title,
                share=_shown_share(need, strictly),
                ldtt=ldtt,
                who=who,
                count=count,
                roster=facts.roster,
                # Rounded down, so a share just under the bar never shows as meeting it.
                actual=f"{count * 100 // facts.roster}%",
            )
        notes.append(Note(_cited(_counted_over(text, facts), rules, key)))
    min_cstdcs = int(rules.get("min_cstdcs") or 0)
    count = facts.counts.get(CSTDCS, 0)
    if count < min_cstdcs:
        cstdcs = title_names.get(CSTDCS, "CSTĐCS")
        text = _(
            "{title} needs at least {n} of the collective's individuals with {cstdcs}: {who} "
            "has {count} registered for {cstdcs}."
        ).format(title=title, n=min_cstdcs, cstdcs=cstdcs, who=who, count=count)
        notes.append(Note(_cited(_counted_over(text, facts), rules, "min_cstdcs")))
    return notes


def _shown_share(need: Decimal, strictly: bool) -> str:
    if strictly:
        return _("more than {share}").format(share=_percent(need))
    return _("at least {share}").format(share=_percent(need))


def _counted_over(text: str, facts: UnitFacts) -> str:
    if facts.people_known or not facts.name:
        return text
    return (
        text
        + " "
        + _(
            "The bot does not know who belongs to {who}, so these are the counts of the whole unit."
        ).format(who=facts.name)
    )


def share_cap_notes(
    code: str,
    rules: Mapping[str, Any],
    facts: UnitFacts,
    *,
    title_names: Mapping[str, str],
) -> list[Note]:
    """A personal title capped at a share of the unit's LĐTT (CSTĐCS ≤ 15 %, a campaign
    option): a warning when the unit is over it. A cap below one person is never stated as
    a limit of 0: the numbers are given and the unit decides."""
    cap = rules.get("max_share_of_ldtt")
    if isinstance(cap, bool) or not isinstance(cap, int | float | str):
        return []  # off (or an option left at true without its value)
    share = _share(cap)
    ldtt_count = facts.counts.get(LDTT, 0)
    count = facts.counts.get(code, 0)
    allowed = int(share * ldtt_count)  # whole people, rounded down
    if count <= allowed:
        return []
    title = title_names.get(code, code)
    ldtt = title_names.get(LDTT, "LĐTT")
    if allowed < 1:
        text = _(
            "This campaign limits {title} to {share} of the unit's {ldtt}. With {ldtt_count} "
            "{ldtt} that is less than one person, and {count} registered for {title}: please "
            "agree on it with the upper level."
        )
    else:
        text = _(
            "This campaign limits {title} to {share} of the unit's {ldtt}: {count} registered "
            "for {ldtt_count} {ldtt}, while {share} of them is {allowed}. Please review them "
            "with the unit."
        )
    text = text.format(
        title=title,
        share=_percent(share),
        ldtt=ldtt,
        count=count,
        ldtt_count=ldtt_count,
        allowed=allowed,
    )
    return [Note(_cited(text, rules, "max_share_of_ldtt"))]
