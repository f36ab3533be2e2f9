"""One home for persistence: every read and write of a run's tables, as typed functions.

Each takes a connection first (the caller owns connections and transactions) and returns
records or plain values. Only this package and ``golem_tasks.db`` name SQL queries (the
monitor's read-only views aside).
"""
