"""The audit that ends every end-to-end and chaos test: a run's books checked against the
network itself.

The ledger's accepted spend must equal what the devnet's allocations say was spent (to the
last wei, as Decimal), no debit note or invoice may be left undecided (on the devnet: none
still RECEIVED; in our tables: each one decided, and decided as the devnet says), nothing
may be left alive on the devnet, no task may be done twice, and the views' tallies must
equal a direct count of the rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import aiohttp
import psycopg
from psycopg.rows import dict_row

from golem_tasks.devnet import Devnet
from tests.support.tallies import tally_mismatches

PAYMENT = "/payment-api/v1"
#: How the devnet's status of a document maps to our stored decision.
DECIDED = {"ACCEPTED": "accepted", "SETTLED": "accepted", "REJECTED": "rejected"}


@dataclass(frozen=True)
class AuditFigures:
    """What a run did and what it cost, for test output and closing notes."""

    tasks: int
    done: int
    failed: int
    unfinished: int  # stored tasks neither done nor failed at the end (none lost when 0)
    duplicated: int  # task keys done more than once
    accepted: Decimal  # the ledger's accepted spend
    network_spent: Decimal  # the devnet allocations' spentAmount, summed
    budget: Decimal  # per hour
    debit_notes: int
    invoices: int
    rejected: int

    def line(self) -> str:
        return (
            f"{self.tasks} tasks, {self.done} done, {self.failed} failed, "
            f"{self.unfinished} unfinished, {self.duplicated} duplicated; "
            f"accepted {self.accepted} vs budget {self.budget}/h "
            f"vs network spent {self.network_spent}; {self.debit_notes} debit notes, "
            f"{self.invoices} invoices, {self.rejected} rejected"
        )


async def _rows(dsn: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    async with await psycopg.AsyncConnection.connect(dsn, row_factory=dict_row) as conn:
        cur = await conn.execute(sql, params)  # test-only inline SQL
        return await cur.fetchall()


async def devnet_documents(net: Devnet) -> list[dict[str, Any]]:
    """Every debit note and invoice the devnet still holds, through its REST API."""
    headers = {"Authorization": f"Bearer {net.app_key}"}
    found: list[dict[str, Any]] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for kind, id_field in (("debitNotes", "debitNoteId"), ("invoices", "invoiceId")):
            after = "2000-01-01T00:00:00Z"
            while True:
                params = {"afterTimestamp": after, "maxItems": "100"}
                url = f"{net.api_url}{PAYMENT}/{kind}"
                async with session.get(url, params=params) as response:
                    assert response.status == 200, await response.text()
                    page = await response.json()
                found += [{**doc, "kind": kind, "id": doc[id_field]} for doc in page]
                if len(page) < 100:
                    break
                after = max(doc["timestamp"] for doc in page)
    return found


async def network_facts(api_url: str, app_key: str) -> dict[str, Any]:
    """The REST half of the audit, for a devnet in another process (another host): its
    documents, what its account accepted in all (as ``yagna payment status`` says), and
    its agreements still alive."""
    net = SimpleNamespace(api_url=api_url, app_key=app_key)
    headers = {"Authorization": f"Bearer {app_key}"}
    live: list[str] = []
    async with aiohttp.ClientSession(headers=headers) as session:
        async with session.get(f"{api_url}/devnet-api/v1/payments/status") as response:
            assert response.status == 200, await response.text()
            accepted = (await response.json())["outgoing"]["accepted"]["totalAmount"]
        for state in ("Proposal", "Pending", "Approved"):
            url = f"{api_url}/market-api/v1/agreements"
            async with session.get(url, params={"state": state}) as response:
                assert response.status == 200, await response.text()
                live += [entry["id"] for entry in await response.json()]
    return {
        "documents": await devnet_documents(net),  # type: ignore[arg-type]
        "accepted": accepted,
        "live_agreements": live,
    }


async def audit_run(net: Devnet, dsn: str, run_id: str) -> AuditFigures:
    """Check a finished run against the devnet; AssertionError says what does not hold."""
    problems: list[str] = []
    network = net.network
    assert network is not None, "the devnet is not running"

    # Money: the ledger equals the network's spent amount, to the last digit.
    ledger = await _rows(
        dsn,
        "SELECT 'note' AS kind, id, agreement_id, status, increment FROM tasks.debit_note "
        "WHERE run_id = %s UNION ALL "
        "SELECT 'invoice', id, agreement_id, status, increment FROM tasks.invoice "
        "WHERE run_id = %s",
        run_id,
        run_id,
    )
    accepted = sum(
        (Decimal(r["increment"]) for r in ledger if r["status"] == "accepted"), Decimal(0)
    )
    ours = {
        r["id"]
        for r in await _rows(dsn, "SELECT id FROM tasks.allocation WHERE run_id = %s", run_id)
    }
    held = network.payments.allocations
    missing = ours - held.keys()
    if missing:
        problems.append(f"allocations the devnet no longer knows (cannot audit): {sorted(missing)}")
    spent = sum((held[a].spent for a in ours & held.keys()), Decimal(0))
    foreign = {a.id: a.spent for a in held.values() if a.id not in ours and a.spent}
    if foreign:
        problems.append(f"money spent from allocations that are not the run's: {foreign}")
    if accepted != spent:
        problems.append(f"ledger accepted {accepted} but the network spent {spent}")

    # Documents: every one decided, on both sides, the same way.
    agreements = {
        r["id"]
        for r in await _rows(dsn, "SELECT id FROM tasks.agreement WHERE run_id = %s", run_id)
    }
    stored = {r["id"]: r for r in ledger}
    documents = [d for d in await devnet_documents(net) if d["agreementId"] in agreements]
    for doc in documents:
        row = stored.get(doc["id"])
        unrejectable = doc["kind"] == "debitNotes" and not network.debit_note_rejection
        if doc["status"] == "RECEIVED" and unrejectable and row and row["status"] == "rejected":
            continue  # a daemon without debit-note rejection (yagna 0.17.6) keeps it RECEIVED
        if doc["status"] == "RECEIVED":
            problems.append(f"{doc['kind']}/{doc['id']} left undecided on the devnet")
        elif row is None:
            problems.append(f"{doc['kind']}/{doc['id']} is {doc['status']} but not in the ledger")
        elif DECIDED.get(doc["status"]) != row["status"]:
            problems.append(
                f"{doc['kind']}/{doc['id']} is {doc['status']} on the devnet, "
                f"{row['status']} in the ledger"
            )
    undecided = [r["id"] for r in ledger if r["status"] not in ("accepted", "rejected")]
    if undecided:
        problems.append(f"documents without a final decision in the ledger: {undecided}")

    # Nothing left alive on the network.
    alive = [
        a.id
        for a in network.market.agreements.values()
        if a.state in ("Proposal", "Pending", "Approved")
    ]
    if alive:
        problems.append(f"agreements still alive on the devnet: {alive}")
    running = [a.id for a in network.exeunits.activities.values() if a.alive]
    if running:
        problems.append(f"activities still alive on the devnet: {running}")

    # Tasks: each key done at most once.
    tasks = await _rows(dsn, "SELECT key, status, result FROM tasks.task WHERE run_id = %s", run_id)
    done_keys = [t["key"] for t in tasks if t["status"] == "done"]
    duplicated = len(done_keys) - len(set(done_keys))
    if duplicated:
        problems.append(f"{duplicated} task keys done more than once")
    # The views' tallies: equal to a direct count of the rows.
    problems += await tally_mismatches(dsn, run_id)
    run = (await _rows(dsn, "SELECT budget_per_hour FROM tasks.run WHERE id = %s", run_id))[0]
    figures = AuditFigures(
        tasks=len(tasks),
        done=len(done_keys),
        failed=sum(t["status"] == "failed" for t in tasks),
        unfinished=sum(t["status"] not in ("done", "failed") for t in tasks),
        duplicated=duplicated,
        accepted=accepted,
        network_spent=spent,
        budget=Decimal(run["budget_per_hour"]),
        debit_notes=sum(r["kind"] == "note" for r in ledger),
        invoices=sum(r["kind"] == "invoice" for r in ledger),
        rejected=sum(r["status"] == "rejected" for r in ledger),
    )
    assert not problems, f"audit of run {run_id} failed:\n  " + "\n  ".join(problems)
    return figures
