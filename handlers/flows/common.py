"""Small pieces several flows share: labels, dates and deadlines in the person's language."""

from __future__ import annotations

from datetime import date

from handlers.i18n import _, current_locale
from handlers.text import format_date
from storage.models import Campaign, RegistrationStatus, Title


def title_label(title: Title) -> str:
    """ "Lao động tiên tiến (LĐTT)": the full name people know, with the short form."""
    if title.abbreviation:
        return f"{title.name} ({title.abbreviation})"
    return title.name


def title_aliases(title: Title) -> tuple[str, ...]:
    return tuple(a for a in (title.abbreviation, title.code) if a)


def status_label(status: str) -> str:
    labels = {
        RegistrationStatus.DRAFT: _("draft"),
        RegistrationStatus.SUBMITTED: _("registered"),
        RegistrationStatus.APPROVED: _("approved"),
        RegistrationStatus.RETURNED: _("returned for completion"),
        RegistrationStatus.WITHDRAWN: _("withdrawn"),
    }
    return labels.get(RegistrationStatus(status), status)


def show_date(value: date) -> str:
    return format_date(value, current_locale())


def registration_open(campaign: Campaign, today: date) -> bool:
    return today <= campaign.registration_deadline


def deadline_passed_text(campaign: Campaign) -> str:
    return _(
        "Registration for “{campaign}” closed on {deadline}. If you think this is a mistake, "
        "please contact your union officer."
    ).format(campaign=campaign.name, deadline=show_date(campaign.registration_deadline))
