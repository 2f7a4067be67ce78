"""The Vietnamese catalogue is complete and consistent with the code."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from handlers.i18n import _, translations, use_locale

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def code_messages() -> set[str]:
    found: set[str] = set()
    for directory in ("handlers", "bot"):
        for _filename, _lineno, message, _comments, _context in extract_from_dir(
            ROOT / directory,
            method_map=[("**.py", "python")],
            keywords={"_": None, "__": None, "N_": None},
        ):
            found.add(message if isinstance(message, str) else message[0])
    return found


def catalogue(lang: str) -> dict[str, str]:
    with (ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return {str(m.id): str(m.string) for m in read_po(fh) if m.id and "fuzzy" not in m.flags}


def test_every_message_in_the_code_has_a_vietnamese_translation() -> None:
    vi = catalogue("vi")
    missing = sorted(m for m in code_messages() if not vi.get(m))
    assert missing == [], "run `python scripts/i18n.py` and translate: " + repr(missing)


def test_placeholders_survive_translation() -> None:
    for lang in ("vi", "en"):
        for msgid, msgstr in catalogue(lang).items():
            if msgstr:
                assert set(PLACEHOLDER.findall(msgid)) == set(PLACEHOLDER.findall(msgstr)), msgid


def test_vietnamese_is_the_default_and_english_the_second() -> None:
    assert translations("vi").ugettext("✅ Confirm") == "✅ Xác nhận"
    with use_locale("en"):
        assert _("✅ Confirm") == "✅ Confirm"
    with use_locale("vi"):
        assert _("✅ Confirm") == "✅ Xác nhận"


@pytest.mark.parametrize("lang", ["vi", "en"])
def test_catalogue_has_a_header_and_no_printf_flags(lang: str) -> None:
    """scripts/i18n.py keeps the header; no message is taken for a %-format ("110% of")."""
    path = ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as fh:
        catalog = read_po(fh)
    assert catalog.locale is not None and str(catalog.locale) == lang
    assert catalog.charset.lower() == "utf-8" and not catalog.fuzzy
    flagged = [m.id for m in catalog if m.id and "python-format" in m.flags]
    assert flagged == []


@pytest.mark.skipif(shutil.which("msgfmt") is None, reason="GNU gettext is not installed")
@pytest.mark.parametrize("lang", ["vi", "en"])
def test_msgfmt_checks_pass(lang: str) -> None:
    """`msgfmt -c`: a valid header, and every format string consistent with its msgid."""
    path = ROOT / "locales" / lang / "LC_MESSAGES" / "messages.po"
    done = subprocess.run(
        ["msgfmt", "-c", "-o", os.devnull, str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
