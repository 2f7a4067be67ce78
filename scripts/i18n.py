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
from pathlib import Path

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


def update() -> None:
    for lang in LANGS:
        po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
        if po.exists():
            pybabel(
                "update",
                "-i",
                str(POT),
                "-d",
                str(LOCALES),
                "-l",
                lang,
                "--no-fuzzy-matching",
                "--omit-header",
                "--ignore-obsolete",
            )
        else:
            pybabel("init", "-i", str(POT), "-d", str(LOCALES), "-l", lang)


def fill(path: Path) -> None:
    table: dict[str, dict[str, str]] = json.loads(path.read_text(encoding="utf-8"))
    for lang, strings in table.items():
        po = LOCALES / lang / "LC_MESSAGES" / "messages.po"
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=lang)
        for message in catalog:
            if message.id and message.id in strings:
                message.string = strings[message.id]
                message.flags.discard("fuzzy")
        with po.open("wb") as fh:
            write_po(
                fh,
                catalog,
                # As `pybabel update --omit-header` writes them: a fill changes only its lines.
                width=76,
                omit_header=True,
                ignore_obsolete=True,
                include_previous=False,
                sort_output=True,
                no_location=True,
            )


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
