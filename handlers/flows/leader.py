"""The unit leader's menu: collective titles, the unit's progress, registering for a member
who has no phone, and sending the unit's list to the level above.

Every flow starts with the unit (asked only when the person leads several) and the campaign
(asked only when several are running). The unit id kept in the draft is checked against the
person's leader role again at each step that uses it: roles can change mid-conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.engine.flow import Again, Answer, Ctx, Edit, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, InputKind, OutFile, Prompt, Reply, fit_label
from handlers.flows.claims import say_personal_codes
from handlers.flows.common import (
    answer_open_campaign,
    ask_open_campaign,
    deadline_passed_text,
    draft_campaign,
    refuse_if_locked,
    registration_open,
    show_date,
    title_aliases,
    title_button,
    title_label,
    title_short,
)
from handlers.flows.names import list_xlsx, read_names
from handlers.i18n import _, current_locale
from handlers.notify import notify
from handlers.rules import (
    Note,
    UnitFacts,
    collective_notes,
    effective_rules,
    required_titles,
    share_cap_notes,
)
from handlers.status import list_state_label
from handlers.text import Invalid, clean, fold, format_count, format_money, given_name
from storage.campaigns import title_names

# The unit's numbers: the one definition every view shares (storage.counts).
from storage.counts import UnitProgress, list_states, unit_progress, unit_totals
from storage.models import (
    Campaign,
    Person,
    Registration,
    RegistrationStatus,
    Role,
    SubmissionStatus,
    Title,
    TitleTarget,
    Unit,
    UnitSubmission,
)
from storage.reminders import claim
from storage.repo import (
    audit,
    campaigns_for_unit,
    next_receipt_no,
    titles_by_code,
    units_led_by,
)
from storage.units import (
    collective_registrations,
    has_role_on,
    move_submission,
    officers_above,
    person_in_unit,
    roster,
    sub_units,
    submission_for,
    with_chat,
)

COLLECTIVE = "collective"
# The reminder a leader sends with one tap (reminder_log kind): at most once a day a member.
NUDGE = "nudge"
UNIT_STATUS = "unit_status"
ON_BEHALF = "on_behalf"
SUBMIT = "submit"

PAGE_SIZE = 10
MAX_MATCHES = 8
# Names of people the bot cannot reach, listed after a reminder.
MAX_NEVER_NAMED = 20


def short_title(title: Title) -> str:
    """ "TTLĐXS" in counts and rule notes; the full name when there is no abbreviation."""
    return title.abbreviation or title.name


def submission_label(status: str | None) -> str:
    """The statuses officers know from other software (domain.md §6): handlers.status."""
    return list_state_label(status)


# --- the unit and the campaign (first steps of every leader flow) --------------------------


async def leader_unit(ctx: Ctx) -> Unit | None:
    """The unit chosen in this flow, if the person still leads it."""
    unit_id = ctx.data.get("unit_id")
    if unit_id is None:
        return None
    person = ctx.require_person()
    if not await has_role_on(ctx.session, person.id, [int(unit_id)], Role.LEADER):
        return None
    return await ctx.session.get(Unit, int(unit_id))


def unit_step(then: str) -> Step:
    """Which unit the person leads (asked only when several); then ``then``."""

    async def ask(ctx: Ctx) -> Prompt | Go:
        units = await units_led_by(ctx.session, ctx.require_person().id)
        if not units:
            ctx.say(
                _(
                    "This is for union unit leaders. If you lead a unit, please ask your "
                    "upper-level union for a leader invitation."
                )
            )
            return Finish()
        if len(units) == 1:
            ctx.data["unit_id"] = units[0].id
            return Next(then)
        return Prompt(_("For which unit?"), tuple(Choice(f"u{u.id}", u.name) for u in units))

    async def answer(ctx: Ctx, answer: Answer) -> Go:
        ctx.data["unit_id"] = int((answer.choice or "u0")[1:])
        return Next(then)

    return Step("unit", ask, answer)


async def _lost_unit(ctx: Ctx) -> Go:
    ctx.say(_("You are no longer a leader of this unit."))
    return Finish()


def running_campaign_step(then: str) -> Step:
    """The campaign step for flows that also work after the deadline (progress, submit)."""

    async def ask(ctx: Ctx) -> Prompt | Go:
        unit = await leader_unit(ctx)
        if unit is None:
            return await _lost_unit(ctx)
        running = await campaigns_for_unit(ctx.session, unit, ctx.today)
        if not running:
            ctx.say(_("There is no emulation campaign running for your unit at the moment."))
            return Finish()
        if len(running) == 1:
            ctx.data["campaign_id"] = running[0].id
            return Next(then)
        return Prompt(
            _("Which campaign?"),
            tuple(Choice(f"c{c.id}", c.name) for c in running),
        )

    async def answer(ctx: Ctx, answer: Answer) -> Go:
        return answer_open_campaign(ctx, answer, then=then)

    return Step("campaign", ask, answer)


def open_campaign_step(then: str) -> Step:
    """The campaign step for flows that register something (only before the deadline)."""

    async def ask(ctx: Ctx) -> Prompt | Go:
        unit = await leader_unit(ctx)
        if unit is None:
            return await _lost_unit(ctx)
        return await ask_open_campaign(ctx, unit, then=then)

    async def answer(ctx: Ctx, answer: Answer) -> Go:
        return answer_open_campaign(ctx, answer, then=then)

    return Step("campaign", ask, answer)


async def _unit_and_campaign(ctx: Ctx) -> tuple[Unit, Campaign] | None:
    unit = await leader_unit(ctx)
    campaign = await draft_campaign(ctx)
    if unit is None or campaign is None:
        return None
    return unit, campaign


# --- the unit's numbers --------------------------------------------------------------------


@dataclass
class UnitSummary:
    """A unit's registrations in one campaign, gathered once and rendered in any language."""

    unit_name: str
    campaign_name: str
    facts: UnitFacts
    registered: int
    # (short title, count) for personal titles, highest award first
    personal: list[tuple[str, int]] = field(default_factory=list)
    collective: list[str] = field(default_factory=list)
    initiatives: int = 0
    works: int = 0
    works_value: int = 0
    # (code, rules, short names) of personal titles capped at a share of LĐTT
    caps: list[tuple[str, dict[str, object]]] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)

    def warnings(self) -> list[Note]:
        notes: list[Note] = []
        for code, rules in self.caps:
            notes += share_cap_notes(code, rules, self.facts, title_names=self.names)
        return notes


async def gather_summary(
    session: AsyncSession, campaign: Campaign, unit: Unit, progress: UnitProgress | None = None
) -> UnitSummary:
    if progress is None:
        progress = await unit_progress(session, campaign.id, unit)
    collective = await collective_registrations(session, campaign.id, unit.id)
    codes = set(progress.counts) | {r.title_code for r in collective} | set(campaign.title_codes)
    titles = await titles_by_code(session, sorted(codes))
    ranked = sorted(titles.values(), key=lambda t: (t.rank, t.code))
    names = {t.code: short_title(t) for t in ranked}
    totals = await unit_totals(session, campaign.id, unit)
    facts = UnitFacts(
        roster=len(progress.roster),
        counts=dict(progress.counts),
        collective={r.title_code for r in collective},
    )
    return UnitSummary(
        unit_name=unit.name,
        campaign_name=campaign.name,
        facts=facts,
        registered=len(progress.registered_ids),
        personal=[
            (names[t.code], progress.counts[t.code]) for t in ranked if progress.counts[t.code]
        ],
        collective=[
            f"{names[r.title_code]} ({r.collective_name})"
            if r.collective_name
            else names[r.title_code]
            for r in sorted(
                collective, key=lambda r: (titles[r.title_code].rank, r.title_code, r.id)
            )
            if r.title_code in titles
        ],
        initiatives=totals.initiatives,
        works=totals.works,
        works_value=totals.works_value,
        caps=[
            (t.code, effective_rules(t.code, t.rules, campaign.settings))
            for t in ranked
            if t.code in campaign.title_codes
            # The CSTĐCS cap is a campaign option, off unless the file turns it on.
            and effective_rules(t.code, t.rules, campaign.settings).get("max_share_of_ldtt")
        ],
        names=names,
    )


def render_summary(summary: UnitSummary) -> str:
    """A few short lines for a phone; counts in the report style ("02", "1.445")."""
    locale = current_locale()
    lines = [
        f"{summary.unit_name} — {summary.campaign_name}",
        _("• Members registered: {n}/{total}").format(
            n=summary.registered, total=summary.facts.roster
        ),
    ]
    for name, count in summary.personal:
        lines.append(f"   – {name}: {format_count(count, locale)}")
    lines.append(
        _("• Collective titles: {titles}").format(
            titles=", ".join(summary.collective) if summary.collective else _("(none)")
        )
    )
    if summary.initiatives:
        lines.append(_("• Initiatives: {n}").format(n=format_count(summary.initiatives, locale)))
    if summary.works:
        lines.append(
            _("• Commemorative works: {n} ({value})").format(
                n=format_count(summary.works, locale),
                value=format_money(summary.works_value, locale),
            )
        )
    lines += [f"⚠️ {note.text}" for note in summary.warnings()]
    return "\n".join(lines)


# --- 1. collective titles ------------------------------------------------------------------


async def _collective_titles(ctx: Ctx, campaign: Campaign) -> list[Title]:
    titles = await titles_by_code(ctx.session, campaign.title_codes)
    return [
        titles[c]
        for c in campaign.title_codes
        if c in titles and titles[c].target in (TitleTarget.COLLECTIVE, TitleTarget.BOTH)
    ]


def names_collective(title: Title, campaign: Campaign) -> bool:
    """TTLĐXS / TTLĐTT are conferred on a collective (tổ, phòng, phân xưởng, the enterprise
    or agency), not on the grassroots union: the leader names which one."""
    return bool(effective_rules(title.code, title.rules, campaign.settings).get("names_collective"))


def collective_text(name: str) -> str:
    """A collective as people read it: its name, or the unit's whole agency or enterprise."""
    return name or _("the whole agency or enterprise")


async def ask_collective_title(ctx: Ctx) -> Prompt | Go:
    found = await _unit_and_campaign(ctx)
    if found is None:
        return await _lost_unit(ctx)
    unit, campaign = found
    titles = await _collective_titles(ctx, campaign)
    registered = await collective_registrations(ctx.session, campaign.id, unit.id)
    names = await title_names(ctx.session, campaign)
    # A title named per collective can be registered for each of them; the others once.
    done = {r.title_code for r in registered}
    free = [t for t in titles if names_collective(t, campaign) or t.code not in done]
    by_code = {t.code: t for t in titles}
    lines = [
        _("✔ Already registered: {title} (receipt {receipt})").format(
            title=title_label(by_code[r.title_code], names)
            + (f" — {r.collective_name}" if r.collective_name else ""),
            receipt=r.receipt_no,
        )
        for r in registered
        if r.title_code in by_code
    ]
    if not free:
        lines.insert(
            0,
            _("{unit} has registered every collective title of this campaign.").format(
                unit=unit.name
            ),
        )
        ctx.say("\n".join(lines))
        return Finish()
    lines.insert(
        0,
        _(
            "Which collective title or award does {unit} register for in “{campaign}”? "
            "(deadline {deadline})"
        ).format(
            unit=unit.name,
            campaign=campaign.name,
            deadline=show_date(campaign.registration_deadline),
        ),
    )
    return Prompt(
        "\n".join(lines),
        tuple(
            Choice(t.code, title_button(t, names), (*title_aliases(t), title_label(t, names)))
            for t in free
        ),
    )


async def answer_collective_title(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["title"] = answer.choice or ""
    ctx.data.pop("also", None)
    ctx.data.pop("collective", None)
    return Next("collective", edit_chain=True)


# The longest collective name kept (a tổ, phòng or phân xưởng is named in a few words).
MAX_COLLECTIVE_NAME = 200


async def ask_collective(ctx: Ctx) -> Prompt | Go:
    """Which collective the title is for: a unit below in the org tree, the whole agency or
    enterprise, or a name typed by the leader. Asked only for titles named per collective."""
    found = await _unit_and_campaign(ctx)
    titles = await titles_by_code(ctx.session, [ctx.data.get("title", "")])
    if found is None or not titles:
        return Next("title")
    unit, campaign = found
    title = titles[ctx.data["title"]]
    if not names_collective(title, campaign):
        ctx.data["collective"] = {"name": "", "unit_id": None}
        return Next("rules")
    taken = {
        r.collective_name
        for r in await collective_registrations(ctx.session, campaign.id, unit.id)
        if r.title_code == title.code
    }
    choices = [] if "" in taken else [Choice("whole", _("🏢 The whole agency/enterprise"))]
    choices += [
        Choice(f"s{sub.id}", fit_label(sub.name))
        for sub in await sub_units(ctx.session, unit)
        if sub.name not in taken
    ]
    return Prompt(
        _(
            "{title} is conferred on a collective: a team (tổ), a department (phòng), a "
            "workshop (phân xưởng), or the whole agency or enterprise. Which collective of "
            "{unit} is it for? Tap it, or type its name (for example “Tổ Cơ khí”)."
        ).format(title=title_short(title), unit=unit.name),
        tuple(choices),
        kind=InputKind.TEXT,
    )


async def answer_collective(ctx: Ctx, answer: Answer) -> Go:
    unit = await leader_unit(ctx)
    if unit is None:
        return await _lost_unit(ctx)
    choice = answer.choice or ""
    if choice == "whole":
        ctx.data["collective"] = {"name": "", "unit_id": None}
        return Next("rules")
    if choice.startswith("s"):
        subs = {s.id: s for s in await sub_units(ctx.session, unit)}
        sub = subs.get(int(choice[1:]) if choice[1:].isdecimal() else 0)
        if sub is None:  # moved out of the unit meanwhile
            return Again(_("Please choose one of the collectives, or type its name."))
        ctx.data["collective"] = {"name": sub.name, "unit_id": sub.id}
        return Next("rules")
    try:
        name = clean(answer.text or "", max_length=MAX_COLLECTIVE_NAME)
    except Invalid:
        return Again(
            _("Please type the collective's name in under {n} characters.").format(
                n=MAX_COLLECTIVE_NAME
            )
        )
    if len(name) < 2:
        return Again(_("Please type the collective's name, for example “Tổ Cơ khí”."))
    # A typed name that is a unit below is that unit: its people are known.
    same = [s for s in await sub_units(ctx.session, unit) if fold(s.name) == fold(name)]
    ctx.data["collective"] = {
        "name": same[0].name if same else name,
        "unit_id": same[0].id if same else None,
    }
    return Next("rules")


async def collective_facts(
    ctx: Ctx, campaign: Campaign, unit: Unit, summary: UnitSummary
) -> UnitFacts:
    """The numbers a collective rule is computed over: the collective's own people where the
    bot knows them (a unit below with people on its roster), else the unit's (said so)."""
    chosen = ctx.data.get("collective") or {}
    name = str(chosen.get("name") or "")
    registered = {
        r.title_code
        for r in await collective_registrations(ctx.session, campaign.id, unit.id)
        if r.collective_name == name
    } | set(ctx.data.get("also", []))
    sub_id = chosen.get("unit_id")
    sub = await ctx.session.get(Unit, int(sub_id)) if sub_id else None
    if sub is not None and sub.path.startswith(unit.path):
        progress = await unit_progress(ctx.session, campaign.id, sub)
        if progress.roster:
            return UnitFacts(
                roster=len(progress.roster),
                counts=dict(progress.counts),
                collective=registered,
                name=name,
            )
    return UnitFacts(
        roster=summary.facts.roster,
        counts=dict(summary.facts.counts),
        collective=registered,
        name=name or None,
        people_known=not name,
    )


async def ask_collective_rules(ctx: Ctx) -> Prompt | Go:
    found = await _unit_and_campaign(ctx)
    titles = await titles_by_code(ctx.session, [ctx.data.get("title", "")])
    if found is None or not titles:
        return Next("title")
    unit, campaign = found
    title = titles[ctx.data["title"]]
    summary = await gather_summary(ctx.session, campaign, unit)
    facts = await collective_facts(ctx, campaign, unit, summary)
    rules = effective_rules(title.code, title.rules, campaign.settings)
    needed = await titles_by_code(ctx.session, required_titles(rules))
    names = {**summary.names, **{c: short_title(t) for c, t in needed.items()}}
    notes = collective_notes(rules, facts, title=short_title(title), title_names=names)
    if not notes:
        return Next("summary")
    offered = await titles_by_code(ctx.session, [n.offer_title for n in notes if n.offer_title])
    choices = [
        Choice(f"add_{code}", _("➕ Also register {title}").format(title=title_short(t)))
        for code, t in offered.items()
        if code in campaign.title_codes
    ]
    choices.append(Choice("go", _("➡️ Register it anyway")))
    choices.append(Choice("other", _("Choose another title")))
    campaign_names = await title_names(ctx.session, campaign)
    lines = [_("Please note, for “{title}”:").format(title=title_label(title, campaign_names))]
    lines += [f"• {n.text}" for n in notes]
    lines.append(_("These rules are advice: the unit may still register."))
    return Prompt("\n".join(lines), tuple(choices))


async def answer_collective_rules(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice == "other":
        return Next("title")
    if choice.startswith("add_"):
        ctx.data["also"] = sorted({*ctx.data.get("also", []), choice[4:]})
    return Next("summary")


async def ask_collective_summary(ctx: Ctx) -> Prompt | Go:
    found = await _unit_and_campaign(ctx)
    codes = [ctx.data.get("title", ""), *ctx.data.get("also", [])]
    titles = await titles_by_code(ctx.session, codes)
    if found is None or ctx.data.get("title") not in titles:
        return Next("title")
    unit, campaign = found
    names = await title_names(ctx.session, campaign)
    lines = [
        _("Please check the collective registration:"),
        _("• Campaign: {campaign}").format(campaign=campaign.name),
        _("• Unit: {unit}").format(unit=unit.name),
        _("• Title: {title}").format(title=title_label(titles[ctx.data["title"]], names)),
    ]
    for code in ctx.data.get("also", []):
        if code in titles:
            lines.append(_("• Also: {title}").format(title=title_label(titles[code], names)))
    chosen = ctx.data.get("collective")
    if chosen and any(names_collective(t, campaign) for t in titles.values()):
        lines.append(
            _("• Collective: {name}").format(name=collective_text(str(chosen.get("name") or "")))
        )
    choices = [Choice("confirm", _("✅ Confirm")), Choice("edit_title", _("✏️ Change the title"))]
    if chosen and names_collective(titles[ctx.data["title"]], campaign):
        choices.append(Choice("edit_collective", _("✏️ Change the collective")))
    return Prompt("\n".join(lines), tuple(choices))


async def answer_collective_summary(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "edit_title":
        return Edit("title")
    if answer.choice == "edit_collective":
        return Edit("collective")
    return await _save_collective(ctx)


async def _save_collective(ctx: Ctx) -> Go:
    found = await _unit_and_campaign(ctx)
    if found is None:
        return await _lost_unit(ctx)
    unit, campaign = found
    leader = ctx.require_person()
    if not registration_open(campaign, ctx.today):
        ctx.say(deadline_passed_text(campaign))
        return Finish()
    if await refuse_if_locked(ctx, campaign.id, unit.id):
        return Finish()
    codes = [*ctx.data.get("also", []), ctx.data["title"]]
    titles = await titles_by_code(ctx.session, codes)
    chosen = ctx.data.get("collective") or {}
    existing = {
        (r.title_code, r.collective_name)
        for r in await collective_registrations(ctx.session, campaign.id, unit.id)
    }
    saved: list[Registration] = []
    for code in codes:
        if code not in titles:
            continue
        # Only titles named per collective carry the collective; Cờ, Bằng khen and the
        # union's own title are the unit's.
        named = names_collective(titles[code], campaign)
        collective_name = str(chosen.get("name") or "") if named else ""
        collective_unit_id = chosen.get("unit_id") if named else None
        # Registered meanwhile by another leader of the unit: keep theirs.
        if (code, collective_name) in existing:
            continue
        registration = Registration(
            receipt_no=await next_receipt_no(ctx.session, campaign),
            campaign_id=campaign.id,
            title_code=code,
            is_collective=True,
            person_id=None,
            unit_id=unit.id,
            collective_name=collective_name,
            collective_unit_id=int(collective_unit_id) if collective_unit_id else None,
            status=RegistrationStatus.SUBMITTED,
            source="chat",
            entered_by_id=leader.id,
        )
        ctx.session.add(registration)
        await ctx.session.flush()
        audit(
            ctx.session,
            action="registration.create",
            entity="registration",
            entity_id=registration.id,
            actor_id=leader.id,
            via="chat",
            receipt_no=registration.receipt_no,
            title=code,
            collective=True,
            unit_id=unit.id,
            **({"collective_name": collective_name} if collective_name else {}),
        )
        saved.append(registration)
    if not saved:
        ctx.say(_("This title is already registered for the unit."))
        return Next("title")
    names = await title_names(ctx.session, campaign)
    lines = [_("Done! The registration of {unit} has been recorded.").format(unit=unit.name)]
    for registration in saved:
        title = title_label(titles[registration.title_code], names)
        if registration.collective_name:
            title += f" — {registration.collective_name}"
        lines.append(
            _("• {title}: receipt number {receipt}").format(
                title=title, receipt=registration.receipt_no
            )
        )
    ctx.say("\n".join(lines))
    return Finish()


COLLECTIVE_FLOW = Flow(
    COLLECTIVE,
    (
        unit_step("campaign"),
        open_campaign_step("title"),
        Step("title", ask_collective_title, answer_collective_title),
        Step("collective", ask_collective, answer_collective),
        Step("rules", ask_collective_rules, answer_collective_rules),
        Step("summary", ask_collective_summary, answer_collective_summary),
    ),
)


# --- 2. the unit's progress ----------------------------------------------------------------


async def ask_report(ctx: Ctx) -> Prompt | Go:
    found = await _unit_and_campaign(ctx)
    if found is None:
        return await _lost_unit(ctx)
    unit, campaign = found
    progress = await unit_progress(ctx.session, campaign.id, unit)
    summary = await gather_summary(ctx.session, campaign, unit, progress)
    missing = progress.missing
    # The state every view shows for the unit's list (an approved list above covers it).
    state = (await list_states(ctx.session, campaign.id, [unit]))[unit.id]
    lines = [
        "📊 " + render_summary(summary),
        _("• List sent upward: {status}").format(status=submission_label(state)),
    ]
    pages = max(1, -(-len(missing) // PAGE_SIZE))
    page = min(max(int(ctx.data.get("page", 0)), 0), pages - 1)
    ctx.data["page"] = page
    if missing:
        lines.append("")
        lines.append(
            _("Not registered yet ({n}), page {page}/{pages}:").format(
                n=len(missing), page=page + 1, pages=pages
            )
        )
        start = page * PAGE_SIZE
        for number, person in enumerate(missing[start : start + PAGE_SIZE], start=start + 1):
            lines.append(f"{number}. {person.full_name}")
    elif progress.roster:
        lines.append(_("Everyone on the roster has registered. 👏"))
    choices: list[Choice] = []
    if missing and not ctx.data.get("reminded") and registration_open(campaign, ctx.today):
        choices.append(Choice("remind", _("🔔 Remind those who have not registered")))
    choices.append(Choice("codes", _("🔑 Personal codes for those not in the bot yet")))
    if page + 1 < pages:
        choices.append(Choice("next", _("Next page »")))
    if page > 0:
        choices.append(Choice("prev", _("« Previous page")))
    choices.append(Choice("menu", _("🏠 Main menu")))
    return Prompt("\n".join(lines), tuple(choices), allow_back=False)


async def answer_report(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "next":
        ctx.data["page"] = int(ctx.data.get("page", 0)) + 1
        return Next("report")
    if answer.choice == "prev":
        ctx.data["page"] = int(ctx.data.get("page", 0)) - 1
        return Next("report")
    if answer.choice == "remind":
        await _remind(ctx)
        return Next("report")
    if answer.choice == "codes":
        found = await _unit_and_campaign(ctx)
        if found is not None:
            await say_personal_codes(ctx, found[0])
        return Next("report")
    return Finish()


async def _remind(ctx: Ctx) -> None:
    """A friendly nudge to everyone of the roster who has not registered (and can be reached)."""
    found = await _unit_and_campaign(ctx)
    if found is None:
        return
    unit, campaign = found
    leader = ctx.require_person()
    progress = await unit_progress(ctx.session, campaign.id, unit)
    # The leader's own name is on the roster too; a reminder to oneself is noise.
    missing = [p for p in progress.missing if p.id != leader.id]
    wanted = [p.id for p in missing if not p.reminders_muted]
    muted = len(missing) - len(wanted)
    reachable = await with_chat(ctx.session, wanted)

    def make_reply(person: Person) -> Reply:
        return Reply(
            _(
                "🔔 Hello {name}! {leader} ({unit}) reminds you to register for “{campaign}” "
                "by {deadline}. Type /dangky to register: it takes a minute."
            ).format(
                name=given_name(person.full_name),
                leader=leader.full_name,
                unit=unit.name,
                campaign=campaign.name,
                deadline=show_date(campaign.registration_deadline),
            )
        )

    # Once a day per member, whoever taps and however often (in the database: a second
    # leader, another chat or a restart does not send it again).
    fresh = await claim(
        ctx.session,
        campaign.id,
        NUDGE,
        [(person_id, f"{NUDGE}:{ctx.today.isoformat()}", None) for person_id in sorted(reachable)],
    )
    sent = await notify(ctx, sorted(person_id for person_id, _key in fresh), make_reply)
    already = len(reachable) - len(fresh)
    ctx.data["reminded"] = True
    audit(
        ctx.session,
        action="unit.remind",
        entity="unit",
        entity_id=unit.id,
        actor_id=leader.id,
        via="chat",
        campaign_id=campaign.id,
        sent=sent,
        already_today=already,
        no_chat=len(wanted) - len(reachable),
        muted=muted,
    )
    lines = [_("🔔 Reminder sent to {n} people.").format(n=sent)]
    if already:
        lines.append(
            _("{n} were already reminded today; they are reminded at most once a day.").format(
                n=already
            )
        )
    if len(wanted) - len(reachable):
        lines.append(
            _("{n} do not use the bot yet: please remind them in person.").format(
                n=len(wanted) - len(reachable)
            )
        )
        # Named, so the leader knows whom to hand the invitation (📨 /moi) at the workshop.
        never = [p.full_name for p in missing if p.id in wanted and p.id not in reachable]
        shown = ", ".join(never[:MAX_NEVER_NAMED]) + ("…" if len(never) > MAX_NEVER_NAMED else "")
        lines.append(
            _("They are: {names}. Give them the unit's invitation with /moi.").format(names=shown)
        )
    if muted:
        lines.append(_("{n} have turned reminders off.").format(n=muted))
    ctx.say("\n".join(lines))


UNIT_STATUS_FLOW = Flow(
    UNIT_STATUS,
    (
        unit_step("campaign"),
        running_campaign_step("report"),
        Step("report", ask_report, answer_report),
    ),
)


# --- 3. registering for a member who has no phone ------------------------------------------


async def ask_member_search(ctx: Ctx) -> Prompt | Go:
    unit = await leader_unit(ctx)
    if unit is None:
        return await _lost_unit(ctx)
    return Prompt(
        _(
            "Whom do you register for? Type part of the member's name (accents not needed), "
            "for example “hoa”."
        ),
        kind=InputKind.TEXT,
    )


async def answer_member_search(ctx: Ctx, answer: Answer) -> Go:
    unit = await leader_unit(ctx)
    if unit is None:
        return await _lost_unit(ctx)
    words = fold(answer.text or "").split()
    if not words:
        return Again(_("Please type part of the member's name."))
    matches = [
        p for p in await roster(ctx.session, unit) if all(w in fold(p.full_name) for w in words)
    ]
    if not matches:
        return Again(
            _(
                "Nobody on the roster of {unit} matches “{text}”. Try another part of the name."
            ).format(unit=unit.name, text=(answer.text or "")[:50])
        )
    ctx.data["matches"] = [p.id for p in matches[:MAX_MATCHES]]
    if len(matches) > MAX_MATCHES:
        ctx.say(
            _(
                "{n} people match; here are the first {shown}. Type more of the name to narrow it."
            ).format(n=len(matches), shown=MAX_MATCHES)
        )
    return Next("member")


async def ask_member(ctx: Ctx) -> Prompt | Go:
    unit = await leader_unit(ctx)
    if unit is None:
        return await _lost_unit(ctx)
    people = [
        p
        for pid in ctx.data.get("matches", [])
        if (p := await person_in_unit(ctx.session, pid, unit))
    ]
    if not people:
        return Next("search")
    choices = [
        Choice(f"p{p.id}", f"{p.full_name} — {p.position}" if p.position else p.full_name)
        for p in people
    ]
    choices.append(Choice("again", _("🔎 Search again")))
    return Prompt(_("Which member?"), tuple(choices))


async def answer_member(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "again":
        return Next("search")
    unit = await leader_unit(ctx)
    if unit is None:
        return await _lost_unit(ctx)
    person = await person_in_unit(ctx.session, int((answer.choice or "p0")[1:]), unit)
    if person is None:
        return Next("search")
    ctx.say(_("Registering on behalf of {name}.").format(name=person.full_name))
    # The title flow registers for ``for_person_id`` and marks the registration as entered
    # by the leader (source "leader", audit via "leader").
    return Switch("title", data={"for_person_id": person.id})


ON_BEHALF_FLOW = Flow(
    ON_BEHALF,
    (
        unit_step("search"),
        Step("search", ask_member_search, answer_member_search),
        Step("member", ask_member, answer_member),
    ),
)


# --- 4. sending the list upward ------------------------------------------------------------


def review_reply(
    summary: UnitSummary,
    submission_id: int,
    round_: int,
    sender: str,
    returned: str | None,
    *,
    names: tuple[str, int] | None = None,
    file: OutFile | None = None,
) -> Reply:
    """The message an officer gets for a list to review, with the two decision buttons.

    ``names``: the first page of names by title and how many pages there are (the notice
    carries them, and the unit's XLSX as ``file``); without them, a button shows them.
    """
    lines = [
        _("📥 A list for your approval (round {round}), sent by {sender}:").format(
            round=round_, sender=sender
        ),
        render_summary(summary),
    ]
    if returned:
        lines.append(_("Returned earlier because: {reason}").format(reason=returned))
    more: tuple[Choice, ...] = ()
    if names is not None:
        lines.append(names[0])
        if names[1] > 1:
            more = (Choice(f"!xemten:{submission_id}:1", _("👥 More names »")),)
    else:
        more = (Choice(f"!xemten:{submission_id}:0", _("👥 Names and Excel file")),)
    return Reply(
        "\n".join(lines),
        choices=(
            Choice(f"!approve:{submission_id}", _("✅ Approve")),
            Choice(f"!return:{submission_id}", _("↩️ Return")),
            *more,
        ),
        file=file,
    )


async def ask_send(ctx: Ctx) -> Prompt | Go:
    found = await _unit_and_campaign(ctx)
    if found is None:
        return await _lost_unit(ctx)
    unit, campaign = found
    submission = await submission_for(ctx.session, campaign.id, unit.id)
    status = submission.status if submission else SubmissionStatus.NOT_SENT
    if submission is not None and status == SubmissionStatus.PENDING:
        sent_on = submission.submitted_at or ctx.now
        ctx.say(
            _(
                "The list of {unit} was sent on {date} and is waiting for approval by the upper "
                "level."
            ).format(unit=unit.name, date=show_date(sent_on.astimezone(ctx.config.tz).date()))
        )
        return Finish()
    if status == SubmissionStatus.APPROVED:
        ctx.say(
            _(
                "The list of {unit} has already been approved. To change it, please ask your "
                "union officer to reopen it."
            ).format(unit=unit.name)
        )
        return Finish()
    summary = await gather_summary(ctx.session, campaign, unit)
    lines = [
        _("This list will be sent to the upper level for approval:"),
        render_summary(summary),
        _("Status now: {status}").format(status=submission_label(status)),
    ]
    if submission is not None and status == SubmissionStatus.RETURNED and submission.reason:
        lines.append(_("Returned because: {reason}").format(reason=submission.reason))
    return Prompt(
        "\n".join(lines),
        (
            Choice("send", _("📤 Send to the upper level")),
            Choice("names", _("🔎 Check the names first")),
            Choice("progress", _("📊 Unit progress")),
        ),
    )


async def answer_send(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "names":
        # handlers.flows.list_review: who registered what, each entry changeable.
        return Switch(
            "list_review",
            step="page",
            data={"unit_id": ctx.data.get("unit_id"), "campaign_id": ctx.data.get("campaign_id")},
        )
    if answer.choice == "progress":
        return Switch(
            UNIT_STATUS,
            step="report",
            data={"unit_id": ctx.data.get("unit_id"), "campaign_id": ctx.data.get("campaign_id")},
        )
    return await _submit(ctx)


async def _submit(ctx: Ctx) -> Go:
    found = await _unit_and_campaign(ctx)
    if found is None:
        return await _lost_unit(ctx)
    unit, campaign = found
    leader = ctx.require_person()
    submission = await submission_for(ctx.session, campaign.id, unit.id)
    if submission is None:
        submission = UnitSubmission(
            campaign_id=campaign.id, unit_id=unit.id, status=SubmissionStatus.NOT_SENT, round=0
        )
        ctx.session.add(submission)
    elif submission.status in (SubmissionStatus.PENDING, SubmissionStatus.APPROVED):
        # Another leader of the unit sent it meanwhile.
        ctx.say(
            _("The list of {unit} is already “{status}”.").format(
                unit=unit.name, status=submission_label(submission.status)
            )
        )
        return Finish()
    await ctx.session.flush()
    returned = submission.reason if submission.status == SubmissionStatus.RETURNED else None
    moved = await move_submission(
        ctx.session,
        submission,
        submission.status,
        status=SubmissionStatus.PENDING,
        round=UnitSubmission.round + 1,
        submitted_at=ctx.now,
        submitted_by_id=leader.id,
    )
    if not moved:  # another leader of the unit sent it at the same moment
        ctx.say(
            _("The list of {unit} is already “{status}”.").format(
                unit=unit.name, status=submission_label(submission.status)
            )
        )
        return Finish()
    audit(
        ctx.session,
        action="submission.submit",
        entity="unit_submission",
        entity_id=submission.id,
        actor_id=leader.id,
        via="chat",
        unit_id=unit.id,
        campaign_id=campaign.id,
        round=submission.round,
    )
    summary = await gather_summary(ctx.session, campaign, unit)
    officers = await officers_above(ctx.session, unit)
    submission_id, round_ = submission.id, submission.round
    # The officer decides with the names and the unit's XLSX in front of them.
    xlsx = await list_xlsx(ctx.session, campaign, unit) if officers else None

    names = await read_names(ctx.session, campaign, unit)
    sent = await notify(
        ctx,
        officers,
        lambda _officer: review_reply(
            summary,
            submission_id,
            round_,
            leader.full_name,
            returned,
            names=(names.page_text(0), names.pages),
            file=xlsx,
        ),
    )
    status = submission_label(SubmissionStatus.PENDING)
    if sent:
        ctx.say(
            _(
                "📤 Sent! The list of {unit} is now “{status}”. The upper level has been "
                "notified ({n} officers); I will tell you when they decide."
            ).format(unit=unit.name, status=status, n=sent)
        )
    else:
        ctx.say(
            _(
                "📤 The list of {unit} is marked as sent (“{status}”), but no officer of the "
                "upper level uses the bot yet, so nobody has been notified. Please tell your "
                "upper-level union directly."
            ).format(unit=unit.name, status=status)
        )
    return Finish()


SUBMIT_FLOW = Flow(
    SUBMIT,
    (
        unit_step("campaign"),
        running_campaign_step("send"),
        Step("send", ask_send, answer_send),
    ),
)

LEADER_FLOWS = (COLLECTIVE_FLOW, UNIT_STATUS_FLOW, ON_BEHALF_FLOW, SUBMIT_FLOW)
