"""/dulieucuatoi: what the bot keeps about the person, and their request to erase it
(Nghị định 13/2023/NĐ-CP on personal data protection).

The request is recorded in the audit log and sent to the union officers of the person's
unit (or of the nearest unit above that has officers); an officer carries it out with
``thidua person erase``, which anonymises the person but keeps the counts (storage.personal).
"""

from __future__ import annotations

from datetime import datetime

from handlers.engine.flow import Answer, Ctx, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, Prompt, Reply
from handlers.flows.common import show_date, status_label
from handlers.flows.link import channel_label
from handlers.flows.onboarding import role_name
from handlers.i18n import _
from handlers.notify import notify
from handlers.wording import press
from storage.claims import pending_claim
from storage.models import Person
from storage.personal import (
    PersonalData,
    erase_officers,
    personal_data,
    request_erasure,
)
from storage.repo import titles_by_code

MY_DATA = "mydata"
# Items listed per kind; the rest is counted.
MAX_LISTED = 10


def _activity_label(action: str) -> str:
    """The audit log's action codes, in words, grouped the way a person thinks of them."""
    if action in ("person.onboard", "person.link", "person.import"):
        return _("sign-up and linked chats")
    if action.endswith(".withdraw"):
        return _("withdrawals")
    if action.startswith(("registration.", "initiative.", "work.")):
        return _("registrations")
    if action.startswith("reminders."):
        return _("reminder settings")
    if action.startswith("submission."):
        return _("unit lists")
    if action.startswith("person.erase"):
        return _("erasure requests")
    return _("other")


def _day(ctx: Ctx, when: datetime | None) -> str:
    return show_date(when.astimezone(ctx.config.tz).date()) if when else "—"


async def summary_text(ctx: Ctx, data: PersonalData) -> str:
    """The person's data as a few readable lines."""
    person = data.person
    lines = [
        _("This is what the bot keeps about you:"),
        _("• Name: {name}").format(name=person.full_name),
        _("• Phone: {phone}").format(phone=person.phone or "—"),
        _("• Unit: {unit}").format(unit=" › ".join(data.unit_path) or "—"),
        _("• Position: {position}").format(position=person.position or "—"),
    ]
    if data.roles:
        roles = ", ".join(f"{role_name(role)} ({unit})" for role, unit in data.roles)
        lines.append(_("• Roles: {roles}").format(roles=roles))
    for identity in data.identities:
        lines.append(
            _("• Chat account: {app} {id}, since {date}").format(
                app=channel_label(identity.channel),
                id=identity.masked_id,
                date=_day(ctx, identity.since),
            )
        )
    lines.append(
        _("• Reminders: {state}").format(
            state=_("off") if person.reminders_muted else _("on"),
        )
    )
    titles = await titles_by_code(ctx.session, list({r.title_code for r in data.registrations}))
    lines.append(_("• Title registrations: {n}").format(n=len(data.registrations)))
    for reg in data.registrations[:MAX_LISTED]:
        title = titles.get(reg.title_code)
        lines.append(
            f"   – {title.name if title else reg.title_code} ({reg.receipt_no}, "
            f"{status_label(reg.status)})"
        )
    lines.append(_("• Initiatives: {n}").format(n=len(data.initiatives)))
    for initiative in data.initiatives[:MAX_LISTED]:
        lines.append(f"   – {initiative.name} ({initiative.receipt_no})")
    lines.append(_("• Commemorative works you entered: {n}").format(n=len(data.works)))
    for work in data.works[:MAX_LISTED]:
        lines.append(f"   – {work.name} ({work.receipt_no})")
    if data.audit_counts:
        groups: dict[str, int] = {}
        for action, count in data.audit_counts.items():
            label = _activity_label(action)
            groups[label] = groups.get(label, 0) + count
        lines.append(
            _("• Activity log: {n} entries ({groups}), the last on {date}").format(
                n=sum(groups.values()),
                groups=", ".join(f"{label} {count}" for label, count in groups.items()),
                date=_day(ctx, data.audit_last),
            )
        )
    lines.append("")
    lines.append(
        _(
            "This data is used only for the emulation registration of your trade union. You "
            "may ask for it to be erased: your registrations then stay in the statistics, "
            "without your name, phone or chat accounts."
        )
    )
    if data.erase_requested_at is not None:
        lines.append(
            _("You asked for erasure on {date}; the union officers will carry it out.").format(
                date=_day(ctx, data.erase_requested_at)
            )
        )
    return "\n".join(lines)


async def ask_show(ctx: Ctx) -> Prompt:
    person = ctx.require_person()
    data = await personal_data(ctx.session, person)
    choices = []
    if data.erase_requested_at is None:
        choices.append(Choice("erase", _("🗑 Request erasure of my data")))
    choices.append(Choice("menu", _("🏠 Main menu")))
    return Prompt(await summary_text(ctx, data), tuple(choices), allow_back=False)


async def answer_show(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "erase":
        return Next("confirm")
    return Finish()


async def ask_confirm(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "Do you want your personal data erased? Your name, phone and chat accounts will be "
            "removed and you will no longer be able to use the bot with this account. Your "
            "registrations stay in the union's statistics without your name."
        ),
        (Choice("yes", _("Yes, erase my data")), Choice("no", _("No, keep it"))),
    )


def _officer_message(person: Person, unit: str) -> Reply:
    how = "thidua person erase --yes " + (
        f"--phone {person.phone}" if person.phone else f"--id {person.id}"
    )
    return Reply(
        _(
            "🗑 {name} ({unit}) asks for their personal data to be erased (Nghị định "
            "13/2023/NĐ-CP). Please carry it out within 72 hours with the command:\n{command}"
        ).format(name=person.full_name, unit=unit, command=how)
    )


async def answer_confirm(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice != "yes":
        return Next("show")
    person = ctx.require_person()
    data = await personal_data(ctx.session, person)
    if data.erase_requested_at is not None:
        return Next("show")  # asked already (a second tap, or another chat): once is enough
    request_erasure(ctx.session, person, "chat", ctx.identity.channel)
    officers = await erase_officers(ctx.session, person)
    unit = data.unit_path[-1] if data.unit_path else "—"
    told = await notify(ctx, officers, lambda _officer: _officer_message(person, unit))
    if told:
        ctx.say(
            _(
                "Your request is recorded and the union officers have been told. You will keep "
                "using the bot until they carry it out."
            )
        )
    else:
        ctx.say(
            _(
                "Your request is recorded. No union officer above you uses the bot yet, so the "
                "administrator will carry it out."
            )
        )
    return Finish()


MY_DATA_FLOW = Flow(
    MY_DATA,
    (
        Step("show", ask_show, answer_show),
        Step("confirm", ask_confirm, answer_confirm),
    ),
)


async def cmd_my_data(ctx: Ctx, _arg: str) -> Go | None:
    """/dulieucuatoi: the person's data, and the erasure request."""
    if ctx.person is None:
        claim = await pending_claim(ctx.session, ctx.identity.id)
        if claim is not None:
            # Only what this chat typed itself: the roster person stays hidden until proof.
            ctx.say(
                _(
                    "You are not signed up yet. Kept about you: your request to join, with the "
                    "name “{name}” and the phone {phone}, waiting for the leader's "
                    "confirmation. Type /start and {restart} to withdraw it."
                ).format(
                    name=claim.full_name,
                    phone=claim.phone or "—",
                    restart=press(ctx, _("↩️ Start again")),
                )
            )
            return None
        ctx.say(
            _(
                "You have not signed up, so the bot keeps nothing about you except this chat's "
                "place in the conversation. Type /start to sign up."
            )
        )
        return None
    return Switch(MY_DATA)
