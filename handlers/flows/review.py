"""The upper-level officer's side of a unit's list: approve, return with a reason, reopen.

The decisions arrive as notification buttons ("!approve:ID", "!return:ID", "!reopen:ID")
that work whatever the officer is doing. An id from a button is never trusted: each action
checks that the person is an officer of an ancestor of the list's unit, and that the list is
in the state the decision needs (a second officer may have decided already).
"""

from __future__ import annotations

from handlers.engine.flow import Again, Answer, Ctx, Finish, Flow, Go, Step, Switch
from handlers.engine.prompt import Choice, InputKind, Prompt, Reply
from handlers.flows.leader import gather_summary, review_reply, submission_label
from handlers.flows.names import list_xlsx, read_names
from handlers.flows.outcome import Outcome, tell_members
from handlers.i18n import _
from handlers.notify import notify
from handlers.text import Invalid, clean, parse_id
from storage.models import Person, Role, SubmissionStatus, UnitSubmission
from storage.repo import audit, campaign_by_id
from storage.units import (
    is_officer_above,
    move_submission,
    people_with_role,
    submission_by_id,
    submissions_below,
    units_with_role,
)

REVIEW = "review"
# "!duyettatca:<last shown id>:<its round>" (Vietnamese: typed as a command on Zalo).
APPROVE_ALL = "duyettatca"
REVIEW_REASON = "review_reason"
MAX_REASON = 500
MAX_LISTED = 10


async def _reviewable(ctx: Ctx, arg: str) -> UnitSubmission | None:
    """The list a button names, if this person may decide on it; otherwise says no, politely."""
    person = ctx.require_person()
    submission_id = parse_id(arg)
    submission = await submission_by_id(ctx.session, submission_id) if submission_id else None
    if submission is None or not await is_officer_above(ctx.session, person.id, submission.unit):
        # The same words whether the list exists or not: a button id reveals nothing.
        ctx.say(
            _("Sorry, only an officer of the upper-level union of this unit can review its list.")
        )
        return None
    return submission


def _wrong_state(ctx: Ctx, submission: UnitSubmission) -> None:
    ctx.say(
        _("The list of {unit} is now “{status}”, so this button no longer applies.").format(
            unit=submission.unit.name, status=submission_label(submission.status)
        )
    )


async def _tell_leaders(ctx: Ctx, submission: UnitSubmission, make: type[_Message]) -> int:
    leaders = await people_with_role(ctx.session, submission.unit_id, Role.LEADER)
    return await notify(ctx, leaders, make(ctx, submission))


class _Message:
    """A message to the unit's leaders, built in each leader's own language."""

    def __init__(self, ctx: Ctx, submission: UnitSubmission) -> None:
        self.officer = ctx.require_person().full_name
        self.unit = submission.unit.name
        self.reason = submission.reason or ""

    def __call__(self, _leader: Person) -> Reply:
        raise NotImplementedError


class _Approved(_Message):
    def __call__(self, _leader: Person) -> Reply:
        return Reply(
            _(
                "✅ The list of {unit} has been approved by {officer}. Registrations of the unit "
                "are now closed; if something must change, ask the officer to reopen the list."
            ).format(unit=self.unit, officer=self.officer)
        )


class _Returned(_Message):
    def __call__(self, _leader: Person) -> Reply:
        return Reply(
            _(
                "↩️ The list of {unit} was returned for completion by {officer}.\n"
                "Reason: {reason}\n"
                "Please fix it and send it again with /guilen."
            ).format(unit=self.unit, officer=self.officer, reason=self.reason),
            choices=(
                Choice("!start:list_review", _("🔎 Review the list")),
                Choice("!start:submit", _("📤 Send again")),
            ),
        )


class _Reopened(_Message):
    def __call__(self, _leader: Person) -> Reply:
        return Reply(
            _(
                "🔓 The approved list of {unit} was reopened by {officer}, so it can be changed.\n"
                "Reason: {reason}\n"
                "When it is ready, send it again with /guilen."
            ).format(unit=self.unit, officer=self.officer, reason=self.reason),
            choices=(Choice("!start:submit", _("📤 Send again")),),
        )


# --- actions (buttons on notifications) ----------------------------------------------------


async def action_approve(ctx: Ctx, arg: str) -> Go | None:
    """ "✅ Duyệt": the list is approved and the unit's registrations are locked."""
    submission = await _reviewable(ctx, arg)
    if submission is None:
        return None
    if not await _approve(ctx, submission):
        _wrong_state(ctx, submission)
        return None
    ctx.say(
        _("✅ Approved: the list of {unit}. Its leader has been told.").format(
            unit=submission.unit.name
        ),
        choices=(Choice(f"!reopen:{submission.id}", _("🔓 Reopen")),),
    )
    return None


async def _approve(ctx: Ctx, submission: UnitSubmission) -> bool:
    """Approve a waiting list (False when it is no longer waiting); leader and members told."""
    officer = ctx.require_person()
    if not await move_submission(
        ctx.session,
        submission,
        SubmissionStatus.PENDING,
        status=SubmissionStatus.APPROVED,
        decided_at=ctx.now,
        decided_by_id=officer.id,
    ):
        return False
    audit(
        ctx.session,
        action="submission.approve",
        entity="unit_submission",
        entity_id=submission.id,
        actor_id=officer.id,
        via="chat",
        unit_id=submission.unit_id,
        round=submission.round,
    )
    await _tell_leaders(ctx, submission, _Approved)
    await tell_members(ctx, submission, Outcome.APPROVED)
    return True


async def action_return(ctx: Ctx, arg: str) -> Go | None:
    """ "↩️ Trả lại": ask the reason, then return the list to the unit."""
    submission = await _reviewable(ctx, arg)
    if submission is None:
        return None
    if submission.status != SubmissionStatus.PENDING:
        _wrong_state(ctx, submission)
        return None
    return Switch(REVIEW_REASON, data={"submission_id": submission.id, "mode": "return"})


async def action_reopen(ctx: Ctx, arg: str) -> Go | None:
    """ "🔓 Mở lại" on an approved list: back to the unit for changes, with a reason."""
    submission = await _reviewable(ctx, arg)
    if submission is None:
        return None
    if submission.status != SubmissionStatus.APPROVED:
        _wrong_state(ctx, submission)
        return None
    return Switch(REVIEW_REASON, data={"submission_id": submission.id, "mode": "reopen"})


async def action_names(ctx: Ctx, arg: str) -> Go | None:
    """ "👥": a page of the list's names by title; the first page comes with the XLSX."""
    submission_id, _sep, page_arg = arg.partition(":")
    submission = await _reviewable(ctx, submission_id)
    if submission is None:
        return None
    campaign = await campaign_by_id(ctx.session, submission.campaign_id)
    if campaign is None:
        return None
    names = await read_names(ctx.session, campaign, submission.unit)
    page = min(max(int(page_arg) if page_arg.isdecimal() else 0, 0), names.pages - 1)
    choices: list[Choice] = []
    if page + 1 < names.pages:
        choices.append(Choice(f"!xemten:{submission.id}:{page + 1}", _("👥 More names »")))
    if submission.status == SubmissionStatus.PENDING:
        choices += [
            Choice(f"!approve:{submission.id}", _("✅ Approve")),
            Choice(f"!return:{submission.id}", _("↩️ Return")),
        ]
    xlsx = await list_xlsx(ctx.session, campaign, submission.unit) if page == 0 else None
    ctx.say(names.page_text(page), choices=tuple(choices), file=xlsx)
    return None


async def action_approve_all(ctx: Ctx, arg: str) -> Go | None:
    """ "✅ Duyệt tất cả": the lists /duyet showed, up to the last one shown.

    The button names the last list shown and its round: the lists waiting up to it (in the
    order /duyet shows them) are exactly those shown, less any decided since; a list sent
    (again) after the showing comes later in that order and is left for a look.
    """
    person = ctx.require_person()
    last_arg, _sep, round_arg = arg.partition(":")
    last = await _reviewable(ctx, last_arg)
    if last is None:
        return None
    if last.status != SubmissionStatus.PENDING or str(last.round) != round_arg:
        ctx.say(_("The lists have changed since they were shown. Here they are again:"))
        await say_review_list(ctx)
        return None
    units = await units_with_role(ctx.session, person.id, Role.OFFICER)
    pending = await submissions_below(
        ctx.session, units, SubmissionStatus.PENDING, limit=MAX_LISTED
    )
    cutoff = (last.submitted_at, last.id)
    shown = [s for s in pending if s.submitted_at is not None and (s.submitted_at, s.id) <= cutoff]
    approved = [s for s in shown if await _approve(ctx, s)]
    ctx.say(
        _("✅ Approved {n} lists: {units}. Their leaders and members have been told.").format(
            n=len(approved), units="; ".join(s.unit.name for s in approved)
        )
    )
    return None


# --- the reason ----------------------------------------------------------------------------


async def ask_reason(ctx: Ctx) -> Prompt | Go:
    submission = await _reviewable(ctx, str(ctx.data.get("submission_id", "")))
    if submission is None:
        return Finish()
    if ctx.data.get("mode") == "reopen":
        text = _("Why do you reopen the approved list of {unit}? The leader will read your words.")
    else:
        text = _(
            "Why do you return the list of {unit}? The leader will read your words, for example "
            "“Please add the CSTĐCS list”."
        )
    return Prompt(text.format(unit=submission.unit.name), kind=InputKind.TEXT)


async def answer_reason(ctx: Ctx, answer: Answer) -> Go:
    try:
        reason = clean(answer.text or "", multiline=True, max_length=MAX_REASON)
    except Invalid:
        return Again(
            _("That is a bit long: please keep it under {n} characters.").format(n=MAX_REASON)
        )
    if len(reason) < 3:
        return Again(_("Please write the reason in a few words."))
    # Checked again at the write: another officer may have decided in the meantime.
    submission = await _reviewable(ctx, str(ctx.data.get("submission_id", "")))
    if submission is None:
        return Finish()
    reopen = ctx.data.get("mode") == "reopen"
    expected = SubmissionStatus.APPROVED if reopen else SubmissionStatus.PENDING
    officer = ctx.require_person()
    if not await move_submission(
        ctx.session,
        submission,
        expected,
        status=SubmissionStatus.RETURNED,
        reason=reason,
        decided_at=ctx.now,
        decided_by_id=officer.id,
    ):
        _wrong_state(ctx, submission)
        return Finish()
    audit(
        ctx.session,
        action="submission.reopen" if reopen else "submission.return",
        entity="unit_submission",
        entity_id=submission.id,
        actor_id=officer.id,
        via="chat",
        unit_id=submission.unit_id,
        round=submission.round,
        reason=reason,
    )
    await _tell_leaders(ctx, submission, _Reopened if reopen else _Returned)
    await tell_members(ctx, submission, Outcome.REOPENED if reopen else Outcome.RETURNED)
    ctx.say(
        _("Done: the list of {unit} is now “{status}”. Its leader has been told why.").format(
            unit=submission.unit.name, status=submission_label(submission.status)
        )
    )
    return Finish()


REVIEW_REASON_FLOW = Flow(REVIEW_REASON, (Step("reason", ask_reason, answer_reason),))


# --- the officer's list of lists -----------------------------------------------------------


async def say_review_list(ctx: Ctx) -> None:
    """Each list waiting in the officer's subtree, with its buttons; approved ones to reopen."""
    person = ctx.require_person()
    units = await units_with_role(ctx.session, person.id, Role.OFFICER)
    if not units:
        ctx.say(_("This is for upper-level union officers."))
        return
    pending = await submissions_below(
        ctx.session, units, SubmissionStatus.PENDING, limit=MAX_LISTED + 1
    )
    approved = await submissions_below(
        ctx.session, units, SubmissionStatus.APPROVED, limit=MAX_LISTED
    )
    if not pending:
        ctx.say(_("No list is waiting for your review. 👍"))
    else:
        ctx.say(_("Lists waiting for your review: {n}").format(n=len(pending[:MAX_LISTED])))
    for submission in pending[:MAX_LISTED]:
        campaign = await campaign_by_id(ctx.session, submission.campaign_id)
        if campaign is None:
            continue
        summary = await gather_summary(ctx.session, campaign, submission.unit)
        sender = await ctx.session.get(Person, submission.submitted_by_id or 0)
        # From the second round on, the reason it came back is worth seeing again.
        earlier = submission.reason if submission.round > 1 else None
        reply = review_reply(
            summary, submission.id, submission.round, sender.full_name if sender else "—", earlier
        )
        ctx.say(reply.text, choices=reply.choices)
    shown = pending[:MAX_LISTED]
    if len(shown) > 1:
        last = shown[-1]
        ctx.say(
            (
                _("Checked them all? One tap approves the {n} lists above.")
                if ctx.shows_buttons
                else _("Checked them all? One command approves the {n} lists above.")
            ).format(n=len(shown)),
            choices=(
                Choice(
                    f"!{APPROVE_ALL}:{last.id}:{last.round}",
                    _("✅ Approve all {n} lists").format(n=len(shown)),
                ),
            ),
        )
    if len(pending) > MAX_LISTED:
        ctx.say(_("More lists are waiting: decide on these first, then type /duyet again."))
    if approved:
        ctx.say(
            _("Approved lists (tap one to reopen it for changes):")
            if ctx.shows_buttons
            else _("Approved lists (type a list's command to reopen it for changes):"),
            choices=tuple(Choice(f"!reopen:{s.id}", f"🔓 {s.unit.name}") for s in approved),
        )


async def ask_review(ctx: Ctx) -> Go:
    await say_review_list(ctx)
    return Finish()


async def _never(ctx: Ctx, answer: Answer) -> Go:
    return Finish()


# The menu entry "Lists to review": shows the lists and returns to the menu.
REVIEW_FLOW = Flow(REVIEW, (Step("list", ask_review, _never),))


async def cmd_review(ctx: Ctx, _arg: str) -> Go | None:
    """/duyet: the lists to review, without leaving what the officer was doing."""
    if ctx.person is None:
        return Switch("onboarding")
    await say_review_list(ctx)
    return None


REVIEW_FLOWS = (REVIEW_FLOW, REVIEW_REASON_FLOW)
REVIEW_ACTIONS = {
    "approve": action_approve,
    "return": action_return,
    "reopen": action_reopen,
    "xemten": action_names,
    APPROVE_ALL: action_approve_all,
}
