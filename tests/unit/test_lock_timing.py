"""A supervisor cut off from the database must stop acting before the server frees its
run's lock for a standby: the lock watchdog's worst case against the embedded server's
settings for noticing a vanished client."""

from __future__ import annotations

from golem_tasks.db.embedded import DEFAULT_SETTINGS
from golem_tasks.supervisor.runlock import PING_TIMEOUT_S
from golem_tasks.supervisor.supervisor import LOCK_PING_S

#: Slack for a loaded machine: the watchdog's own sleep and the cancellation of duties.
MARGIN_S = 2.0


def server_frees_after() -> float:
    """The soonest the server drops a client that vanished: unanswered keepalive probes on
    an idle connection, or its own data unacknowledged for ``tcp_user_timeout``."""
    idle = float(DEFAULT_SETTINGS["tcp_keepalives_idle"])
    interval = float(DEFAULT_SETTINGS["tcp_keepalives_interval"])
    count = int(DEFAULT_SETTINGS["tcp_keepalives_count"])
    user_timeout = float(DEFAULT_SETTINGS["tcp_user_timeout"]) / 1000
    return min(idle + count * interval, user_timeout)


def test_a_cut_off_supervisor_stops_before_its_lock_is_freed() -> None:
    stops_within = LOCK_PING_S + PING_TIMEOUT_S
    assert stops_within + MARGIN_S <= server_frees_after()
