"""/thongbao: an officer sends an announcement (Phát động thi đua) to their part of the tree.

unit (only if officer of several) → text → one photo or document (optional) → the whole
subtree or chosen units → roles → campaign for "📝 Đăng ký ngay" (optional) → everyone or
only those not registered yet → preview exactly as recipients see it, with the count per
channel → send now or at a time → confirm. The broadcast row is written on confirm; the
sender (bot.broadcast) does the rest and edits the confirmation into a progress bar.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any

from handlers.broadcasts import (
    CANCEL_ACTION,
    MAX_TEXT,
    PREVIEW_ACTION,
    REGISTER_ACTION,
    Announcement,
    Attachment,
    announcement_parts,
    audience_lines,
)
from handlers.engine.flow import Again, Answer, Ctx, Edit, Finish, Flow, Go, Next, Step, Switch
from handlers.engine.prompt import Choice, InputKind, Prompt
from handlers.engine.runner import CommandFn
from handlers.flows.common import deadline_passed_text, registration_open, show_date
from handlers.flows.initiatives import (
    MAX_FILE_BYTES,
    accepted_files_text,
    attachment_problem,
    file_size_text,
)
from handlers.i18n import _
from handlers.text import Invalid, clean, fold, parse_date, parse_id
from handlers.wording import skip
from storage.broadcasts import (
    ROLE_ALL,
    ROLE_LEADER,
    ROLE_OFFICER,
    Audience,
    count_audience,
    units_in_subtree,
)
from storage.broadcasts import child_units as _child_units
from storage.models import Broadcast, BroadcastStatus, Campaign, Role, Unit
from storage.repo import ancestor_ids, audit, campaign_by_id, campaigns_for_unit
from storage.units import has_role_on, units_with_role

BROADCAST = "broadcast"
PAGE = 8
# How far ahead an announcement may be scheduled.
MAX_AHEAD = timedelta(days=366)
# The morning hour offered as a quick choice, local time.
MORNING = time(8, 0)
_TIME = re.compile(r"(?<![\d/.\-])(\d{1,2})\s*(?::|h|g|gio)\s*(\d{2})?(?![\d/.\-])")


# --- shared pieces -----------------------------------------------------------------------------


async def _unit(ctx: Ctx) -> Unit | None:
    unit_id = ctx.data.get("unit_id")
    return await ctx.session.get(Unit, int(unit_id)) if unit_id else None


async def _is_officer_of(ctx: Ctx, unit: Unit) -> bool:
    person = ctx.require_person()
    return await has_role_on(ctx.session, person.id, [unit.id], Role.OFFICER)


async def _campaign(ctx: Ctx) -> Campaign | None:
    campaign_id = ctx.data.get("campaign_id")
    return await campaign_by_id(ctx.session, int(campaign_id)) if campaign_id else None


async def _audience(ctx: Ctx, unit: Unit) -> Audience:
    chosen = await units_in_subtree(ctx.session, unit, ctx.data.get("unit_ids") or [])
    paths = tuple(u.path for u in chosen) or (unit.path,)
    unregistered = ctx.data.get("unregistered") and ctx.data.get("campaign_id")
    return Audience(
        unit_paths=paths,
        role=ctx.data.get("role") or ROLE_ALL,
        unregistered_in=int(ctx.data["campaign_id"]) if unregistered else None,
    )


def _attachment(ctx: Ctx) -> Attachment | None:
    file: dict[str, Any] | None = ctx.data.get("file")
    if not file:
        return None
    return Attachment(
        kind=file["kind"],
        name=file.get("name"),
        mime=file.get("mime"),
        size=file.get("size"),
        channel=file.get("channel"),
        file_id=file.get("file_id"),
    )


def _local(ctx: Ctx, moment: datetime) -> str:
    local = moment.astimezone(ctx.config.tz)
    return _("{time} on {date}").format(time=local.strftime("%H:%M"), date=show_date(local.date()))


# --- unit --------------------------------------------------------------------------------------


async def ask_unit(ctx: Ctx) -> Prompt | Go:
    person = ctx.require_person()
    units = await units_with_role(ctx.session, person.id, Role.OFFICER)
    if not units:
        ctx.say(
            _(
                "Announcements are sent by union officers. If you should send them, please ask "
                "your union to give you the officer role."
            )
        )
        return Finish()
    if len(units) == 1:
        ctx.data["unit_id"] = units[0].id
        return Next("text")
    return Prompt(
        _("On behalf of which union do you send the announcement?"),
        tuple(Choice(f"u{u.id}", u.name) for u in units),
    )


async def answer_unit(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["unit_id"] = int((answer.choice or "u0")[1:])
    ctx.data.pop("unit_ids", None)
    return Next("text")


# --- text and file -----------------------------------------------------------------------------


async def ask_text(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx)
    if unit is None:
        return Next("unit")
    return Prompt(
        _(
            "Please type the announcement of {unit}, as members should read it (up to {n} "
            "characters). For example: “Kính gửi các đồng chí đoàn viên, Công đoàn phát động "
            "phong trào thi đua năm 2027…”"
        ).format(unit=unit.name, n=MAX_TEXT),
        kind=InputKind.TEXT,
    )


async def answer_text(ctx: Ctx, answer: Answer) -> Go:
    try:
        text = clean(answer.text or "", multiline=True, max_length=MAX_TEXT)
    except Invalid:
        return Again(_("That is too long: please keep it under {n} characters.").format(n=MAX_TEXT))
    if len(text) < 10:
        return Again(_("That is very short for an announcement. Please type the full text."))
    ctx.data["text"] = text
    return Next("file")


async def ask_file(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "Would you like to attach one photo or document (for example the plan as PDF)? "
            "Send it now ({accepted}), or {skip}."
        ).format(accepted=accepted_files_text(), skip=skip(ctx)),
        kind=InputKind.FILE,
        optional=True,
    )


async def answer_file(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped or answer.file is None:
        ctx.data["file"] = None
        return Next("scope")
    file = answer.file
    problem = attachment_problem(file.filename, file.mime, file.size)
    if problem == "type":
        return Again(
            _("Sorry, I cannot send this kind of file. Please send {accepted}, or {skip}.").format(
                accepted=accepted_files_text(), skip=skip(ctx)
            )
        )
    if problem == "size":
        return Again(
            _("This file is {size}, more than the {limit} MB limit.").format(
                size=file_size_text(file.size or 0), limit=MAX_FILE_BYTES // (1024 * 1024)
            )
        )
    # A photo arrives without a name; a document keeps its name and is sent as one.
    is_photo = file.filename is None and (file.mime or "").startswith("image/")
    ctx.data["file"] = {
        "kind": "photo" if is_photo else "document",
        "channel": ctx.identity.channel,
        "file_id": file.file_id,
        "name": file.filename,
        "mime": file.mime,
        "size": file.size,
    }
    return Next("scope")


# --- audience ----------------------------------------------------------------------------------


async def ask_scope(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx)
    if unit is None:
        return Next("unit")
    if not await _child_units(ctx.session, unit):
        ctx.data["unit_ids"] = []
        return Next("role", edit_chain=True)
    return Prompt(
        _("Who in {unit} should receive it?").format(unit=unit.name),
        (
            Choice("all", _("🌳 Everyone, the units below too")),
            Choice("some", _("🎯 Only some units")),
        ),
    )


async def answer_scope(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "some":
        ctx.data["page"] = 0
        return Next("units", edit_chain=True)
    ctx.data["unit_ids"] = []
    return Next("role", edit_chain=True)


async def ask_units(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx)
    if unit is None:
        return Next("unit")
    children = await _child_units(ctx.session, unit)
    chosen = set(ctx.data.get("unit_ids") or [])
    pages = max(1, -(-len(children) // PAGE))
    page = min(int(ctx.data.get("page", 0)), pages - 1)
    shown = children[page * PAGE : (page + 1) * PAGE]
    choices = [Choice(f"u{u.id}", ("☑ " if u.id in chosen else "☐ ") + u.name) for u in shown]
    if page > 0:
        choices.append(Choice("prev", _("◀ Previous")))
    if page < pages - 1:
        choices.append(Choice("next", _("Next ▶")))
    choices.append(Choice("done", _("✔ Done ({n} chosen)").format(n=len(chosen))))
    text = (
        _("Tap the units that should receive it (each includes the units below it).")
        if ctx.shows_buttons
        else _(
            "Type the numbers of the units that should receive it, one at a time (each "
            "includes the units below it)."
        )
    )
    if pages > 1:
        text += " " + _("Page {page} of {pages}.").format(page=page + 1, pages=pages)
    return Prompt(text, tuple(choices))


async def answer_units(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice in ("prev", "next"):
        ctx.data["page"] = int(ctx.data.get("page", 0)) + (1 if choice == "next" else -1)
        return Next("units", edit_chain=True)
    if choice == "done":
        if not ctx.data.get("unit_ids"):
            return Again(_("Please choose at least one unit."))
        return Next("role", edit_chain=True)
    unit_id = int(choice[1:])
    chosen = set(ctx.data.get("unit_ids") or [])
    chosen ^= {unit_id}
    ctx.data["unit_ids"] = sorted(chosen)
    return Next("units", edit_chain=True)


async def ask_role(ctx: Ctx) -> Prompt:
    return Prompt(
        _("Which people in these units?"),
        (
            Choice(ROLE_ALL, _("👥 All members")),
            Choice(ROLE_LEADER, _("🧑‍💼 Union leaders only")),
            Choice(ROLE_OFFICER, _("🗂️ Officers only")),
        ),
    )


async def answer_role(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["role"] = answer.choice or ROLE_ALL
    return Next("campaign", edit_chain=True)


async def _open_campaigns(ctx: Ctx, unit: Unit) -> list[Campaign]:
    running = await campaigns_for_unit(ctx.session, unit, ctx.today)
    return [c for c in running if registration_open(c, ctx.today)]


async def ask_campaign(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx)
    if unit is None:
        return Next("unit")
    campaigns = await _open_campaigns(ctx, unit)
    if not campaigns:
        ctx.data["campaign_id"] = None
        ctx.data["unregistered"] = False
        return Next("preview")
    choices = [Choice(f"c{c.id}", c.name) for c in campaigns]
    choices.append(Choice("none", _("No campaign (no button)")))
    return Prompt(
        _(
            "Add the “📝 Register now” button for a campaign? Members who tap it go straight "
            "to the registration."
        ),
        tuple(choices),
    )


async def answer_campaign(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "none":
        ctx.data["campaign_id"] = None
        ctx.data["unregistered"] = False
        return Next("preview")
    ctx.data["campaign_id"] = int((answer.choice or "c0")[1:])
    return Next("unregistered", edit_chain=True)


async def ask_unregistered(ctx: Ctx) -> Prompt | Go:
    campaign = await _campaign(ctx)
    if campaign is None:
        return Next("preview")
    return Prompt(
        _(
            "Send it to everyone chosen, or only to those who have not registered in “{c}” yet?"
        ).format(c=campaign.name),
        (
            Choice("everyone", _("Everyone chosen")),
            Choice("only", _("Only those not registered yet")),
        ),
    )


async def answer_unregistered(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["unregistered"] = answer.choice == "only"
    return Next("preview")


# --- preview, time, confirm ------------------------------------------------------------------


def _announcement(ctx: Ctx, unit: Unit) -> Announcement:
    return Announcement(
        unit_name=unit.name,
        text=ctx.data.get("text") or "",
        campaign_id=ctx.data.get("campaign_id"),
        register_button=bool(ctx.data.get("campaign_id")),
        attachment=_attachment(ctx),
    )


async def _audience_summary(ctx: Ctx, unit: Unit) -> tuple[int, list[str]]:
    count = await count_audience(ctx.session, await _audience(ctx, unit))
    return count.reachable, audience_lines(count.people, count.by_channel, count.no_chat)


def _audience_description(ctx: Ctx, unit: Unit, chosen: list[Unit]) -> str:
    where = ", ".join(u.name for u in chosen) if chosen else unit.name
    role = {
        ROLE_ALL: _("all members"),
        ROLE_LEADER: _("union leaders"),
        ROLE_OFFICER: _("officers"),
    }[ctx.data.get("role") or ROLE_ALL]
    text = _("To: {role} of {units}").format(role=role, units=where)
    if ctx.data.get("unregistered"):
        text += " " + _("(only those not registered yet)")
    return text


async def ask_preview(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx)
    if unit is None or not ctx.data.get("text"):
        return Next("text")
    ctx.say(_("This is how the announcement will look:"))
    for part in announcement_parts(_announcement(ctx, unit), ctx.identity.channel, preview=True):
        ctx.said.append(part)
    chosen = await units_in_subtree(ctx.session, unit, ctx.data.get("unit_ids") or [])
    reachable, lines = await _audience_summary(ctx, unit)
    lines.insert(0, _audience_description(ctx, unit, chosen))
    choices = [
        Choice("edit_text", _("✏️ Change the text")),
        Choice("edit_file", _("📎 Change the attachment")),
        Choice("edit_audience", _("🎯 Change the recipients")),
    ]
    if reachable:
        choices[:0] = [
            Choice("now", _("🚀 Send now")),
            Choice("later", _("🕒 Send at a time I choose")),
        ]
    else:
        lines.append(_("Nobody in this audience can be reached by the bot yet."))
    return Prompt("\n".join(lines), tuple(choices))


async def answer_preview(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "edit_text":
        return Edit("text")
    if answer.choice == "edit_file":
        return Edit("file")
    if answer.choice == "edit_audience":
        return Edit("scope")
    if answer.choice == "later":
        return Next("when")
    ctx.data["when"] = None
    return Next("confirm")


def parse_when(text: str, now: datetime, ctx: Ctx) -> datetime:
    """ "25/01/2027 08:00", "8h30 25/1", "14:00" (today) in local time, as UTC-aware."""
    folded = fold(text)
    match = _TIME.search(folded)
    if match is None:
        raise Invalid("no_time")
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if hour > 23 or minute > 59:
        raise Invalid("no_time")
    rest = (folded[: match.start()] + " " + folded[match.end() :]).strip(" ,-")
    rest = re.sub(r"^(ngay|on|at|luc)\s+", "", rest).strip()
    today = now.astimezone(ctx.config.tz).date()
    day: date = parse_date(rest, default_year=today.year) if rest else today
    return datetime.combine(day, time(hour, minute), tzinfo=ctx.config.tz)


async def ask_when(ctx: Ctx) -> Prompt:
    tomorrow = ctx.today + timedelta(days=1)
    return Prompt(
        _(
            "When should it go out? Type the time and the date, for example “08:00 25/01/2027”, "
            "or tap a suggestion."
        )
        if ctx.shows_buttons
        else _(
            "When should it go out? Type the time and the date, for example “08:00 25/01/2027”, "
            "or the number of a suggestion."
        ),
        (
            Choice(
                "tomorrow",
                _("🌅 Tomorrow at {time} ({date})").format(
                    time=MORNING.strftime("%H:%M"), date=show_date(tomorrow)
                ),
            ),
        ),
        kind=InputKind.TEXT,
    )


async def answer_when(ctx: Ctx, answer: Answer) -> Go:
    if answer.choice == "tomorrow":
        moment = datetime.combine(ctx.today + timedelta(days=1), MORNING, tzinfo=ctx.config.tz)
    else:
        try:
            moment = parse_when(answer.text or "", ctx.now, ctx)
        except Invalid:
            return Again(
                _("Please type a time and a date, for example “08:00 25/01/2027” or “14:30”.")
            )
    if moment <= ctx.now + timedelta(minutes=1):
        return Again(_("That time has passed. Please give a time in the future."))
    if moment > ctx.now + MAX_AHEAD:
        return Again(_("That is more than a year away. Please choose an earlier date."))
    ctx.data["when"] = moment.isoformat()
    return Next("confirm")


async def ask_confirm(ctx: Ctx) -> Prompt | Go:
    unit = await _unit(ctx)
    if unit is None or not ctx.data.get("text"):
        return Next("text")
    reachable, _lines = await _audience_summary(ctx, unit)
    if not reachable:
        return Next("preview")
    when = ctx.data.get("when")
    if when:
        text = _("Send the announcement to {n} people at {when}?").format(
            n=reachable, when=_local(ctx, datetime.fromisoformat(when))
        )
    else:
        text = _("Send the announcement to {n} people now?").format(n=reachable)
    return Prompt(text, (Choice("confirm", _("✅ Confirm and send")),))


async def answer_confirm(ctx: Ctx, answer: Answer) -> Go:
    unit = await _unit(ctx)
    if unit is None:
        return Next("unit")
    person = ctx.require_person()
    # Roles can change while the officer writes: checked again at the write.
    if not await _is_officer_of(ctx, unit):
        ctx.say(_("You are no longer an officer of {unit}.").format(unit=unit.name))
        return Finish()
    campaign = await _campaign(ctx)
    when = ctx.data.get("when")
    scheduled_at = datetime.fromisoformat(when) if when else ctx.now
    if when and scheduled_at <= ctx.now:
        ctx.say(_("The time you chose has passed."))
        return Next("when")
    file: dict[str, Any] = ctx.data.get("file") or {}
    broadcast = Broadcast(
        source="chat",
        created_by_id=person.id,
        unit_id=unit.id,
        campaign_id=campaign.id if campaign else None,
        text=ctx.data["text"],
        register_button=campaign is not None,
        audience={
            "unit_ids": list(ctx.data.get("unit_ids") or []),
            "role": ctx.data.get("role") or ROLE_ALL,
            "unregistered": bool(ctx.data.get("unregistered")) and campaign is not None,
        },
        file_kind=file.get("kind"),
        file_channel=file.get("channel"),
        file_id=file.get("file_id"),
        file_name=file.get("name"),
        file_mime=file.get("mime"),
        file_size=file.get("size"),
        status=BroadcastStatus.SCHEDULED,
        scheduled_at=scheduled_at,
        created_at=ctx.now,
        progress_channel=ctx.identity.channel,
        progress_external_id=ctx.identity.external_id,
        # "Send now" pressed on a button: that message becomes the progress bar. A scheduled
        # one gets a fresh message when it starts (days later, the old one is far up).
        progress_ref=None if when else ctx.incoming.message_ref,
    )
    ctx.session.add(broadcast)
    await ctx.session.flush()
    audit(
        ctx.session,
        action="broadcast.create",
        entity="broadcast",
        entity_id=broadcast.id,
        actor_id=person.id,
        via="chat",
        unit=unit.id,
        audience=broadcast.audience,
        scheduled_at=scheduled_at.isoformat(),
    )
    if when:
        ctx.say(
            _(
                "🕒 Announcement #{id} is scheduled for {when}. I will send you the delivery "
                "report when it has gone out."
            ).format(id=broadcast.id, when=_local(ctx, scheduled_at)),
            choices=(Choice(f"!{CANCEL_ACTION}:{broadcast.id}", _("🗑 Cancel it")),),
        )
    else:
        ctx.say(
            _(
                "🚀 Announcement #{id} is being sent. You will see the progress here, and the "
                "delivery report at the end."
            ).format(id=broadcast.id),
            choices=(Choice(f"!{CANCEL_ACTION}:{broadcast.id}", _("⏹ Stop sending")),),
        )
    return Finish()


BROADCAST_FLOW = Flow(
    BROADCAST,
    (
        Step("unit", ask_unit, answer_unit),
        Step("text", ask_text, answer_text),
        Step("file", ask_file, answer_file),
        Step("scope", ask_scope, answer_scope),
        Step("units", ask_units, answer_units),
        Step("role", ask_role, answer_role),
        Step("campaign", ask_campaign, answer_campaign),
        Step("unregistered", ask_unregistered, answer_unregistered),
        Step("preview", ask_preview, answer_preview),
        Step("when", ask_when, answer_when),
        Step("confirm", ask_confirm, answer_confirm),
    ),
)


# --- notification actions --------------------------------------------------------------------


async def action_register(ctx: Ctx, arg: str) -> Go | None:
    """ "📝 Đăng ký ngay" under an announcement: the registration, for that campaign."""
    campaign_id = parse_id(arg)
    campaign = await campaign_by_id(ctx.session, campaign_id) if campaign_id else None
    if campaign is None:
        ctx.say(_("This button is no longer valid."))
        return None
    if not registration_open(campaign, ctx.today):
        ctx.say(deadline_passed_text(campaign))
        return None
    if ctx.flow == "title":
        # Already registering: going on beats starting over and losing the answers given.
        return Again(_("Let us continue where you stopped:"))
    person = ctx.require_person()
    unit = await ctx.session.get(Unit, person.unit_id) if person.unit_id else None
    if unit is None or campaign.issuer_unit_id not in ancestor_ids(unit):
        # Not in this campaign's area (moved since, or a forwarded button): the usual way.
        return Switch("title")
    return Switch("title", step="title", data={"campaign_id": campaign.id})


async def action_preview(ctx: Ctx, arg: str) -> Go | None:
    """The "Đăng ký ngay" button in the officer's own preview: says what it will do."""
    campaign_id = parse_id(arg)
    campaign = await campaign_by_id(ctx.session, campaign_id) if campaign_id else None
    name = campaign.name if campaign else "—"
    ctx.say(
        _(
            "In the announcement, this button takes members straight to the registration for "
            "“{campaign}”. Here it is only a preview."
        ).format(campaign=name)
    )
    return None


async def action_cancel(ctx: Ctx, arg: str) -> Go | None:
    """ "🗑 Hủy" under a scheduled or running announcement of the officer's unit."""
    person = ctx.require_person()
    broadcast_id = parse_id(arg)
    broadcast = await ctx.session.get(Broadcast, broadcast_id) if broadcast_id else None
    unit = await ctx.session.get(Unit, broadcast.unit_id) if broadcast else None
    if broadcast is None or unit is None or not await _is_officer_of(ctx, unit):
        ctx.say(_("Sorry, only an officer of the sending union can stop this announcement."))
        return None
    if broadcast.status not in (BroadcastStatus.SCHEDULED, BroadcastStatus.SENDING):
        ctx.say(_("Announcement #{id} is not waiting or sending any more.").format(id=broadcast.id))
        return None
    broadcast.status = BroadcastStatus.CANCELLED
    broadcast.cancelled_at = ctx.now
    audit(
        ctx.session,
        action="broadcast.cancel",
        entity="broadcast",
        entity_id=broadcast.id,
        actor_id=person.id,
        via="chat",
    )
    ctx.say(
        _(
            "Announcement #{id} is cancelled. Whoever has received it already keeps it; nobody "
            "else will get it."
        ).format(id=broadcast.id)
    )
    return None


BROADCAST_ACTIONS: dict[str, CommandFn] = {
    REGISTER_ACTION: action_register,
    PREVIEW_ACTION: action_preview,
    CANCEL_ACTION: action_cancel,
}
