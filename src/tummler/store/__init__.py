"""Persistence: SQLAlchemy models, engines, migrations and bulk loads."""
