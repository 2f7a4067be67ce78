"""Announcements as people see them, and the officer's progress and delivery report.

One place builds the announcement, so the officer's preview and what each recipient gets
are the same messages: the file (if any), then the text with the optional
"📝 Đăng ký ngay" button. The progress message and the final report are built here too, in
the officer's language, for the chat and for ``thidua broadcast status``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.engine.prompt import Choice, OutFile, Reply
from handlers.i18n import _, current_locale
from handlers.text import format_number
from storage.broadcasts import (
    DeliveryCounts,
    NamedRecipient,
    delivery_counts,
    failure_reasons,
    maybe_twice,
)
from storage.models import Broadcast, BroadcastStatus, DeliveryState, Unit

# Notification actions ("!name:arg") of announcements; see Engine.actions.
REGISTER_ACTION = "reg"  # "!reg:<campaign id>": open the registration for the campaign
PREVIEW_ACTION = "bpreview"  # the same button in the officer's preview: explains itself
CANCEL_ACTION = "bcancel"  # "!bcancel:<broadcast id>": the officer cancels it
# The announcement travels as one Telegram message (4,096 characters) with its header.
MAX_TEXT = 3500
BAR_WIDTH = 12
# Names listed under "maybe received twice" (the count is always given).
TWICE_LISTED = 30


@dataclass(frozen=True)
class Attachment:
    kind: str  # "photo" or "document"
    name: str | None
    mime: str | None
    size: int | None = None
    # The platform that holds ``file_id`` (only its own chats can be sent the id).
    channel: str | None = None
    file_id: str | None = None
    content: bytes | None = None

    @property
    def display_name(self) -> str:
        if self.name:
            return self.name
        return _("photo") if self.kind == "photo" else _("document")


@dataclass(frozen=True)
class Announcement:
    unit_name: str
    text: str
    campaign_id: int | None = None
    register_button: bool = False
    attachment: Attachment | None = None

    @classmethod
    def of(cls, broadcast: Broadcast, unit_name: str, content: bytes | None = None) -> Announcement:
        """The announcement of a broadcast row (``content``: its file bytes, if loaded)."""
        attachment = None
        if broadcast.file_kind:
            attachment = Attachment(
                kind=broadcast.file_kind,
                name=broadcast.file_name,
                mime=broadcast.file_mime,
                size=broadcast.file_size,
                channel=broadcast.file_channel,
                file_id=broadcast.file_id,
                content=content,
            )
        return cls(
            unit_name=unit_name,
            text=broadcast.text,
            campaign_id=broadcast.campaign_id,
            register_button=broadcast.register_button and broadcast.campaign_id is not None,
            attachment=attachment,
        )


def announcement_parts(
    announcement: Announcement, channel: str, *, preview: bool = False
) -> list[Reply]:
    """The messages one recipient on ``channel`` gets, in order (call inside use_locale).

    Each part is sent on its own, a second apart (Telegram's pace per chat), so a part is
    never sent twice after a restart. ``preview`` gives the button an id that explains it
    instead of leaving the officer's draft.
    """
    text = _("📣 Announcement from {unit}").format(unit=announcement.unit_name)
    text = f"{text}\n\n{announcement.text}"
    parts: list[Reply] = []
    attachment = announcement.attachment
    if attachment is not None:
        name = attachment.name or ("photo.jpg" if attachment.kind == "photo" else "file")
        if attachment.file_id and attachment.channel == channel:
            parts.append(
                Reply(
                    "",
                    file=OutFile(
                        name, b"", attachment.mime or "", attachment.file_id, attachment.kind
                    ),
                )
            )
        elif attachment.content is not None:
            parts.append(
                Reply(
                    "",
                    file=OutFile(
                        name, attachment.content, attachment.mime or "", kind=attachment.kind
                    ),
                )
            )
        else:
            # The file lives on another platform (sent from Telegram, this person is on Zalo).
            text += "\n\n" + _(
                "📎 This announcement comes with the file “{name}”; please ask your union "
                "officer for it."
            ).format(name=attachment.display_name)
    choices: tuple[Choice, ...] = ()
    if announcement.register_button and announcement.campaign_id is not None:
        action = (
            f"!{PREVIEW_ACTION}:{announcement.campaign_id}"
            if preview
            else f"!{REGISTER_ACTION}:{announcement.campaign_id}"
        )
        choices = (Choice(action, _("📝 Register now")),)
    parts.append(Reply(text, choices=choices))
    return parts


# --- numbers -----------------------------------------------------------------------------


def number(value: int) -> str:
    return format_number(value, current_locale())


def channel_label(channel: str) -> str:
    labels = {
        "telegram": "Telegram",
        "zalo_bot": "Zalo",
        "zalo_oa": _("Zalo Official Account"),
        "web": _("web chat"),
    }
    return labels.get(channel, channel)


def audience_lines(people: int, by_channel: dict[str, int], no_chat: int) -> list[str]:
    """ "Recipients: 1.234 people" with the split per channel and the unreachable ones."""
    lines = [_("Recipients: {n} people").format(n=number(people))]
    for channel, count in sorted(by_channel.items(), key=lambda item: -item[1]):
        lines.append(
            _("• on {channel}: {n}").format(channel=channel_label(channel), n=number(count))
        )
    if no_chat:
        lines.append(
            _("• no chat with the bot yet (will not receive it): {n}").format(n=number(no_chat))
        )
    return lines


def duration_text(seconds: float) -> str:
    if seconds < 90:
        return _("less than 2 minutes")
    minutes = round(seconds / 60)
    if minutes < 90:
        return _("about {n} minutes").format(n=minutes)
    return _("about {h} h {m} min").format(h=minutes // 60, m=minutes % 60)


def progress_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    share = done / total if total else 1.0
    filled = min(width, int(share * width + 0.5))
    return "▓" * filled + "░" * (width - filled) + f" {int(share * 100)}%"


# --- progress and report -----------------------------------------------------------------


@dataclass
class ReportData:
    broadcast_id: int
    unit_name: str
    status: str
    total: int
    no_chat: int
    materialised: bool
    counts: DeliveryCounts
    reasons: list[tuple[str, str, int]] = field(default_factory=list)
    twice: list[NamedRecipient] = field(default_factory=list)
    scheduled_at: datetime | None = None
    eta_seconds: float | None = None


def progress_text(data: ReportData) -> str:
    """The officer's message while sending: a bar, sent / not delivered / left, the ETA."""
    counts = data.counts
    total = max(data.total, counts.total)
    lines = [
        _("📣 Announcement #{id}: sending…").format(id=data.broadcast_id),
        progress_bar(counts.done, total),
        _("✅ Sent: {sent} · ⚠️ Not delivered: {failed} · ⏳ Left: {left}").format(
            sent=number(counts[DeliveryState.SENT]),
            failed=number(counts.not_delivered),
            left=number(max(total - counts.done, 0) if data.materialised else counts.left),
        ),
    ]
    if not data.materialised:
        lines.append(_("(still listing the recipients)"))
    if data.eta_seconds is not None and counts.left:
        lines.append(_("Time left: {eta}").format(eta=duration_text(data.eta_seconds)))
    return "\n".join(lines)


def report_text(data: ReportData, tz: tzinfo | None = None) -> str:
    """The delivery report: delivered, blocked, unreachable, failed with reasons, and the
    people who may have got it twice because sending was interrupted."""
    counts = data.counts
    titles = {
        BroadcastStatus.DONE: _("📣 Announcement #{id}: finished"),
        BroadcastStatus.CANCELLED: _("📣 Announcement #{id}: cancelled"),
        BroadcastStatus.SENDING: _("📣 Announcement #{id}: sending…"),
        BroadcastStatus.SCHEDULED: _("📣 Announcement #{id}: scheduled"),
        BroadcastStatus.DRAFT: _("📣 Announcement #{id}: draft"),
    }
    lines = [titles.get(BroadcastStatus(data.status), "#{id}").format(id=data.broadcast_id)]
    lines.append(_("From: {unit}").format(unit=data.unit_name))
    if data.status == BroadcastStatus.SCHEDULED and data.scheduled_at is not None:
        when = data.scheduled_at.astimezone(tz) if tz else data.scheduled_at
        lines.append(_("Goes out at {time}").format(time=when.strftime("%H:%M %d/%m/%Y")))
    if data.status == BroadcastStatus.SENDING:
        lines.append(progress_bar(counts.done, max(data.total, counts.total)))
    lines.append(
        _("Recipients: {n} (and {no_chat} without a chat with the bot)").format(
            n=number(max(data.total, counts.total)), no_chat=number(data.no_chat)
        )
    )
    lines.append(_("✅ Delivered: {n}").format(n=number(counts[DeliveryState.SENT])))
    lines.append(_("🚫 Blocked the bot: {n}").format(n=number(counts[DeliveryState.BLOCKED])))
    lines.append(
        _("📵 Not reachable (Zalo OA, no interaction in 7 days): {n}").format(
            n=number(counts[DeliveryState.UNREACHABLE])
        )
    )
    lines.append(_("❌ Failed: {n}").format(n=number(counts[DeliveryState.FAILED])))
    if counts.left:
        lines.append(_("⏳ Not sent yet: {n}").format(n=number(counts.left)))
    for state, error, n in data.reasons:
        if state == DeliveryState.FAILED:
            lines.append(_("   • {reason}: {n}").format(reason=error or "?", n=number(n)))
    if counts.maybe_twice:
        lines.append(
            _(
                "⚠️ May have received it twice (sending was interrupted while their message "
                "was on its way): {n}"
            ).format(n=number(counts.maybe_twice))
        )
        for person in data.twice:
            where = f" — {person.unit}" if person.unit else ""
            lines.append(f"   • {person.full_name}{where}")
        if counts.maybe_twice > len(data.twice):
            lines.append(
                _("   … and {n} more").format(n=number(counts.maybe_twice - len(data.twice)))
            )
    if data.eta_seconds is not None and counts.left and data.status == BroadcastStatus.SENDING:
        lines.append(_("Time left: {eta}").format(eta=duration_text(data.eta_seconds)))
    return "\n".join(lines)


async def build_report(
    session: AsyncSession,
    broadcast_id: int,
    eta: Callable[[DeliveryCounts], float | None] | None = None,
) -> ReportData:
    """Everything the progress message, the final report and the CLI show."""
    broadcast = await session.get(Broadcast, broadcast_id)
    if broadcast is None:
        raise LookupError(f"no broadcast #{broadcast_id}")
    unit = await session.get(Unit, broadcast.unit_id)
    counts = await delivery_counts(session, broadcast_id)
    return ReportData(
        broadcast_id=broadcast_id,
        unit_name=unit.name if unit else "",
        status=broadcast.status,
        total=broadcast.total,
        no_chat=broadcast.no_chat,
        materialised=broadcast.materialised,
        counts=counts,
        reasons=await failure_reasons(session, broadcast_id),
        twice=await maybe_twice(session, broadcast_id, TWICE_LISTED),
        scheduled_at=broadcast.scheduled_at,
        eta_seconds=eta(counts) if eta is not None else None,
    )
