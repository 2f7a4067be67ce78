"""Persistence: SQLAlchemy models, repositories, migrations, import and export.

Nothing here imports ``bot`` or ``handlers``.
"""
