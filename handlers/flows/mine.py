"""“Đăng ký của tôi”: what a person has registered, with status and receipt; withdraw before
the deadline.

Three kinds are listed: personal titles, initiatives (as author or co-author; only the
registrant may withdraw one) and, for unit leaders, the works of the units they lead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from handlers.engine.flow import Again, Answer, Ctx, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, Prompt
from handlers.flows.common import (
    refuse_if_locked,
    registration_open,
    show_date,
    title_label,
)
from handlers.flows.list_review import depending_titles, prerequisite_warning
from handlers.i18n import _, current_locale
from handlers.status import both_states_label
from handlers.text import format_money
from storage.campaigns import works_open
from storage.counts import list_states
from storage.models import (
    Initiative,
    Person,
    Registration,
    RegistrationStatus,
    SubmissionStatus,
    Unit,
    Work,
)
from storage.repo import (
    audit,
    initiative_of,
    person_initiatives,
    person_registrations,
    registration_of,
    titles_by_code,
    unit_works,
    units_led_by,
    work_of,
)

MINE = "mine"
WITHDRAWABLE = (RegistrationStatus.DRAFT, RegistrationStatus.SUBMITTED, RegistrationStatus.RETURNED)
# Names on buttons are cut: a phone shows about this many characters.
BUTTON_NAME = 28
# The plaque button says more before the name ("🏷️ Đã gắn biển: "): a shorter name.
PLAQUE_NAME = 16

# Kinds of things on the list: the letter after "w" in a withdraw button's id.
TITLE, INITIATIVE, WORK = "r", "i", "w"
_ENTITY = {TITLE: "registration", INITIATIVE: "initiative", WORK: "work"}


class _Approvals:
    """The state of the unit list covering each row (storage.counts.list_states, per
    campaign and unit, asked once per list shown), said beside the row's own state. An
    approved list locks its rows, so a member sees it and is not offered a withdrawal the
    bot would then refuse."""

    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self._known: dict[tuple[int, int], str] = {}

    async def list_state(self, row: Registration | Initiative | Work) -> str:
        if row.unit_id is None:
            return SubmissionStatus.NOT_SENT
        key = (row.campaign_id, row.unit_id)
        if key not in self._known:
            unit = await self.ctx.session.get(Unit, row.unit_id)
            states = await list_states(self.ctx.session, row.campaign_id, [unit] if unit else [])
            self._known[key] = states.get(row.unit_id, SubmissionStatus.NOT_SENT)
        return self._known[key]

    async def covers(self, row: Registration | Initiative | Work) -> bool:
        if row.status not in WITHDRAWABLE:
            return False
        return await self.list_state(row) == SubmissionStatus.APPROVED

    async def status(self, row: Registration | Initiative | Work) -> str:
        return both_states_label(row.status, await self.list_state(row))


@dataclass
class _Item:
    """One withdrawable thing, whatever its kind."""

    kind: str
    row: Registration | Initiative | Work
    label: str

    def can_withdraw(self, ctx: Ctx) -> bool:
        return self.row.status in WITHDRAWABLE and still_open(self.row, ctx.today)


def still_open(row: Registration | Initiative | Work, today: date) -> bool:
    """Titles and initiatives until the registration deadline; a work until its phase ends."""
    if isinstance(row, Work):
        return works_open(row.campaign, today, row.occasion_on)
    return registration_open(row.campaign, today)


def _short(name: str, length: int = BUTTON_NAME) -> str:
    return name if len(name) <= length else name[: length - 1].rstrip() + "…"


def plaque_pending(work: Work) -> bool:
    """A live work whose plaque was requested and is not up yet (đề nghị gắn biển)."""
    return (
        work.plaque_requested
        and work.plaque_installed_on is None
        and work.status != RegistrationStatus.WITHDRAWN
    )


def _day(ctx: Ctx, row: Registration | Initiative | Work) -> str:
    return show_date(row.created_at.astimezone(ctx.config.tz).date())


# --- the list --------------------------------------------------------------------------------


async def _titles(
    ctx: Ctx, person: Person, approvals: _Approvals
) -> tuple[list[str], list[Choice]]:
    registrations = await person_registrations(ctx.session, person.id)
    if not registrations:
        return [], []
    titles = await titles_by_code(ctx.session, list({r.title_code for r in registrations}))
    lines = [_("Your registrations:")]
    choices = []
    for reg in registrations:
        title = titles.get(reg.title_code)
        name = title_label(title) if title else reg.title_code
        lines.append(
            _("• {title}: {status}, receipt {receipt}, {date}").format(
                title=name,
                status=await approvals.status(reg),
                receipt=reg.receipt_no,
                date=_day(ctx, reg),
            )
        )
        if _Item(TITLE, reg, name).can_withdraw(ctx) and not await approvals.covers(reg):
            short = title.abbreviation if title and title.abbreviation else name
            choices.append(Choice(f"w{TITLE}{reg.id}", _("Withdraw {title}").format(title=short)))
    return lines, choices


async def _initiatives(
    ctx: Ctx, person: Person, approvals: _Approvals
) -> tuple[list[str], list[Choice]]:
    initiatives = await person_initiatives(ctx.session, person.id)
    if not initiatives:
        return [], []
    lines = [_("💡 Initiatives:")]
    choices = []
    for initiative in initiatives:
        line = _("• {name}: {status}, receipt {receipt}, {date}").format(
            name=initiative.name,
            status=await approvals.status(initiative),
            receipt=initiative.receipt_no,
            date=_day(ctx, initiative),
        )
        if initiative.person_id != person.id:
            line += " " + _("(you are a co-author)")
        lines.append(line)
        withdrawable = _Item(INITIATIVE, initiative, "").can_withdraw(ctx)
        if (
            initiative.person_id == person.id
            and withdrawable
            and not await approvals.covers(initiative)
        ):
            choices.append(
                Choice(
                    f"w{INITIATIVE}{initiative.id}",
                    _("Withdraw the initiative “{name}”").format(name=_short(initiative.name)),
                )
            )
    return lines, choices


async def _works(ctx: Ctx, person: Person, approvals: _Approvals) -> tuple[list[str], list[Choice]]:
    led = await units_led_by(ctx.session, person.id)
    works = await unit_works(ctx.session, [u.id for u in led])
    if not works:
        return [], []
    lines = [_("🏗️ Commemorative works of your unit:")]
    choices = []
    for work in works:
        name = f"{work.name} ({work.unit.name})" if len(led) > 1 else work.name
        line = _("• {name}: {value}, {status}, receipt {receipt}").format(
            name=name,
            value=format_money(work.value, current_locale()),
            status=await approvals.status(work),
            receipt=work.receipt_no,
        )
        if work.plaque_installed_on is not None:
            line += "; " + _("plaque put up on {day}").format(
                day=show_date(work.plaque_installed_on)
            )
        elif work.plaque_requested:
            line += "; " + _("plaque requested")
        lines.append(line)
        if plaque_pending(work):
            # Followed up through the year: the leader says when the plaque is up.
            choices.append(
                Choice(
                    f"p{work.id}",
                    _("🏷️ Plaque put up: {name}").format(name=_short(work.name, PLAQUE_NAME)),
                )
            )
        if _Item(WORK, work, "").can_withdraw(ctx) and not await approvals.covers(work):
            choices.append(
                Choice(
                    f"w{WORK}{work.id}",
                    _("Withdraw the work “{name}”").format(name=_short(work.name)),
                )
            )
    return lines, choices


async def ask_list(ctx: Ctx) -> Prompt:
    person = ctx.require_person()
    lines: list[str] = []
    choices: list[Choice] = []
    approvals = _Approvals(ctx)
    for section in (_titles, _initiatives, _works):
        more_lines, more_choices = await section(ctx, person, approvals)
        if lines and more_lines:
            lines.append("")
        lines += more_lines
        choices += more_choices
    if not lines:
        return Prompt(
            _("You have no registrations yet."),
            (
                Choice("register", _("📝 Register a title")),
                Choice("initiative", _("💡 Register an initiative")),
                Choice("menu", _("🏠 Main menu")),
            ),
            allow_back=False,
        )
    choices.append(Choice("menu", _("🏠 Main menu")))
    return Prompt("\n".join(lines), tuple(choices), allow_back=False)


async def answer_list(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice == "register":
        return Switch("title")
    if choice == "initiative":
        return Switch("initiative")
    if len(choice) > 2 and choice[0] == "w" and choice[1] in _ENTITY and choice[2:].isdigit():
        ctx.data["withdraw"] = [choice[1], int(choice[2:])]
        return Next("confirm_withdraw")
    if len(choice) > 1 and choice[0] == "p" and choice[1:].isdigit():
        ctx.data["plaque"] = int(choice[1:])
        return Next("confirm_plaque")
    return Finish()


# --- the plaque of a work (đề nghị gắn biển → đã gắn biển) ------------------------------------


async def _plaque_work(ctx: Ctx) -> Work | None:
    """The work picked, only while it belongs to a unit the person leads and waits for its
    plaque."""
    led = await units_led_by(ctx.session, ctx.require_person().id)
    work = await work_of(ctx.session, int(ctx.data.get("plaque") or 0), [u.id for u in led])
    return work if work is not None and plaque_pending(work) else None


async def ask_confirm_plaque(ctx: Ctx) -> Prompt | Go:
    work = await _plaque_work(ctx)
    if work is None:
        return Next("list")
    return Prompt(
        _("Has the plaque of the work “{name}” (receipt {receipt}) been put up?").format(
            name=work.name, receipt=work.receipt_no
        ),
        (Choice("yes", _("Yes, it is up")), Choice("no", _("Not yet"))),
        one_per_row=False,
    )


async def answer_confirm_plaque(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice != "yes":
        return Next("list")
    work = await _plaque_work(ctx)
    if work is None:
        return Again(_("This work has no plaque waiting to be put up."))
    work.plaque_installed_on = ctx.today
    audit(
        ctx.session,
        action="work.plaque_installed",
        entity="work",
        entity_id=work.id,
        actor_id=ctx.require_person().id,
        via="chat",
        receipt_no=work.receipt_no,
        on=ctx.today.isoformat(),
    )
    ctx.say(
        _("Noted: the plaque of “{name}” was put up on {day}.").format(
            name=work.name, day=show_date(ctx.today)
        )
    )
    return Next("list")


# --- withdrawing -----------------------------------------------------------------------------


async def _chosen(ctx: Ctx) -> _Item | None:
    """The item picked for withdrawal, loaded again and checked against the person.

    Ids come from buttons we made, but they are never trusted: a registration or initiative
    must be the person's own, a work must belong to a unit they still lead.
    """
    person = ctx.require_person()
    kind, item_id = (ctx.data.get("withdraw") or ["", 0])[:2]
    if kind == TITLE:
        reg = await registration_of(ctx.session, item_id, person.id)
        if reg is None:
            return None
        title = (await titles_by_code(ctx.session, [reg.title_code])).get(reg.title_code)
        return _Item(kind, reg, title_label(title) if title else reg.title_code)
    if kind == INITIATIVE:
        initiative = await initiative_of(ctx.session, item_id, person.id)
        return _Item(kind, initiative, initiative.name) if initiative else None
    if kind == WORK:
        led = await units_led_by(ctx.session, person.id)
        work = await work_of(ctx.session, item_id, [u.id for u in led])
        return _Item(kind, work, work.name) if work else None
    return None


async def ask_confirm_withdraw(ctx: Ctx) -> Prompt | Go:
    item = await _chosen(ctx)
    if item is None:
        return Next("list")
    text = _("Withdraw your registration “{title}” (receipt {receipt})?").format(
        title=item.label, receipt=item.row.receipt_no
    )
    row = item.row
    if isinstance(row, Registration) and row.person_id is not None:
        # Withdrawing LĐTT under a CSTĐCS: said before, not discovered by the officer.
        depending = await depending_titles(ctx, row.campaign, row.person_id, row.title_code)
        if depending:
            text += "\n" + prerequisite_warning(depending)
    return Prompt(text, (Choice("yes", _("Yes, withdraw it")), Choice("no", _("No, keep it"))))


async def answer_confirm_withdraw(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice != "yes":
        return Next("list")
    person = ctx.require_person()
    item = await _chosen(ctx)
    if item is None or item.row.status not in WITHDRAWABLE:
        return Again(_("This registration can no longer be withdrawn."))
    row = item.row
    if isinstance(row, Work) and not still_open(row, ctx.today):
        ctx.say(_("Works of this phase can no longer be withdrawn; please ask your union officer."))
        return Next("list")
    if not still_open(row, ctx.today):
        ctx.say(
            _("The deadline ({deadline}) has passed; please ask your unit leader.").format(
                deadline=show_date(row.campaign.registration_deadline)
            )
        )
        return Next("list")
    if await refuse_if_locked(ctx, row.campaign_id, row.unit_id):
        return Next("list")
    row.status = RegistrationStatus.WITHDRAWN
    row.withdrawn_at = ctx.now
    entity = _ENTITY[item.kind]
    audit(
        ctx.session,
        action=f"{entity}.withdraw",
        entity=entity,
        entity_id=row.id,
        actor_id=person.id,
        via="chat",
        receipt_no=row.receipt_no,
    )
    ctx.say(_("Withdrawn: receipt {receipt}.").format(receipt=row.receipt_no))
    return Next("list")


MINE_FLOW = Flow(
    MINE,
    (
        Step("list", ask_list, answer_list),
        Step("confirm_withdraw", ask_confirm_withdraw, answer_confirm_withdraw),
        Step("confirm_plaque", ask_confirm_plaque, answer_confirm_plaque),
    ),
)
