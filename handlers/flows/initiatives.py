"""Registering an initiative (sáng kiến): any member, with co-authors and one attachment.

campaign (only if several are open) → name → field → short description → co-authors
(optional, searched in the person's unit or typed) → date first applied (optional) →
expected benefit (optional) → attachment (optional) → summary with edit → confirm →
receipt number. A benefit at or above the LĐST threshold is flagged as a candidate for
"Bằng Lao động sáng tạo"; co-authors known to the bot are told they were named.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from handlers.engine.flow import Again, Answer, Ctx, Edit, Finish, Flow, Go, Next, Step
from handlers.engine.prompt import Choice, IncomingFile, InputKind, Prompt, Reply
from handlers.flows.common import (
    answer_open_campaign,
    ask_open_campaign,
    deadline_passed_text,
    draft_campaign,
    refuse_if_locked,
    registration_open,
    show_date,
)
from handlers.i18n import _, current_locale
from handlers.notify import notify
from handlers.rules import (
    AUTHOR_CATEGORIES,
    benefit_thresholds,
    effective_rules,
    ldst_candidate,
    source_of,
)
from handlers.text import (
    Invalid,
    clean,
    fold,
    format_money,
    format_number,
    parse_name,
    without_diacritics,
)
from handlers.wording import cancel, press, skip
from storage.models import (
    Attachment,
    Campaign,
    Initiative,
    InitiativeAuthor,
    Person,
    RegistrationStatus,
    Role,
    Title,
    Unit,
)
from storage.repo import (
    LIVE_STATUSES,
    ancestor_ids,
    audit,
    next_receipt_no,
    person_initiative_benefit,
    person_initiatives,
    titles_by_code,
    unit_people_matching,
)
from storage.units import has_role_on

INITIATIVE = "initiative"

MAX_NAME = 300  # initiatives.name column
MIN_NAME = 3
MAX_DESCRIPTION = 1000
MAX_COAUTHORS = 10
# Shown in the summary; the full description is kept.
SUMMARY_DESCRIPTION = 200

# Attachments: documents and photos people have at hand. Telegram bots cannot download
# files above 20 MB, so a bigger limit would accept files nobody can open later.
MAX_FILE_BYTES = 20 * 1024 * 1024
ACCEPTED_EXTENSIONS = frozenset({"pdf", "doc", "docx", "xls", "xlsx", "jpg", "jpeg", "png"})
ACCEPTED_MIMES = frozenset(
    {
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "image/jpeg",
        "image/png",
    }
)
# Some phones send Office files with a generic type; the file name then decides.
GENERIC_MIMES = frozenset({"application/octet-stream", "application/zip"})

# The title an initiative with a large benefit may lead to (domain.md §3).
LDST = "LDST"

# Field ids are stored in initiatives.field; labels are translated when shown.
FIELDS = ("tech", "mgmt", "saving", "safety", "digital", "other")


def field_label(field_id: str) -> str:
    """The field of an initiative in the reader's language (also for exports)."""
    labels = {
        "tech": _("Technical"),
        "mgmt": _("Management"),
        "saving": _("Saving, anti-waste"),
        "safety": _("Occupational safety and health"),
        "digital": _("Digital transformation, IT"),
        "other": _("Other"),
    }
    return labels.get(field_id, field_id)


_FIELD_ALIASES = {
    "safety": ("ATVSLĐ", "ATVSLD", "an toàn"),
    "digital": ("CNTT", "IT", "chuyển đổi số"),
    "saving": ("tiết kiệm",),
}


def attachment_problem(filename: str | None, mime: str | None, size: int | None) -> str | None:
    """Why a file cannot be accepted ("type" or "size"), or None when it is fine."""
    ext = filename.rsplit(".", 1)[-1].lower() if filename and "." in filename else None
    mime = (mime or "").split(";")[0].strip().lower() or None
    if filename is not None and ext not in ACCEPTED_EXTENSIONS:
        return "type"
    # A generic type is only trusted with a known file name ending.
    generic_ok = mime in GENERIC_MIMES and ext is not None
    if mime is not None and mime not in ACCEPTED_MIMES and not generic_ok:
        return "type"
    if ext is None and mime is None:
        return "type"
    if size is not None and size > MAX_FILE_BYTES:
        return "size"
    return None


def file_size_text(size: int) -> str:
    """1_258_291 -> "1,2 MB"; small files in KB."""
    locale = current_locale()
    if size >= 1024 * 1024:
        return f"{format_number(round(size / 1024 / 1024, 1), locale)} MB"
    return f"{format_number(max(1, round(size / 1024)), locale)} KB"


def accepted_files_text() -> str:
    return _(
        "PDF, Word (doc, docx), Excel (xls, xlsx) or a JPEG/PNG photo, up to {limit} MB"
    ).format(limit=MAX_FILE_BYTES // (1024 * 1024))


async def _unit(ctx: Ctx) -> Unit | None:
    person = ctx.require_person()
    return await ctx.session.get(Unit, person.unit_id) if person.unit_id else None


def _coauthors(ctx: Ctx) -> list[dict[str, Any]]:
    return list(ctx.data.get("coauthors") or [])


def _amount(value: int) -> str:
    return format_money(value, current_locale())


# --- campaign and name -----------------------------------------------------------------------


async def ask_campaign(ctx: Ctx) -> Prompt | Go:
    return await ask_open_campaign(ctx, await _unit(ctx), then="name")


async def answer_campaign(ctx: Ctx, answer: Answer) -> Go:
    return answer_open_campaign(ctx, answer, then="name")


async def ask_name(ctx: Ctx) -> Prompt | Go:
    campaign = await draft_campaign(ctx)
    if campaign is None:
        return Next("campaign")
    return Prompt(
        _(
            "💡 Registering an initiative for “{campaign}” (deadline {deadline}).\n"
            "What is the name of your initiative?"
        ).format(campaign=campaign.name, deadline=show_date(campaign.registration_deadline)),
        kind=InputKind.TEXT,
    )


async def answer_name(ctx: Ctx, answer: Answer) -> Go:
    try:
        name = clean(answer.text or "", max_length=MAX_NAME)
    except Invalid:
        return Again(
            _("That is a bit long: please keep it under {n} characters.").format(n=MAX_NAME)
        )
    if len(name) < MIN_NAME:
        return Again(_("Please type the full name of the initiative."))
    person = ctx.require_person()
    # The same name twice in one campaign is almost always a double registration.
    for mine in await person_initiatives(ctx.session, person.id, limit=100):
        if (
            mine.person_id == person.id
            and mine.campaign_id == ctx.data.get("campaign_id")
            and mine.status in LIVE_STATUSES
            and fold(mine.name) == fold(name)
        ):
            return Again(
                _(
                    "You have already registered an initiative with this name (receipt "
                    "{receipt}). Please type another name, or {cancel}."
                ).format(receipt=mine.receipt_no, cancel=cancel(ctx))
            )
    ctx.data["name"] = name
    return Next("field")


# --- field and description -------------------------------------------------------------------


async def ask_field(ctx: Ctx) -> Prompt:
    return Prompt(
        _("Which field does it belong to?"),
        tuple(Choice(f, field_label(f), _FIELD_ALIASES.get(f, ())) for f in FIELDS),
    )


async def answer_field(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["field"] = answer.choice or "other"
    return Next("description")


async def ask_description(ctx: Ctx) -> Prompt:
    return Prompt(
        _("Describe it briefly: what problem it solves and how (up to {n} characters).").format(
            n=MAX_DESCRIPTION
        ),
        kind=InputKind.TEXT,
    )


async def answer_description(ctx: Ctx, answer: Answer) -> Go:
    try:
        text = clean(answer.text or "", multiline=True, max_length=MAX_DESCRIPTION)
    except Invalid:
        return Again(
            _("That is a bit long: please keep it under {n} characters.").format(n=MAX_DESCRIPTION)
        )
    if len(text) < MIN_NAME:
        return Again(_("Please write a sentence or two about the initiative."))
    ctx.data["description"] = text
    return Next("coauthors")


# --- co-authors --------------------------------------------------------------------------------
# A small loop: type a name → pick among the unit's people (or keep the name as typed) → back
# to the list. Inside the loop ``edit_chain`` keeps an edit from the summary going until
# "Done".


async def ask_coauthors(ctx: Ctx) -> Prompt:
    authors = _coauthors(ctx)
    if not authors:
        return Prompt(
            _(
                "Does anyone share this initiative with you? Type part of a co-author's name "
                "to find them in your unit, or their full name. If you are the only author, "
                "{skip}."
            ).format(skip=skip(ctx)),
            kind=InputKind.TEXT,
            optional=True,
        )
    lines = [_("Co-authors so far:")] + [f"• {a['name']}" for a in authors]
    if len(authors) < MAX_COAUTHORS:
        lines.append(_("Type another name, or {done}.").format(done=press(ctx, _("✅ Done"), 1)))
    return Prompt(
        "\n".join(lines),
        (Choice("done", _("✅ Done")), Choice("remove", _("➖ Remove a name"))),
        kind=InputKind.TEXT,
    )


async def answer_coauthors(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped or answer.choice == "done":
        return Next("applied")
    if answer.choice == "remove":
        return Next("coauthor_remove", edit_chain=True)
    if len(_coauthors(ctx)) >= MAX_COAUTHORS:
        return Again(_("At most {n} co-authors can be listed.").format(n=MAX_COAUTHORS))
    query = clean(answer.text or "")
    if len(fold(query)) < 2 or len(query) > 100:
        return Again(_("Please type at least two letters of the name."))
    ctx.data["query"] = query
    return Next("coauthor_pick", edit_chain=True)


def _add_coauthor(ctx: Ctx, person_id: int | None, name: str) -> bool:
    authors = _coauthors(ctx)
    if any(
        (person_id is not None and a["person_id"] == person_id)
        or (person_id is None and fold(a["name"]) == fold(name))
        for a in authors
    ):
        return False
    authors.append({"person_id": person_id, "name": name})
    ctx.data["coauthors"] = authors
    return True


async def _matches(ctx: Ctx) -> list[Person]:
    person = ctx.require_person()
    if person.unit_id is None or not await may_see_roster(ctx, person, person.unit_id):
        return []
    taken = [a["person_id"] for a in _coauthors(ctx) if a["person_id"] is not None]
    return await unit_people_matching(
        ctx.session,
        person.unit_id,
        fold(ctx.data.get("query", "")),
        exclude_ids=[person.id, *taken],
    )


async def may_see_roster(ctx: Ctx, person: Person, unit_id: int) -> bool:
    """Only proven members of the unit (their membership confirmed) and its leaders.

    A newcomer who named a unit is not on its roster until the leader confirms them, so
    declaring oneself a member of any unit does not list its people.
    """
    if await has_role_on(ctx.session, person.id, [unit_id], Role.MEMBER):
        return True
    unit = await ctx.session.get(Unit, unit_id)
    return unit is not None and await has_role_on(
        ctx.session, person.id, ancestor_ids(unit), Role.LEADER
    )


def _typed_name(ctx: Ctx) -> str | None:
    try:
        return parse_name(ctx.data.get("query", ""))
    except Invalid:
        return None


async def ask_coauthor_pick(ctx: Ctx) -> Prompt | Go:
    query = ctx.data.get("query", "")
    matches = await _matches(ctx)
    typed = _typed_name(ctx)
    if not matches:
        if typed and len(typed.split()) >= 2 and without_diacritics(typed):
            # "le van tam" would be printed so on the list: asked once, kept if so wished.
            return Prompt(
                _(
                    "Can you write “{name}” with its diacritics? For example “Lê Văn Tám”. "
                    "The name is printed on the unit's list as it is written here."
                ).format(name=typed),
                (
                    Choice("again", _("✍️ Write it again")),
                    Choice("typed", _("➕ Keep it as typed")),
                ),
            )
        # A full name (two words or more) of someone outside the unit's list is kept as typed.
        if typed and len(typed.split()) >= 2:
            if _add_coauthor(ctx, None, typed):
                ctx.say(_("Added “{name}” (not found in your unit's list).").format(name=typed))
            return Next("coauthors", edit_chain=True)
        ctx.say(
            _(
                "No one in your unit matches “{query}”. Type the full name to add someone "
                "from outside the list."
            ).format(query=query)
        )
        return Next("coauthors", edit_chain=True)
    choices = [
        Choice(f"p{p.id}", f"{p.full_name} – {p.position}" if p.position else p.full_name)
        for p in matches
    ]
    if typed and fold(typed) not in {fold(p.full_name) for p in matches}:
        choices.append(Choice("typed", _("➕ Add “{name}” as typed").format(name=typed)))
    choices.append(Choice("again", _("🔍 Search again")))
    return Prompt(_("Who do you mean?"), tuple(choices))


async def answer_coauthor_pick(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice.startswith("p") and choice[1:].isdigit():
        # The id comes from our button, but only someone still in the results is accepted.
        picked = next((p for p in await _matches(ctx) if p.id == int(choice[1:])), None)
        if picked is not None:
            _add_coauthor(ctx, picked.id, picked.full_name)
    elif choice == "typed":
        typed = _typed_name(ctx)
        if typed:
            _add_coauthor(ctx, None, typed)
    ctx.data.pop("query", None)
    return Next("coauthors", edit_chain=True)


async def ask_coauthor_remove(ctx: Ctx) -> Prompt | Go:
    authors = _coauthors(ctx)
    if not authors:
        return Next("coauthors", edit_chain=True)
    return Prompt(
        _("Which name should be removed?"),
        tuple(Choice(f"r{i}", a["name"]) for i, a in enumerate(authors)),
    )


async def answer_coauthor_remove(ctx: Ctx, answer: Answer) -> Go:
    authors = _coauthors(ctx)
    choice = answer.choice or ""
    if choice[1:].isdigit() and int(choice[1:]) < len(authors):
        authors.pop(int(choice[1:]))
        ctx.data["coauthors"] = authors
    return Next("coauthors", edit_chain=True)


# --- date applied, benefit, attachment -------------------------------------------------------


async def ask_applied(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "When was it first applied? Type the date as day/month/year, for example "
            "15/03/2026. If it is not applied yet, {skip}."
        ).format(skip=skip(ctx)),
        kind=InputKind.DATE,
        optional=True,
    )


async def answer_applied(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped:
        ctx.data["applied"] = None
        return Next("benefit")
    applied: date = answer.value
    if applied > ctx.today:
        return Again(
            _(
                "That date is in the future. Please type the day it was first applied, or {skip}."
            ).format(skip=skip(ctx))
        )
    ctx.data["applied"] = applied.isoformat()
    return Next("benefit")


async def ask_benefit(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "What is the expected benefit (giá trị làm lợi) per year, in đồng? For example "
            "80 triệu, 1,2 tỷ or 1.200.000. If you cannot estimate it, {skip}."
        ).format(skip=skip(ctx)),
        kind=InputKind.MONEY,
        optional=True,
    )


async def answer_benefit(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped:
        ctx.data["benefit"] = None
        return Next("attachment")
    if not answer.value or int(answer.value) <= 0:
        return Again(_("Please type an amount above zero, or {skip}.").format(skip=skip(ctx)))
    ctx.data["benefit"] = int(answer.value)
    return Next("category")


async def _ldst(ctx: Ctx, campaign: Campaign) -> tuple[Title, dict[str, Any]] | None:
    """Bằng Lao động sáng tạo and its rules in this campaign, if the catalogue has it."""
    title = (await titles_by_code(ctx.session, [LDST])).get(LDST)
    if title is None:
        return None
    return title, effective_rules(LDST, title.rules, campaign.settings)


async def _total_benefit(ctx: Ctx, campaign: Campaign) -> tuple[int, str | None]:
    """The person's total benefit with this initiative, and the author category known."""
    _count, total, category = await person_initiative_benefit(
        ctx.session, campaign.id, ctx.require_person().id
    )
    return total + int(ctx.data.get("benefit") or 0), category


def category_button(category: str) -> str:
    labels = {
        "worker": _("Worker, direct labour"),
        "professional": _("Specialist, technical, clerical"),
        "manager": _("Manager, leader"),
    }
    return labels.get(category, category)


async def ask_category(ctx: Ctx) -> Prompt | Go:
    """Who the author is: asked only when the total benefit could reach a Bằng Lao động
    sáng tạo threshold, whose amount depends on it (QĐ 999/QĐ-TLĐ)."""
    campaign = await draft_campaign(ctx)
    ldst = await _ldst(ctx, campaign) if campaign else None
    thresholds = benefit_thresholds(ldst[1]) if ldst else {}
    if campaign is None or not thresholds or not ctx.data.get("benefit"):
        return Next("attachment")
    total, known = await _total_benefit(ctx, campaign)
    if known or total < min(thresholds.values()):
        ctx.data["category"] = known
        return Next("attachment")
    return Prompt(
        _(
            "The total benefit of your initiatives may qualify for “{title}”, whose threshold "
            "depends on who the author is. Which describes you?"
        ).format(title=ldst[0].name if ldst else ""),
        tuple(Choice(c, category_button(c)) for c in AUTHOR_CATEGORIES),
        optional=True,
    )


async def answer_category(ctx: Ctx, answer: Answer) -> Go:
    ctx.data["category"] = None if answer.skipped else answer.choice
    return Next("attachment")


async def ask_attachment(ctx: Ctx) -> Prompt:
    return Prompt(
        _(
            "You can attach one document or photo about the initiative: {accepted}. "
            "Send it now, or {skip}."
        ).format(accepted=accepted_files_text(), skip=skip(ctx)),
        kind=InputKind.FILE,
        optional=True,
    )


async def answer_attachment(ctx: Ctx, answer: Answer) -> Go:
    if answer.skipped or answer.file is None:
        ctx.data["file"] = None
        return Next("summary")
    file: IncomingFile = answer.file
    problem = attachment_problem(file.filename, file.mime, file.size)
    if problem == "type":
        return Again(
            _(
                "Sorry, I cannot accept this kind of file. Please send {accepted}, or {skip}."
            ).format(accepted=accepted_files_text(), skip=skip(ctx))
        )
    if problem == "size":
        return Again(
            _(
                "This file is {size}, more than the {limit} MB limit. Please send a smaller "
                "file (for example a photo of the main page), or {skip}."
            ).format(
                size=file_size_text(file.size or 0),
                limit=MAX_FILE_BYTES // (1024 * 1024),
                skip=skip(ctx),
            )
        )
    ctx.data["file"] = {
        "file_id": file.file_id,
        "filename": file.filename,
        "mime": file.mime,
        "size": file.size,
    }
    return Next("summary")


# --- summary and confirm ---------------------------------------------------------------------


def _file_text(file: dict[str, Any] | None) -> str:
    if not file:
        return _("(none)")
    name = file.get("filename") or _("photo")
    return f"{name} ({file_size_text(file['size'])})" if file.get("size") else name


async def ask_summary(ctx: Ctx) -> Prompt | Go:
    campaign = await draft_campaign(ctx)
    if campaign is None:
        return Next("campaign")
    if not ctx.data.get("name"):
        return Next("name")
    description = ctx.data.get("description") or ""
    if len(description) > SUMMARY_DESCRIPTION:
        description = description[:SUMMARY_DESCRIPTION].rstrip() + "…"
    authors = ", ".join(a["name"] for a in _coauthors(ctx)) or _("(none)")
    applied = ctx.data.get("applied")
    benefit = ctx.data.get("benefit")
    lines = [
        _("Please check your initiative:"),
        _("• Campaign: {campaign}").format(campaign=campaign.name),
        _("• Initiative: {name}").format(name=ctx.data["name"]),
        _("• Field: {field}").format(field=field_label(ctx.data.get("field", "other"))),
        _("• Description: {text}").format(text=description),
        _("• Co-authors: {names}").format(names=authors),
        _("• First applied: {date}").format(
            date=show_date(date.fromisoformat(applied)) if applied else _("(not given)")
        ),
        _("• Expected benefit: {amount}").format(
            amount=_amount(benefit) if benefit else _("(not given)")
        ),
        _("• Attachment: {file}").format(file=_file_text(ctx.data.get("file"))),
    ]
    return Prompt(
        "\n".join(lines),
        (
            Choice("confirm", _("✅ Confirm")),
            Choice("edit_name", _("✏️ Change the name")),
            Choice("edit_field", _("✏️ Change the field")),
            Choice("edit_description", _("✏️ Change the description")),
            Choice("edit_coauthors", _("✏️ Change the co-authors")),
            Choice("edit_applied", _("✏️ Change the date applied")),
            Choice("edit_benefit", _("✏️ Change the benefit")),
            Choice("edit_attachment", _("✏️ Change the attachment")),
        ),
    )


async def answer_summary(ctx: Ctx, answer: Answer) -> Go:
    choice = answer.choice or ""
    if choice.startswith("edit_"):
        return Edit(choice.removeprefix("edit_"))
    return await _save(ctx)


async def _save(ctx: Ctx) -> Go:
    person = ctx.require_person()
    campaign = await draft_campaign(ctx)
    if campaign is None:
        return Next("campaign")
    if not registration_open(campaign, ctx.today):
        ctx.say(deadline_passed_text(campaign))
        return Finish()
    if person.unit_id is None:
        ctx.say(_("There is no emulation campaign open for your unit at the moment."))
        return Finish()
    if await refuse_if_locked(ctx, campaign.id, person.unit_id):
        return Finish()
    applied = ctx.data.get("applied")
    initiative = Initiative(
        receipt_no=await next_receipt_no(ctx.session, campaign),
        campaign_id=campaign.id,
        person_id=person.id,
        unit_id=person.unit_id,
        name=ctx.data["name"],
        field=ctx.data.get("field", "other"),
        description=ctx.data.get("description"),
        applied_on=date.fromisoformat(applied) if applied else None,
        benefit=ctx.data.get("benefit"),
        author_category=ctx.data.get("category"),
        status=RegistrationStatus.SUBMITTED,
        source="chat",
        entered_by_id=person.id,
        authors=[
            InitiativeAuthor(position=i, person_id=a["person_id"], name=a["name"])
            for i, a in enumerate(_coauthors(ctx), start=1)
        ],
    )
    ctx.session.add(initiative)
    await ctx.session.flush()
    file = ctx.data.get("file")
    if file:
        ctx.session.add(
            Attachment(
                owner_kind="initiative",
                owner_id=initiative.id,
                channel=ctx.identity.channel,
                file_id=file["file_id"],
                filename=file.get("filename"),
                mime=file.get("mime"),
                size=file.get("size"),
            )
        )
    audit(
        ctx.session,
        action="initiative.create",
        entity="initiative",
        entity_id=initiative.id,
        actor_id=person.id,
        via="chat",
        receipt_no=initiative.receipt_no,
        coauthors=len(initiative.authors),
        attachment=bool(file),
    )
    lines = [
        _("Done! Your initiative has been registered."),
        _("Receipt number: {receipt}").format(receipt=initiative.receipt_no),
    ]
    ldst = await _ldst(ctx, campaign)
    if ldst and initiative.benefit:
        # The threshold is on the total of the author's initiatives, by who the author is.
        _count, total, category = await person_initiative_benefit(
            ctx.session, campaign.id, person.id
        )
        if ldst_candidate(ldst[1], total, category):
            lines.append(
                _(
                    "🏅 With a total expected benefit of {amount}, you may be a candidate for "
                    "“{title}” ({source}). Your unit will check the documents."
                ).format(
                    amount=_amount(total),
                    title=ldst[0].name,
                    source=source_of(ldst[1], "min_benefit_by_category"),
                )
            )
    if initiative.authors:
        lines.append(_("Your co-authors will also see it under “My registrations”."))
    ctx.say("\n".join(lines))

    receipt, name = initiative.receipt_no, initiative.name
    await notify(
        ctx,
        [a.person_id for a in initiative.authors if a.person_id and a.person_id != person.id],
        lambda _p: Reply(
            _(
                "{author} named you as a co-author of the initiative “{name}” (receipt "
                "{receipt}). You can see it under “My registrations”."
            ).format(author=person.full_name, name=name, receipt=receipt)
        ),
    )
    return Finish()


INITIATIVE_FLOW = Flow(
    INITIATIVE,
    (
        Step("campaign", ask_campaign, answer_campaign),
        Step("name", ask_name, answer_name),
        Step("field", ask_field, answer_field),
        Step("description", ask_description, answer_description),
        Step("coauthors", ask_coauthors, answer_coauthors),
        Step("coauthor_pick", ask_coauthor_pick, answer_coauthor_pick),
        Step("coauthor_remove", ask_coauthor_remove, answer_coauthor_remove),
        Step("applied", ask_applied, answer_applied),
        Step("benefit", ask_benefit, answer_benefit),
        Step("category", ask_category, answer_category),
        Step("attachment", ask_attachment, answer_attachment),
        Step("summary", ask_summary, answer_summary),
    ),
)
