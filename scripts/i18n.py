"""Catalogue upkeep: extract the messages, update the vi and en catalogues, compile them.

    python scripts/i18n.py           # extract + update + compile
    python scripts/i18n.py --fill F  # also merge translations from JSON {locale: {msgid: msgstr}}
    python scripts/i18n.py --compile # only compile the catalogues (what `make` does)

Wraps `pybabel extract/update/compile` with the project's options so everybody runs the same.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
LOCALES = ROOT / "locales"
POT = LOCALES / "messages.pot"
LANGS = ("vi", "en")


def pybabel(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "babel.messages.frontend", *args], check=True, cwd=ROOT)


def extract() -> None:
    pybabel(
        "extract",
        "-F",
        "babel.cfg",
        "-k",
        "_",
        "-k",
        "__",
        "-k",
        "N_",
        "--no-location",
        "--sort-output",
        "--omit-header",
        "-o",
        str(POT),
        ".",
    )


# The header every catalogue keeps (`msgfmt -c` needs one): fixed values, so running this
# script on two branches writes the same lines and merges stay quiet.
HEADER_DATE = datetime(2026, 12, 4, tzinfo=UTC)
LANGUAGE_TEAMS = {"vi": "Tiếng Việt", "en": "English"}


def _with_header(catalog: Catalog, lang: str) -> Catalog:
    catalog.project = "thidua-bot"
    catalog.version = "1"
    catalog.copyright_holder = "Thi đua bot"
    catalog.msgid_bugs_address = ""
    catalog.last_translator = "Thi đua bot"
    catalog.language_team = LANGUAGE_TEAMS[lang]
    catalog.charset = "utf-8"
    catalog.creation_date = HEADER_DATE
    catalog.revision_date = HEADER_DATE
    catalog.fuzzy = False
    catalog.header_comment = (
        f"# {LANGUAGE_TEAMS[lang]} messages of the Thi đua bot.\n"
        "# Kept by scripts/i18n.py: edit the translations, not this header."
    )
    return catalog


def _write(po: Path, catalog: Catalog) -> None:
    with po.open("wb") as fh:
        write_po(
            fh,
            catalog,
            width=76,
            ignore_obsolete=True,
            include_previous=False,
            sort_output=True,
            no_location=True,
        )


def _read(po: Path, lang: str) -> Catalog:
    with po.open("rb") as fh:
        return read_po(fh, locale=lang)


def update() -> None:
    """`pybabel update --no-fuzzy-matching --ignore-obsolete`, keeping the header."""
    with POT.open("rb") as fh:
        template = read_po(fh)
    for lang in LANGS:
        po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
        po.parent.mkdir(parents=True, exist_ok=True)
        catalog = _read(po, lang) if po.exists() else Catalog(locale=lang)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        _write(po, _with_header(catalog, lang))


def fill(path: Path) -> None:
    table: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    for lang, strings in table.items():
        po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
        catalog = _read(po, lang)
        for message in catalog:
            if message.id and message.id in strings:
                message.string = strings[message.id]
                message.flags.discard("fuzzy")
        _write(po, _with_header(catalog, lang))


def compile_all() -> None:
    """Write the .mo files.

    Not `pybabel compile`: Babel takes a literal "%" ("110% of the plan") for a %-placeholder
    and refuses the catalogue. Our messages use {}-placeholders only, and tests/test_i18n.py
    checks that those survive translation.
    """
    for lang in LANGS:
        directory = LOCALES / lang / "LC_MESSAGES"
        with (directory / "messages.po").open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        with (directory / "messages.mo").open("wb") as fh:
            write_mo(fh, catalog, use_fuzzy=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fill", type=Path, help="JSON file of translations to merge")
    parser.add_argument("--compile", action="store_true", help="only compile the catalogues")
    args = parser.parse_args()
    if not args.compile:
        extract()
        update()
        if args.fill:
            fill(args.fill)
    compile_all()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
