"""The data model.

Everything a person or an officer would miss after a restart lives here: the unit tree,
people and their channel identities, roles, invites, campaigns, the title catalogue,
registrations, conversation state and the audit log.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime, utcnow

# Deterministic constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class UnitKind(StrEnum):
    TLD = "tld"  # Tổng Liên đoàn
    PROVINCE = "province"  # LĐLĐ tỉnh / công đoàn ngành trung ương
    UPPER = "upper"  # công đoàn cấp trên trực tiếp cơ sở
    GRASSROOTS = "grassroots"  # công đoàn cơ sở (CĐCS)
    DEPARTMENT = "department"  # công đoàn bộ phận
    TEAM = "team"  # tổ công đoàn


class Role(StrEnum):
    MEMBER = "member"
    LEADER = "leader"
    OFFICER = "officer"


class RegistrationStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    APPROVED = "approved"
    RETURNED = "returned"
    WITHDRAWN = "withdrawn"


class TitleTarget(StrEnum):
    INDIVIDUAL = "individual"
    COLLECTIVE = "collective"
    BOTH = "both"


class Unit(Base):
    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    # Accent-free lower-case name, so "cong ty may" finds "Công ty May".
    search_name: Mapped[str] = mapped_column(String(300), index=True)
    kind: Mapped[str] = mapped_column(String(20), default=UnitKind.GRASSROOTS)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # Materialised path of ids ("/1/4/17/"): a whole subtree is one indexed prefix match.
    path: Mapped[str] = mapped_column(String(1000), index=True, default="/")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Unit | None] = relationship(remote_side=[id])


class Person(Base):
    __tablename__ = "people"

    id: Mapped[int] = mapped_column(primary_key=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20), index=True)
    position: Mapped[str | None] = mapped_column(String(200))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    # "chat" (onboarded in the bot), "roster" (imported), "leader" (entered by a leader).
    source: Mapped[str] = mapped_column(String(20), default="chat")
    locale: Mapped[str | None] = mapped_column(String(10))
    reminders_muted: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit | None] = relationship()


class ChannelIdentity(Base):
    """One address of a person on one platform (Telegram user id, Zalo id, web code...).

    Exists before onboarding ends (``person_id`` is empty then), so a conversation can be
    kept for someone the bot does not know yet.
    """

    __tablename__ = "channel_identities"
    __table_args__ = (UniqueConstraint("channel", "external_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    person: Mapped[Person | None] = relationship()


class UnitRole(Base):
    __tablename__ = "unit_roles"
    __table_args__ = (UniqueConstraint("person_id", "unit_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Invite(Base):
    __tablename__ = "invites"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    max_uses: Mapped[int | None] = mapped_column(Integer)
    uses: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    unit: Mapped[Unit] = relationship()


class Title(Base):
    """The catalogue of titles and awards (domain.md §3), kept as editable data."""

    __tablename__ = "titles"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    abbreviation: Mapped[str | None] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(20))
    level: Mapped[str] = mapped_column(String(50))
    # Award tier used to order summaries from the highest level down.
    rank: Mapped[int] = mapped_column(Integer, default=100)
    # Eligibility rules as data; evaluated by handlers.rules.
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(300))
    issuer_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    year: Mapped[int] = mapped_column(Integer)
    registration_deadline: Mapped[date] = mapped_column(Date)
    title_codes: Mapped[list[Any]] = mapped_column(default=list)
    # The rest of the campaign file (rule percentages, occasions, reminders, ...).
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Last receipt number handed out; bumped atomically with UPDATE ... RETURNING.
    receipt_seq: Mapped[int] = mapped_column(Integer, default=0)
    # The launch plan itself (kế hoạch phát động), read from the file the campaign file
    # names, so the bot can send it wherever it runs. Loaded only when it is sent.
    plan_file_name: Mapped[str | None] = mapped_column(String(200))
    plan_file_mime: Mapped[str | None] = mapped_column(String(100))
    plan_file_content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    issuer: Mapped[Unit] = relationship()
    phases: Mapped[list[CampaignPhase]] = relationship(
        order_by="CampaignPhase.position", cascade="all, delete-orphan"
    )


class CampaignPhase(Base):
    __tablename__ = "campaign_phases"

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    theme: Mapped[str | None] = mapped_column(Text)
    # The last day a work greeting an occasion of this phase can be registered (the phase's
    # end unless the campaign file says otherwise); see storage.campaigns.works_deadline.
    works_until: Mapped[date | None] = mapped_column(Date)


class Registration(Base):
    """A registered title: one person's (individual) or one unit's (collective)."""

    __tablename__ = "registrations"
    __table_args__ = (
        # One live registration per person, title and campaign; withdrawn ones do not count.
        Index(
            "uq_registrations_person_title_live",
            "campaign_id",
            "person_id",
            "title_code",
            unique=True,
            sqlite_where=text("status != 'withdrawn' AND person_id IS NOT NULL"),
            postgresql_where=text("status != 'withdrawn' AND person_id IS NOT NULL"),
        ),
        # A collective registers each collective title once per campaign (the unit itself,
        # collective_name "", or one of its named collectives: tổ, phòng, phân xưởng).
        Index(
            "uq_registrations_unit_title_live",
            "campaign_id",
            "unit_id",
            "title_code",
            "collective_name",
            unique=True,
            sqlite_where=text("status != 'withdrawn' AND is_collective"),
            postgresql_where=text("status != 'withdrawn' AND is_collective"),
        ),
        # Covering the digest's counts: per unit and title, read from the index alone
        # (bench/plans/digest-*.txt); also every "registrations of these units" lookup.
        Index(
            "ix_registrations_campaign_unit_title",
            "campaign_id",
            "unit_id",
            "title_code",
            "is_collective",
            "status",
        ),
        # Who registered in a campaign, in person order: the reminder selection and the
        # digest's progress merge it with people instead of sorting a million ids.
        Index("ix_registrations_campaign_person", "campaign_id", "person_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_no: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    title_code: Mapped[str] = mapped_column(String(32))
    is_collective: Mapped[bool] = mapped_column(Boolean, default=False)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    # The person's unit at the time (individual) or the registering unit (collective).
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    # A collective title's collective (TTLĐXS, TTLĐTT are conferred on a tổ, phòng, phân
    # xưởng, the enterprise or agency): its name, and its unit when it is in the org tree.
    # "" for the registering unit itself and for individual registrations.
    collective_name: Mapped[str] = mapped_column(String(300), default="", server_default="")
    collective_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    status: Mapped[str] = mapped_column(String(20), default=RegistrationStatus.SUBMITTED)
    commitment: Mapped[str | None] = mapped_column(Text)
    # "chat", "leader" (entered on behalf of someone), "import".
    source: Mapped[str] = mapped_column(String(20), default="chat")
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column()

    campaign: Mapped[Campaign] = relationship()
    person: Mapped[Person | None] = relationship(foreign_keys=[person_id])
    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id])


class Conversation(Base):
    """Where one identity is in a flow, with the answers given so far (the draft).

    ``version`` is bumped on every write; a write that finds another version lost a race
    with a second message of the same person and is redone on fresh state.
    """

    __tablename__ = "conversations"

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"), unique=True)
    flow: Mapped[str | None] = mapped_column(String(50))
    step: Mapped[str | None] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ReferenceVersion(Base):
    """One row whose ``version`` every write of titles, campaigns, units or roles bumps, so
    each bot process knows when the reference data it keeps is stale (storage.refcache)."""

    __tablename__ = "reference_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # "chat", "cli", "import", "leader", "system".
    via: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(50))
    entity: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)


class SubmissionStatus(StrEnum):
    """A unit's list as seen by the level above (the statuses officers know)."""

    NOT_SENT = "not_sent"  # Chưa gửi
    PENDING = "pending"  # Chờ duyệt
    RETURNED = "returned"  # Trả lại (bổ sung)
    APPROVED = "approved"  # Đã duyệt


class Initiative(Base):
    """A sáng kiến registered by a member (with co-authors) for a campaign."""

    __tablename__ = "initiatives"
    __table_args__ = (Index("ix_initiatives_campaign_unit", "campaign_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_no: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    # The registering author; co-authors are in initiative_authors.
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    name: Mapped[str] = mapped_column(String(300))
    field: Mapped[str] = mapped_column(String(40))
    description: Mapped[str | None] = mapped_column(Text)
    applied_on: Mapped[date | None] = mapped_column(Date)
    # Expected benefit (giá trị làm lợi) in đồng.
    benefit: Mapped[int | None] = mapped_column(BigInteger)
    # Who the author is for Bằng Lao động sáng tạo: "worker", "professional", "manager"
    # (its benefit threshold depends on it); asked only when the benefit is near one.
    author_category: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=RegistrationStatus.SUBMITTED)
    source: Mapped[str] = mapped_column(String(20), default="chat")
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column()

    campaign: Mapped[Campaign] = relationship()
    authors: Mapped[list[InitiativeAuthor]] = relationship(
        order_by="InitiativeAuthor.position", cascade="all, delete-orphan"
    )


class InitiativeAuthor(Base):
    """A co-author: a person the bot knows, or just a name typed by the registrant."""

    __tablename__ = "initiative_authors"

    id: Mapped[int] = mapped_column(primary_key=True)
    initiative_id: Mapped[int] = mapped_column(ForeignKey("initiatives.id"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))


class Attachment(Base):
    """A file sent with a registration: the platform's file id plus what we checked of it."""

    __tablename__ = "attachments"
    __table_args__ = (Index("ix_attachments_owner", "owner_kind", "owner_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    owner_kind: Mapped[str] = mapped_column(String(20))  # "initiative", "work"
    owner_id: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(20))
    file_id: Mapped[str] = mapped_column(String(300))
    filename: Mapped[str | None] = mapped_column(String(300))
    mime: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Work(Base):
    """A commemorative work (công trình, sản phẩm chào mừng) registered by a unit."""

    __tablename__ = "works"
    __table_args__ = (Index("ix_works_campaign_unit", "campaign_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    receipt_no: Mapped[str] = mapped_column(String(40), unique=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    name: Mapped[str] = mapped_column(String(300))
    occasion: Mapped[str] = mapped_column(String(300))
    # The occasion's day (from the campaign file's occasions, or typed by the leader).
    occasion_on: Mapped[date | None] = mapped_column(Date)
    value: Mapped[int] = mapped_column(BigInteger)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    # đề nghị gắn biển → đã gắn biển (the day the leader said the plaque was put up).
    plaque_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    plaque_installed_on: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default=RegistrationStatus.SUBMITTED)
    source: Mapped[str] = mapped_column(String(20), default="chat")
    entered_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    withdrawn_at: Mapped[datetime | None] = mapped_column()

    campaign: Mapped[Campaign] = relationship()
    unit: Mapped[Unit] = relationship()


class UnitSubmission(Base):
    """A unit's list sent to the level above, and what that level decided."""

    __tablename__ = "unit_submissions"
    __table_args__ = (UniqueConstraint("campaign_id", "unit_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default=SubmissionStatus.NOT_SENT)
    submitted_at: Mapped[datetime | None] = mapped_column()
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    # Why it was returned; kept after resubmission for the history in the audit log.
    reason: Mapped[str | None] = mapped_column(Text)
    round: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    unit: Mapped[Unit] = relationship()


class OutboxMessage(Base):
    """A message to someone other than the sender, written in the same transaction as the
    change that caused it (a transactional outbox), so a crash between commit and delivery
    loses nothing: the dispatcher sends what is pending after a restart.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "sent_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    # The Reply as JSON: text, choices, one_per_row.
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_mime: Mapped[str | None] = mapped_column(String(100))
    file_content: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # A dispatcher holds a message until this time; another may take it over afterwards.
    claimed_until: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None] = mapped_column()
    # "sent", "blocked", "unreachable" (outside Zalo OA's 7-day window), "failed" once settled.
    outcome: Mapped[str | None] = mapped_column(String(20))
    last_error: Mapped[str | None] = mapped_column(Text)


class ReminderLog(Base):
    """Every reminder and scheduled digest handed to the outbox, one row per person and due
    point: the delivery log that makes the reminder pass idempotent.

    The row is written in the same transaction as the outbox message, so after a crash both
    exist or neither does; a second pass (after a restart, or by a second process at the
    same moment) hits the unique key and sends nothing again.
    """

    __tablename__ = "reminder_log"
    __table_args__ = (UniqueConstraint("campaign_id", "person_id", "kind", "due_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    # "member", "leader" or "digest": one of each per person and due point.
    kind: Mapped[str] = mapped_column(String(20))
    # Which due point: "deadline:2027-01-25:-3d", "phase1:2027-06-30:-7d", "digest:2027-01-18:u4".
    due_key: Mapped[str] = mapped_column(String(120))
    # What was said: "register" or "draft" for members; kept for the delivery report.
    detail: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebSession(Base):
    """A browser signed in to the web chat.

    The cookie carries a random token; only its SHA-256 is kept, so a copy of the database
    (or a log of it) does not let anyone act as the person. The session points at the web
    address (``external_id``) the conversation runs under: several browsers of one demo
    person share one address, and the token never appears in the outbox or the logs.
    """

    __tablename__ = "web_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    external_id: Mapped[str] = mapped_column(String(100), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebMessage(Base):
    """One bubble of a web chat, the person's own or the bot's.

    Kept so a reload (or another phone) shows the conversation, and so messages queued for
    the person by others (the outbox) wait here until the page fetches them.
    """

    __tablename__ = "web_messages"
    __table_args__ = (Index("ix_web_messages_address", "external_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str] = mapped_column(String(100))
    # "me" (the person) or "bot".
    sender: Mapped[str] = mapped_column(String(10))
    # text, choices [{id, label, nav}], seq, one_per_row, phone (a phone number is asked).
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_mime: Mapped[str | None] = mapped_column(String(100))
    # Loaded only when the file is downloaded, not with every listing of the chat.
    file_content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class SharedFile(Base):
    """A file offered as a link where the chat cannot carry files (Zalo).

    The link is signed and expires; the row is dropped some time after it has expired.
    """

    __tablename__ = "shared_files"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    mime: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class ProcessedUpdate(Base):
    """A platform update a channel has taken, by the platform's own message id.

    Zalo re-sends webhooks it thinks were lost and its polling has no offsets: without this a
    restart or a retry would answer the same message twice (on a text-only channel a repeated
    "1" could even answer the next question). Rows older than any re-delivery are pruned.
    """

    __tablename__ = "processed_updates"
    __table_args__ = (UniqueConstraint("channel", "update_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(20))
    update_key: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ChannelSecret(Base):
    """Platform credentials that change while the bot runs (the Zalo OA token pair).

    The OA refresh token is single use and rotates: the new one must be on disk before the
    new access token is used, or a crash leaves only a spent token behind.
    """

    __tablename__ = "channel_secrets"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[dict[str, Any]] = mapped_column(default=dict)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class LinkCode(Base):
    """A one-time code (/lienket) that attaches another chat app to a person.

    Only the SHA-256 of the code is kept; a code is spent by setting ``used_at``.
    """

    __tablename__ = "link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"), index=True)
    # The channel the code was shown on: told when the code is used.
    issued_via: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime] = mapped_column()
    used_at: Mapped[datetime | None] = mapped_column()
    used_by_identity_id: Mapped[int | None] = mapped_column(ForeignKey("channel_identities.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BroadcastStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"  # waiting for scheduled_at ("send now" is scheduled at now)
    SENDING = "sending"
    DONE = "done"
    CANCELLED = "cancelled"


class DeliveryState(StrEnum):
    PENDING = "pending"
    # Committed just before the platform call: after a crash, such a row may or may not
    # have arrived (no platform has an idempotency key), so it is re-sent and reported.
    IN_FLIGHT = "in_flight"
    SENT = "sent"
    BLOCKED = "blocked"  # the person blocked the bot (403); never retried
    UNREACHABLE = "unreachable"  # outside Zalo OA's interaction window
    FAILED = "failed"  # given up after retries, or refused by the platform


class Broadcast(Base):
    """An announcement (thông báo, phát động thi đua) from an officer to part of the tree.

    The audience is kept as a rule (units, role, "not registered yet") and turned into one
    delivery row per person when sending starts; the rows, not this one, say who got it.
    """

    __tablename__ = "broadcasts"
    __table_args__ = (Index("ix_broadcasts_due", "status", "scheduled_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Set for broadcasts made by the system (a campaign file's announcement), so loading the
    # same file again updates the broadcast instead of adding a second one.
    key: Mapped[str | None] = mapped_column(String(100), unique=True)
    # "chat", "campaign" or "cli".
    source: Mapped[str] = mapped_column(String(20), default="chat")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    text: Mapped[str] = mapped_column(Text)
    # Adds "📝 Đăng ký ngay", which opens the registration for ``campaign_id``.
    register_button: Mapped[bool] = mapped_column(Boolean, default=False)
    # {"unit_ids": [..] or null for the whole subtree, "role": "all"|"leader"|"officer",
    # "unregistered": bool}
    audience: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # One photo or document: a platform's file id (re-sent by id on that platform), and/or
    # the bytes (every channel that can carry files).
    file_kind: Mapped[str | None] = mapped_column(String(20))  # "photo" or "document"
    file_channel: Mapped[str | None] = mapped_column(String(20))
    file_id: Mapped[str | None] = mapped_column(String(300))
    file_name: Mapped[str | None] = mapped_column(String(200))
    file_mime: Mapped[str | None] = mapped_column(String(100))
    file_size: Mapped[int | None] = mapped_column(Integer)
    file_content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    status: Mapped[str] = mapped_column(String(20), default=BroadcastStatus.DRAFT)
    scheduled_at: Mapped[datetime | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    cancelled_at: Mapped[datetime | None] = mapped_column()
    # The process sending it holds a lease it renews; a crashed sender's lease runs out.
    owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column()
    # Recipients are written in batches of people ordered by id; this is the last id done.
    materialised_upto: Mapped[int] = mapped_column(BigInteger, default=0)
    materialised: Mapped[bool] = mapped_column(Boolean, default=False)
    total: Mapped[int] = mapped_column(Integer, default=0)
    no_chat: Mapped[int] = mapped_column(Integer, default=0)
    # The latest counts by state (a snapshot for listings; the delivery rows are the truth).
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # Where progress is shown: the officer's chat, and the message edited there if the
    # channel can edit messages.
    progress_channel: Mapped[str | None] = mapped_column(String(20))
    progress_external_id: Mapped[str | None] = mapped_column(String(100))
    progress_ref: Mapped[str | None] = mapped_column(String(100))
    reported_at: Mapped[datetime | None] = mapped_column()

    unit: Mapped[Unit] = relationship()


class BroadcastDelivery(Base):
    """One recipient of a broadcast: the delivery log that makes sending idempotent.

    pending → in_flight (committed before the platform call) → sent / blocked / unreachable /
    failed (committed right after). A message in several parts (text, then the file) is sent
    part by part; ``parts_done`` says how many have arrived.
    """

    __tablename__ = "broadcast_deliveries"
    __table_args__ = (
        UniqueConstraint("broadcast_id", "person_id"),
        Index("ix_broadcast_deliveries_queue", "broadcast_id", "state", "not_before"),
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True
    )
    broadcast_id: Mapped[int] = mapped_column(ForeignKey("broadcasts.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id"))
    channel: Mapped[str] = mapped_column(String(20))
    external_id: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(20), default=DeliveryState.PENDING)
    parts_done: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Found in flight after a crash and sent again: "có thể đã nhận hai lần".
    maybe_twice: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text)
    # Not sent before this time: a retry's back-off, or the 1 s between parts to one chat.
    not_before: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()


class ClaimStatus(StrEnum):
    PENDING = "pending"  # chờ xác nhận
    CONFIRMED = "confirmed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"  # the claimant proved it otherwise, or started again


class IdentityClaim(Base):
    """A chat that says "I am this person" (or "I am new in this unit") without proof yet.

    It waits until a leader of ``unit_id`` confirms it; until then the chat is linked to no
    one, sees nothing of the roster person and can register nothing in their name.
    ``person_id`` is the roster person with the typed phone, or None for a newcomer.
    """

    __tablename__ = "identity_claims"
    __table_args__ = (Index("ix_identity_claims_identity", "identity_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    identity_id: Mapped[int] = mapped_column(ForeignKey("channel_identities.id"))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    full_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str | None] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default=ClaimStatus.PENDING)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column()
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("people.id"))


class ProofFailure(Base):
    """One failed proof (a wrong personal or link code) against a phone or a chat.

    Counted from the database, so /huy, a restart or another process does not reset them.
    """

    __tablename__ = "proof_failures"
    __table_args__ = (Index("ix_proof_failures_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # "phone:0912345678" or "chat:telegram:12345".
    key: Mapped[str] = mapped_column(String(140))
    at: Mapped[datetime] = mapped_column(default=utcnow)
