"""golem-tasks: run large batches of tasks on the Golem Network, with every fact of a run
kept in PostgreSQL."""

__version__ = "0.1.0"
