"""The gettext catalogues, shipped inside the package (``locales/<lang>/LC_MESSAGES``).

A package so that an installed wheel carries them: ``handlers.i18n`` finds them with
``importlib.resources`` wherever the bot runs from. The build compiles the ``.mo`` files
(setup.py); a checkout without them still works, the ``.po`` being compiled in memory.
"""
