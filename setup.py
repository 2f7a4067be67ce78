"""Build hook: the gettext catalogues compiled into the wheel.

The ``.mo`` files are not committed (they are built from the ``.po`` files, which several
people edit); without them an installed bot would have to compile its catalogues at every
start. Everything else about the package is in pyproject.toml.
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildWithCatalogues(build_py):
    """build_py, then ``locales/<lang>/LC_MESSAGES/messages.mo`` written from each ``.po``."""

    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in sorted((ROOT / "locales").glob("*/LC_MESSAGES/messages.po")):
            target = Path(self.build_lib) / po.relative_to(ROOT).with_suffix(".mo")
            target.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as fh:
                catalog = read_po(fh, locale=po.parent.parent.name)
            # As scripts/i18n.py --compile does (not `pybabel compile`: see there why).
            with target.open("wb") as fh:
                write_mo(fh, catalog, use_fuzzy=True)


setup(cmdclass={"build_py": BuildWithCatalogues})
