"""“Đăng ký của tôi”: a person's registrations with their status; withdraw before the deadline."""

from __future__ import annotations

from handlers.engine.flow import Again, Answer, Ctx, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, Prompt
from handlers.flows.common import (
    registration_open,
    show_date,
    status_label,
    title_label,
)
from handlers.i18n import _
from storage.models import RegistrationStatus
from storage.repo import audit, person_registrations, registration_of, titles_by_code

MINE = "mine"
WITHDRAWABLE = (RegistrationStatus.DRAFT, RegistrationStatus.SUBMITTED, RegistrationStatus.RETURNED)


async def ask_list(ctx: Ctx) -> Prompt:
    person = ctx.require_person()
    registrations = await person_registrations(ctx.session, person.id)
    if not registrations:
        return Prompt(
            _("You have no registrations yet."),
            (Choice("register", _("📝 Register a title")), Choice("menu", _("🏠 Main menu"))),
            allow_back=False,
        )
    titles = await titles_by_code(ctx.session, list({r.title_code for r in registrations}))
    lines = [_("Your registrations:")]
    choices = []
    for reg in registrations:
        title = titles.get(reg.title_code)
        name = title_label(title) if title else reg.title_code
        lines.append(
            _("• {title}: {status}, receipt {receipt}, {date}").format(
                title=name,
                status=status_label(reg.status),
                receipt=reg.receipt_no,
                date=show_date(reg.created_at.astimezone(ctx.config.tz).date()),
            )
        )
        if reg.status in WITHDRAWABLE and registration_open(reg.campaign, ctx.today):
            short = title.abbreviation if title and title.abbreviation else name
            choices.append(Choice(f"w{reg.id}", _("Withdraw {title}").format(title=short)))
    choices.append(Choice("menu", _("🏠 Main menu")))
    return Prompt("\n".join(lines), tuple(choices), allow_back=False)


async def answer_list(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice == "register":
        return Switch("title")
    if choice.startswith("w") and choice[1:].isdigit():
        ctx.data["withdraw_id"] = int(choice[1:])
        return Next("confirm_withdraw")
    return Finish()


async def ask_confirm_withdraw(ctx: Ctx) -> Prompt | Go:
    person = ctx.require_person()
    reg = await registration_of(ctx.session, ctx.data.get("withdraw_id", 0), person.id)
    if reg is None:
        return Next("list")
    title = (await titles_by_code(ctx.session, [reg.title_code])).get(reg.title_code)
    return Prompt(
        _("Withdraw your registration “{title}” (receipt {receipt})?").format(
            title=title_label(title) if title else reg.title_code, receipt=reg.receipt_no
        ),
        (Choice("yes", _("Yes, withdraw it")), Choice("no", _("No, keep it"))),
    )


async def answer_confirm_withdraw(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice != "yes":
        return Next("list")
    person = ctx.require_person()
    # The id came from a button we made, but it is checked against the owner all the same.
    reg = await registration_of(ctx.session, ctx.data.get("withdraw_id", 0), person.id)
    if reg is None or reg.status not in WITHDRAWABLE:
        return Again(_("This registration can no longer be withdrawn."))
    if not registration_open(reg.campaign, ctx.today):
        ctx.say(
            _("The deadline ({deadline}) has passed; please ask your unit leader.").format(
                deadline=show_date(reg.campaign.registration_deadline)
            )
        )
        return Next("list")
    reg.status = RegistrationStatus.WITHDRAWN
    reg.withdrawn_at = ctx.now
    audit(
        ctx.session,
        action="registration.withdraw",
        entity="registration",
        entity_id=reg.id,
        actor_id=person.id,
        via="chat",
        receipt_no=reg.receipt_no,
    )
    ctx.say(_("Withdrawn: receipt {receipt}.").format(receipt=reg.receipt_no))
    return Next("list")


MINE_FLOW = Flow(
    MINE,
    (
        Step("list", ask_list, answer_list),
        Step("confirm_withdraw", ask_confirm_withdraw, answer_confirm_withdraw),
    ),
)
