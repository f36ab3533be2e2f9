"""The database layer: connections, named SQL queries and schema migrations."""
