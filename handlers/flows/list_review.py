"""The leader's look at the unit's list before sending it: who registered what, by title, a
page at a time; each entry can be changed to another title or withdrawn by the leader (the
audit log says it was the leader, and the member is told). Reached from "Gửi danh sách lên
cấp trên" and straight from a returned list's notice.
"""

from __future__ import annotations

from sqlalchemy import select

from handlers.engine.flow import Again, Answer, Ctx, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, Prompt, Reply
from handlers.flows.common import draft_campaign, refuse_if_locked, title_label
from handlers.flows.leader import (
    SUBMIT,
    leader_unit,
    running_campaign_step,
    short_title,
    submission_label,
    unit_step,
)
from handlers.flows.names import names_lines, pages_of
from handlers.i18n import _
from handlers.notify import notify
from handlers.rules import effective_rules
from storage.list_people import ListEntry, list_entries
from storage.models import (
    Campaign,
    Person,
    Registration,
    RegistrationStatus,
    SubmissionStatus,
    Title,
    TitleTarget,
    Unit,
)
from storage.repo import LIVE_STATUSES, audit, live_registration, titles_by_code
from storage.units import in_subtree, submission_for

LIST_REVIEW = "list_review"
PER_PAGE = 8
MAX_BUTTON = 32  # characters a phone shows on one button line


def _button(text: str) -> str:
    return text if len(text) <= MAX_BUTTON else text[: MAX_BUTTON - 1].rstrip() + "…"


async def depending_titles(ctx: Ctx, campaign: Campaign, person_id: int, code: str) -> list[Title]:
    """The person's other live titles that require ``code`` (CSTĐCS needs LĐTT)."""
    rows = await ctx.session.scalars(
        select(Registration.title_code).where(
            Registration.campaign_id == campaign.id,
            Registration.person_id == person_id,
            Registration.status.in_(LIVE_STATUSES),
            Registration.title_code != code,
        )
    )
    others = await titles_by_code(ctx.session, sorted(set(rows)))
    return [
        title
        for title in others.values()
        if code
        in (
            effective_rules(title.code, title.rules, campaign.settings).get("requires_titles") or []
        )
    ]


def prerequisite_warning(titles: list[Title]) -> str:
    return _(
        "⚠️ Also registered: {titles}, which requires this title. Without it, that "
        "registration no longer meets its conditions."
    ).format(titles=", ".join(title_label(t) for t in titles))


async def _unit_campaign(ctx: Ctx) -> tuple[Unit, Campaign] | None:
    unit = await leader_unit(ctx)
    campaign = await draft_campaign(ctx)
    return (unit, campaign) if unit is not None and campaign is not None else None


async def _entries(ctx: Ctx, unit: Unit, campaign: Campaign) -> list[ListEntry]:
    return await list_entries(ctx.session, campaign.id, unit)


# --- the pages ---------------------------------------------------------------------------


async def ask_page(ctx: Ctx) -> Prompt | Go:
    found = await _unit_campaign(ctx)
    if found is None:
        ctx.say(_("You are no longer a leader of this unit."))
        return Finish()
    unit, campaign = found
    submission = await submission_for(ctx.session, campaign.id, unit.id)
    status = submission.status if submission else SubmissionStatus.NOT_SENT
    if status in (SubmissionStatus.PENDING, SubmissionStatus.APPROVED):
        ctx.say(
            _("The list of {unit} is “{status}”, so its entries cannot be changed now.").format(
                unit=unit.name, status=submission_label(status)
            )
        )
    entries = await _entries(ctx, unit, campaign)
    titles = await titles_by_code(ctx.session, sorted({e.title_code for e in entries}))
    pages = pages_of(entries, PER_PAGE)
    page = min(max(int(ctx.data.get("page", 0)), 0), pages - 1)
    ctx.data["page"] = page
    shown = entries[page * PER_PAGE : (page + 1) * PER_PAGE]
    lines = [
        _("📋 The list of {unit}, by title (page {page}/{pages}):").format(
            unit=unit.name, page=page + 1, pages=pages
        )
    ]
    if submission is not None and status == SubmissionStatus.RETURNED and submission.reason:
        lines.append(_("Returned because: {reason}").format(reason=submission.reason))
    if not entries:
        lines.append(_("Nobody has registered a personal title yet."))
    lines += names_lines(entries, titles, page, PER_PAGE)
    editable = status not in (SubmissionStatus.PENDING, SubmissionStatus.APPROVED)
    choices: list[Choice] = []
    if editable:
        lines.append("\n" + _("Tap a name to change or withdraw that registration."))
        for number, entry in enumerate(shown, start=page * PER_PAGE + 1):
            title = titles.get(entry.title_code)
            name = short_title(title) if title else entry.title_code
            choices.append(
                Choice(
                    f"e{entry.registration_id}", _button(f"{number}. {entry.full_name} – {name}")
                )
            )
    if page > 0:
        choices.append(Choice("prev", _("« Previous page")))
    if page < pages - 1:
        choices.append(Choice("next", _("Next page »")))
    if editable:
        choices.append(Choice("send", _("📤 Send to the upper level")))
    return Prompt("\n".join(lines), tuple(choices))


async def answer_page(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice in ("prev", "next"):
        ctx.data["page"] = int(ctx.data.get("page", 0)) + (1 if choice == "next" else -1)
        return Next("page")
    if choice == "send":
        data = {"unit_id": ctx.data.get("unit_id"), "campaign_id": ctx.data.get("campaign_id")}
        return Switch(SUBMIT, step="send", data=data)
    if choice.startswith("e") and choice[1:].isdigit():
        ctx.data["entry"] = int(choice[1:])
        return Next("entry")
    return Again(
        _("Please tap a name or a page button.")
        if ctx.shows_buttons
        else _("Please type the number of a name or of a page.")
    )


# --- one entry -----------------------------------------------------------------------------


async def _entry(ctx: Ctx) -> tuple[Registration, Person, Title | None, Campaign] | None:
    """The entry picked, loaded again: it must still be on this unit's list and live."""
    found = await _unit_campaign(ctx)
    if found is None:
        return None
    unit, campaign = found
    reg = await ctx.session.scalar(
        select(Registration.id)
        .join(Unit, Unit.id == Registration.unit_id)
        .where(
            Registration.id == int(ctx.data.get("entry", 0)),
            Registration.campaign_id == campaign.id,
            Registration.is_collective.is_(False),
            Registration.status.in_(LIVE_STATUSES),
            in_subtree(unit),
        )
    )
    row = await ctx.session.get(Registration, reg) if reg else None
    person = await ctx.session.get(Person, row.person_id) if row and row.person_id else None
    if row is None or person is None:
        return None
    title = (await titles_by_code(ctx.session, [row.title_code])).get(row.title_code)
    return row, person, title, campaign


async def ask_entry(ctx: Ctx) -> Prompt | Go:
    found = await _entry(ctx)
    if found is None:
        ctx.say(_("That entry is no longer on the list."))
        return Next("page")
    row, person, title, _campaign = found
    return Prompt(
        _("{name}: {title}, receipt {receipt}. What do you want to do?").format(
            name=person.full_name,
            title=title_label(title) if title else row.title_code,
            receipt=row.receipt_no,
        ),
        (
            Choice("change", _("🔁 Change the title")),
            Choice("withdraw", _("🗑 Withdraw this entry")),
            Choice("list", _("📋 Back to the list")),
        ),
    )


async def answer_entry(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "change":
        return Next("change")
    if answer.choice == "withdraw":
        return Next("withdraw")
    return Next("page")


async def _tell_member(ctx: Ctx, person: Person, text: str) -> None:
    await notify(ctx, [person.id], lambda _member: Reply(text))


async def ask_withdraw(ctx: Ctx) -> Prompt | Go:
    found = await _entry(ctx)
    if found is None:
        return Next("page")
    row, person, title, campaign = found
    text = _("Withdraw “{title}” of {name} (receipt {receipt})? {name} will be told.").format(
        title=title_label(title) if title else row.title_code,
        name=person.full_name,
        receipt=row.receipt_no,
    )
    depending = await depending_titles(ctx, campaign, person.id, row.title_code)
    if depending:
        text += "\n" + prerequisite_warning(depending)
    return Prompt(text, (Choice("yes", _("Yes, withdraw it")), Choice("no", _("No, keep it"))))


async def answer_withdraw(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice != "yes":
        return Next("page")
    found = await _entry(ctx)
    if found is None:
        return Next("page")
    row, person, title, campaign = found
    if await refuse_if_locked(ctx, campaign.id, row.unit_id):
        return Next("page")
    row.status = RegistrationStatus.WITHDRAWN
    row.withdrawn_at = ctx.now
    leader = ctx.require_person()
    audit(
        ctx.session,
        action="registration.withdraw",
        entity="registration",
        entity_id=row.id,
        actor_id=leader.id,
        via="leader",
        receipt_no=row.receipt_no,
        person_id=person.id,
    )
    label = title_label(title) if title else row.title_code
    await _tell_member(
        ctx,
        person,
        _("Your union leader {leader} withdrew your registration “{title}” ({receipt}).").format(
            leader=leader.full_name, title=label, receipt=row.receipt_no
        ),
    )
    ctx.say(_("Withdrawn: receipt {receipt}.").format(receipt=row.receipt_no))
    return Next("page")


async def _other_titles(ctx: Ctx, campaign: Campaign, row: Registration) -> list[Title]:
    titles = await titles_by_code(ctx.session, campaign.title_codes)
    return [
        titles[c]
        for c in campaign.title_codes
        if c in titles
        and c != row.title_code
        and titles[c].target in (TitleTarget.INDIVIDUAL, TitleTarget.BOTH)
    ]


async def ask_change(ctx: Ctx) -> Prompt | Go:
    found = await _entry(ctx)
    if found is None:
        return Next("page")
    row, person, title, campaign = found
    others = await _other_titles(ctx, campaign, row)
    if not others:
        ctx.say(_("This campaign has no other personal title to change to."))
        return Next("entry")
    text = _("Change “{title}” of {name} to which title?").format(
        title=title_label(title) if title else row.title_code, name=person.full_name
    )
    depending = await depending_titles(ctx, campaign, person.id, row.title_code)
    if depending:
        text += "\n" + prerequisite_warning(depending)
    return Prompt(text, tuple(Choice(t.code, title_label(t)) for t in others))


async def answer_change(ctx: Ctx, answer: Answer) -> Go:
    found = await _entry(ctx)
    if found is None:
        return Next("page")
    row, person, old_title, campaign = found
    new = {t.code: t for t in await _other_titles(ctx, campaign, row)}.get(answer.choice or "")
    if new is None:
        return Again(_("Please choose one of the titles."))
    if await live_registration(ctx.session, campaign.id, person.id, new.code) is not None:
        return Again(
            _("{name} has already registered “{title}”. Please choose another one.").format(
                name=person.full_name, title=title_label(new)
            )
        )
    if await refuse_if_locked(ctx, campaign.id, row.unit_id):
        return Next("page")
    old_code = row.title_code
    row.title_code = new.code
    leader = ctx.require_person()
    audit(
        ctx.session,
        action="registration.change_title",
        entity="registration",
        entity_id=row.id,
        actor_id=leader.id,
        via="leader",
        receipt_no=row.receipt_no,
        person_id=person.id,
        old=old_code,
        new=new.code,
    )
    old_label = title_label(old_title) if old_title else old_code
    await _tell_member(
        ctx,
        person,
        _(
            "Your union leader {leader} changed your registration {receipt} from “{old}” to "
            "“{new}”."
        ).format(
            leader=leader.full_name, receipt=row.receipt_no, old=old_label, new=title_label(new)
        ),
    )
    ctx.say(
        _("Changed: {name} now registers “{title}”.").format(
            name=person.full_name, title=title_label(new)
        )
    )
    return Next("page")


LIST_REVIEW_FLOW = Flow(
    LIST_REVIEW,
    (
        unit_step("campaign"),
        running_campaign_step("page"),
        Step("page", ask_page, answer_page),
        Step("entry", ask_entry, answer_entry),
        Step("withdraw", ask_withdraw, answer_withdraw),
        Step("change", ask_change, answer_change),
    ),
)
