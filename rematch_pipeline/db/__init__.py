"""Database access: tables, migrations and the engine."""
