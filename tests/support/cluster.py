"""A run spread over hosts: host A serves the embedded PostgreSQL (``db start --listen``)
and the devnet on its LAN address; other hosts reach both over the LAN only."""

from __future__ import annotations

import contextlib
import secrets
import shlex
import shutil
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.helpers import cli_env
from tests.integration.pipeline_support import rows, value
from tests.support.audit import DECIDED
from tests.support.netns import Host, HostProcess, Lan, network_facts

DEVNET_PORT = 7465


def exports(text: str) -> dict[str, str]:
    """``export NAME=VALUE`` lines of a command's output."""
    found = {}
    for line in text.splitlines():
        if line.startswith("export "):
            name, _, raw = line.removeprefix("export ").partition("=")
            found[name] = shlex.split(raw)[0] if raw else ""
    return found


async def start_devnet(
    host: Host,
    bind: str,
    *,
    providers: int,
    seed: int,
    log: str = "devnet.log",
    time_scale: float = 1.0,
) -> tuple[HostProcess, dict[str, str]]:
    """A devnet in ``host`` bound on ``bind``; the environment its clients need."""
    key = secrets.token_hex(16)
    proc = await host.start(
        "devnet",
        "--host",
        bind,
        "--port",
        str(DEVNET_PORT),
        "--providers",
        str(providers),
        "--seed",
        str(seed),
        "--time-scale",
        str(time_scale),
        env=cli_env(GOLEM_TASKS_DEVNET_APPKEY=key),
        log=log,
    )
    await proc.wait_for_line("(Ctrl+C to stop)", 60)
    return proc, exports(proc.output(10_000))


@dataclass
class Cluster:
    lan: Lan
    a: Host
    #: Over the LAN, with the password: what every host but A is given.
    remote_dsn: str
    #: A's unix socket: how the test itself reads the database.
    local_dsn: str
    #: The environment of every golem-tasks process on the LAN (yagna = A's devnet).
    env: dict[str, str]

    def host_env(self, **extra: str) -> dict[str, str]:
        return {**self.env, **extra}

    async def by_host(self, sql: str, run_id: str) -> dict[str, int]:
        """Rows of ``sql`` (selecting ``worker``) per host name."""
        counts: dict[str, int] = {}
        for row in await rows(self.local_dsn, sql, run_id):
            host = str(row["worker"]).split(":", 1)[0]
            counts[host] = counts.get(host, 0) + 1
        return counts

    async def audit(self, run_id: str) -> LanAudit:
        """The audit of ``tests.support.audit`` over the LAN, through the devnet's REST API
        (the devnet lives in host A's process, so its memory cannot be read): every debit
        note and invoice of the run decided on the devnet, none still RECEIVED, each in the
        ledger as on the devnet; the ledger's accepted spend equal to what the devnet's
        account accepted; no agreement left alive. The cluster's devnet serves this run
        only. AssertionError says what does not hold."""
        ledger = await rows(
            self.local_dsn,
            "SELECT 'note' AS kind, id, status, increment FROM tasks.debit_note "
            "WHERE run_id = %s UNION ALL "
            "SELECT 'invoice', id, status, increment FROM tasks.invoice WHERE run_id = %s",
            run_id,
            run_id,
        )
        agreements = {
            row["id"]
            for row in await rows(
                self.local_dsn, "SELECT id FROM tasks.agreement WHERE run_id = %s", run_id
            )
        }
        facts = network_facts(self.a, self.env["YAGNA_API_URL"], self.env["YAGNA_APPKEY"])
        stored = {row["id"]: row["status"] for row in ledger}
        problems = []
        mine = [doc for doc in facts["documents"] if doc["agreementId"] in agreements]
        if not any(doc["kind"] == "invoices" for doc in mine):
            problems.append(f"no invoice of {run_id} on the devnet")
        for doc in mine:
            if doc["status"] == "RECEIVED":
                problems.append(f"{doc['kind']}/{doc['id']} left undecided on the devnet")
            elif DECIDED.get(doc["status"]) != stored.get(doc["id"]):
                problems.append(
                    f"{doc['kind']}/{doc['id']} is {doc['status']} on the devnet, "
                    f"{stored.get(doc['id'])} in the ledger"
                )
        undecided = [row["id"] for row in ledger if row["status"] not in ("accepted", "rejected")]
        if undecided:
            problems.append(f"documents without a final decision in the ledger: {undecided}")
        accepted = sum(
            (Decimal(row["increment"]) for row in ledger if row["status"] == "accepted"),
            Decimal(0),
        )
        network_spent = Decimal(facts["accepted"])
        if accepted != network_spent:
            problems.append(f"ledger accepted {accepted} but the network spent {network_spent}")
        alive = sorted(set(facts["live_agreements"]) & agreements)
        if alive:
            problems.append(f"agreements still alive on the devnet: {alive}")
        assert not problems, f"audit of run {run_id} failed:\n  " + "\n  ".join(problems)
        return LanAudit(
            accepted=accepted,
            network_spent=network_spent,
            debit_notes=sum(row["kind"] == "note" for row in ledger),
            invoices=sum(row["kind"] == "invoice" for row in ledger),
            rejected=sum(row["status"] == "rejected" for row in ledger),
        )


@dataclass(frozen=True)
class LanAudit:
    accepted: Decimal
    network_spent: Decimal
    debit_notes: int
    invoices: int
    rejected: int

    def line(self) -> str:
        return (
            f"accepted {self.accepted} = network spent {self.network_spent}; "
            f"{self.debit_notes} debit notes, {self.invoices} invoices, {self.rejected} rejected"
        )


@contextlib.asynccontextmanager
async def cluster(
    workdir: Path, names: list[str], *, providers: int, seed: int, time_scale: float = 1.0
) -> AsyncIterator[Cluster]:
    """LAN hosts ``A`` + ``names``; A serves PostgreSQL (schema installed) and the devnet
    (its simulated time ``time_scale`` times as fast: debit notes come sooner).

    The hosts' homes live in a folder of their own rather than under pytest's ``tmp_path``
    (``workdir`` is unused): pytest prunes old base folders of every session of this user,
    and on a shared machine another session's start removed a running test's database.
    It is removed when the test passes and kept (its path in the failure) when it fails.
    """
    del workdir
    home = Path(tempfile.mkdtemp(prefix="gt-lan-"))
    passed = False
    with Lan(home) as lan:
        a = lan.add("A")
        for name in names:
            lan.add(name)
        base = cli_env()
        try:
            started = a.run("db", "start", "--listen", f"{a.address}:5432", env=base)
            remote = exports(started)["GOLEM_TASKS_DSN"]
            status = a.run("db", "status", env=base)
            local = status.split("DSN: ", 1)[1].splitlines()[0].strip()
            _devnet, yagna = await start_devnet(
                a, a.address, providers=providers, seed=seed, time_scale=time_scale
            )
            env = cli_env(**yagna, GOLEM_TASKS_DSN=remote)
            a.run("install", env=env)
            try:
                yield Cluster(lan, a, remote, local, env)
            except BaseException:
                print(f"hosts' homes and logs kept in {home}", file=sys.stderr)
                raise
            else:
                passed = True
        finally:
            for host in lan.hosts.values():
                for proc in host.procs:
                    await proc.stop(timeout=20)
            with contextlib.suppress(Exception):
                a.run("db", "stop", env=base)
    if passed:
        shutil.rmtree(home, ignore_errors=True)


async def assert_done_once(dsn: str, run_id: str, tasks: int) -> None:
    """Every task done with its own result, once; the run finished and closed."""
    done = await rows(
        dsn,
        "SELECT key, status, result FROM tasks.task WHERE run_id = %s ORDER BY position",
        run_id,
    )
    assert [(t["key"], t["status"], t["result"]) for t in done] == [
        (str(n), "done", n * 7) for n in range(tasks)
    ]
    assert await value(dsn, "SELECT status FROM tasks.run WHERE id = %s", run_id) == "finished"
    live = await value(
        dsn,
        "SELECT count(*) FROM tasks.agreement WHERE run_id = %s "
        "AND status IN ('pending', 'approved')",
        run_id,
    )
    assert live == 0


async def spent(dsn: str, run_id: str) -> Any:
    """What the run accepted (debit note increments and invoice remainders)."""
    return await value(
        dsn,
        "SELECT coalesce((SELECT sum(increment) FROM tasks.debit_note WHERE run_id = %s "
        "AND status = 'accepted'), 0) + coalesce((SELECT sum(increment) FROM tasks.invoice "
        "WHERE run_id = %s AND status = 'accepted'), 0) AS spent",
        run_id,
        run_id,
    )
