"""gettext for the conversation, the aiogram/Babel way.

``_("...")`` translates into the locale of the person being answered, which the engine sets
per update in a context variable (so concurrent updates never see each other's locale).
``__("...")`` is the lazy form for texts defined at import time. Catalogues live in the
``locales`` package (``locales/<lang>/LC_MESSAGES/messages.po``), found with
``importlib.resources`` so that an installed wheel speaks Vietnamese from any folder. The
build and ``make`` compile the ``.mo`` files; when one is missing or older than its ``.po``
(a fresh checkout) it is compiled in memory.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import LazyProxy, NullTranslations, Translations

log = logging.getLogger(__name__)

LOCALES_PACKAGE = "locales"
DOMAIN = "messages"
DEFAULT_LOCALE = "vi"
SUPPORTED = ("vi", "en")

_current: ContextVar[str] = ContextVar("thidua_locale", default=DEFAULT_LOCALE)


def _catalogue_dir(locale: str) -> Traversable:
    return files(LOCALES_PACKAGE) / locale / "LC_MESSAGES"


def _is_current(mo: Traversable, po: Traversable) -> bool:
    """The compiled catalogue is there and not older than its source (in a checkout)."""
    if not mo.is_file():
        return False
    if isinstance(mo, Path) and isinstance(po, Path) and po.is_file():
        return mo.stat().st_mtime >= po.stat().st_mtime
    return True


@cache
def translations(locale: str) -> NullTranslations:
    directory = _catalogue_dir(locale)
    po, mo = directory / f"{DOMAIN}.po", directory / f"{DOMAIN}.mo"
    if _is_current(mo, po):
        with mo.open("rb") as fh:
            return Translations(fh, domain=DOMAIN)
    if po.is_file():
        log.info("compiling %s in memory (run `make catalogues`)", po)
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
