"""Watching runs: snapshots read from the database and their terminal rendering."""
