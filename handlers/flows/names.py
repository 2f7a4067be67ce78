"""A unit's list by title with the names, a page at a time, and the list as the officers'
XLSX form: what the officer has in front of them to decide, and the leader before sending.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.digest import XLSX_MIME
from handlers.engine.prompt import OutFile
from handlers.flows.common import title_label
from handlers.i18n import _
from storage.list_people import ListEntry, list_entries
from storage.models import Campaign, Title, Unit
from storage.registration_forms import export_form_xlsx
from storage.repo import titles_by_code

NAMES_PER_PAGE = 15


def pages_of(entries: list[ListEntry], per_page: int) -> int:
    return max(1, -(-len(entries) // per_page))


def names_lines(
    entries: list[ListEntry], titles: dict[str, Title], page: int, per_page: int
) -> list[str]:
    """The entries of one page under their title's heading ("LĐTT (12):"), numbered."""
    lines: list[str] = []
    heading = None
    start = page * per_page
    for number, entry in enumerate(entries[start : start + per_page], start=start + 1):
        if entry.title_code != heading:
            heading = entry.title_code
            title = titles.get(heading)
            count = sum(1 for e in entries if e.title_code == heading)
            lines.append(f"\n{title_label(title) if title else heading} ({count}):")
        lines.append(f"{number}. {entry.full_name}")
    return lines


@dataclass(frozen=True)
class Names:
    """Who is on a unit's list, read once; the text is made in each reader's language."""

    unit_name: str
    entries: list[ListEntry]
    titles: dict[str, Title]

    @property
    def pages(self) -> int:
        return pages_of(self.entries, NAMES_PER_PAGE)

    def page_text(self, page: int) -> str:
        """One page of names under their titles, for an officer (no buttons per name)."""
        page = min(max(page, 0), self.pages - 1)
        head = _("👥 Names on the list of {unit} (page {page}/{pages}):").format(
            unit=self.unit_name, page=page + 1, pages=self.pages
        )
        body = names_lines(self.entries, self.titles, page, NAMES_PER_PAGE)
        if not self.entries:
            body = [_("Nobody has registered a personal title yet.")]
        return "\n".join([head, *body])


async def read_names(session: AsyncSession, campaign: Campaign, unit: Unit) -> Names:
    entries = await list_entries(session, campaign.id, unit)
    titles = await titles_by_code(session, sorted({e.title_code for e in entries}))
    return Names(unit.name, entries, titles)


async def list_xlsx(session: AsyncSession, campaign: Campaign, unit: Unit) -> OutFile:
    """The unit's list in the officers' form (titles, initiatives, works), as for /tonghop."""
    buffer = io.BytesIO()
    # Rows read and written a batch of units at a time (the writing in a thread, so chats
    # are answered meanwhile).
    await export_form_xlsx(session, campaign.code, unit.code, "all", buffer)
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_") else "-" for ch in unit.code)
    return OutFile(f"danh-sach-{campaign.code}-{safe}.xlsx", buffer.getvalue(), XLSX_MIME)
