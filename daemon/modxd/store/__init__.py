"""SQLite state through aiosqlite: schema, migrations and one repository per table group."""
