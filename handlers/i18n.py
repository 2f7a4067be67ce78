"""gettext for the conversation, the aiogram/Babel way.

``_("...")`` translates into the locale of the person being answered, which the engine sets
per update in a context variable (so concurrent updates never see each other's locale).
``__("...")`` is the lazy form for texts defined at import time. Catalogues live in
``locales/<lang>/LC_MESSAGES/messages.po``; ``pybabel compile`` makes the ``.mo`` files, and
when one is missing or older than its ``.po`` (a fresh checkout) it is compiled in memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

log = logging.getLogger(__name__)

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"
DEFAULT_LOCALE = "vi"
SUPPORTED = ("vi", "en")

_current: ContextVar[str] = ContextVar("thidua_locale", default=DEFAULT_LOCALE)


@cache
def translations(locale: str) -> NullTranslations:
    directory = LOCALES_DIR / locale / "LC_MESSAGES"
    po, mo = directory / f"{DOMAIN}.po", directory / f"{DOMAIN}.mo"
    if mo.exists() and (not po.exists() or mo.stat().st_mtime >= po.stat().st_mtime):
        with mo.open("rb") as fh:
            return Translations(fh, domain=DOMAIN)
    if po.exists():
        log.info("compiling %s in memory (run `pybabel compile -d locales`)", po)
        import io

        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        buf = io.BytesIO()
        write_mo(buf, catalog)
        buf.seek(0)
        return Translations(buf, domain=DOMAIN)
    return NullTranslations()


def normalise_locale(locale: str | None) -> str:
    if not locale:
        return DEFAULT_LOCALE
    short = locale.replace("-", "_").split("_")[0].lower()
    return short if short in SUPPORTED else DEFAULT_LOCALE


def current_locale() -> str:
    return _current.get()


@contextlib.contextmanager
def use_locale(locale: str | None) -> Iterator[str]:
    token = _current.set(normalise_locale(locale))
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    return translations(_current.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(_current.get()).ungettext(singular, plural, n)


def lazy_gettext(message: str) -> LazyProxy:
    return LazyProxy(gettext, message, enable_cache=False)


_ = gettext
__ = lazy_gettext
