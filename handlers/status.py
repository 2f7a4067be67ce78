"""The two states of a registration, in the chat's words: its own, and its unit list's.

Both are derived in one place (storage.counts: ``registration_state``, ``list_states``) and
said the same way in "Đăng ký của tôi", the leader's view, the officers' review and the
digest; the files use the same states in the officers' words (storage.counts' labels).
"""

from __future__ import annotations

from handlers.i18n import _
from storage.counts import ACHIEVED, DRAFT, WITHDRAWN, registration_state
from storage.models import SubmissionStatus


def registration_state_label(status: str) -> str:
    """ "registered" / "withdrawn" (a draft is "draft"; "title recognised" once the unit
    recognised it at the year's end): the registration's own state."""
    state = registration_state(status)
    if state == WITHDRAWN:
        return _("withdrawn")
    if state == DRAFT:
        return _("draft")
    if state == ACHIEVED:
        return _("title recognised")
    return _("registered")


def list_state_label(status: str | None) -> str:
    """The statuses officers know from other software (domain.md §6)."""
    labels = {
        SubmissionStatus.NOT_SENT: _("Not sent"),
        SubmissionStatus.PENDING: _("Waiting for approval"),
        SubmissionStatus.RETURNED: _("Returned (to complete)"),
        SubmissionStatus.APPROVED: _("Approved"),
    }
    return labels.get(SubmissionStatus(status or SubmissionStatus.NOT_SENT), status or "")


def both_states_label(status: str, list_status: str | None) -> str:
    """ "registered; unit list: Waiting for approval" — side by side, never mixed (a
    withdrawn row is on no list)."""
    own = registration_state_label(status)
    if registration_state(status) == WITHDRAWN:
        return own
    return _("{state}; unit list: {list}").format(
        state=own, list=list_state_label(list_status).lower()
    )
