"""Activities: real processes, the exe-unit state machine, transfers, SSE, state, usage."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from aiohttp import web

from tests.devnet.flows import ACTIVITY, DEPLOY_START, activity, agreement, run, run_script


@pytest.fixture
async def ready(api) -> str:
    """A deployed and started activity on a healthy provider."""
    agreement_id, _, _ = await agreement(api)
    activity_id = await activity(api, agreement_id)
    results = await run_script(api, activity_id, DEPLOY_START)
    assert [r["result"] for r in results] == ["Ok", "Ok"]
    return activity_id


async def test_run_executes_for_real(api, ready) -> None:
    results = await run_script(
        api,
        ready,
        [
            run("echo out; echo err >&2; pwd; echo $HOME"),
            {"run": {"entry_point": "/bin/echo", "args": ["no", "capture"]}},
            run("exit 3"),
            run("echo never"),
        ],
    )
    assert len(results) == 3  # the batch stops at the failing command
    first, second, third = results
    lines = first["stdout"].splitlines()
    assert lines[0] == "out" and first["stderr"] == "err\n"
    assert lines[1].endswith(f"/{ready}/golem/work") and lines[2] == lines[1]
    assert first["result"] == "Ok" and not first["isBatchFinished"]
    assert "stdout" not in second  # no capture requested: output discarded
    assert third["result"] == "Error" and third["isBatchFinished"]
    assert third["message"] == "ExeScript command exited with code 3"


async def test_golem_paths_map_into_the_activity(api, ready) -> None:
    results = await run_script(
        api,
        ready,
        [
            run("echo data > /golem/output/result.txt"),
            run("cat /golem/output/result.txt; ls /golem"),
        ],
    )
    assert results[1]["stdout"].split() == ["data", "input", "output", "resources", "work"]


async def test_commands_out_of_order_fail_like_an_exe_unit(api) -> None:
    agreement_id, _, _ = await agreement(api)
    activity_id = await activity(api, agreement_id)
    results = await run_script(api, activity_id, [run("echo early")])
    assert results[0]["result"] == "Error"
    assert results[0]["message"] == "Activity is initialized - deploy() command is expected now"
    results = await run_script(api, activity_id, [{"deploy": {}}, run("echo early")])
    assert results[1]["message"] == "Activity is deployed - start() command is expected now"
    results = await run_script(api, activity_id, [{"start": {}}, {"start": {}}])
    assert results[1]["message"] == "Cannot send command after a successful start()"
    results = await run_script(api, activity_id, [run("echo late")])
    assert results[0]["stdout"] == "late\n"


async def test_terminate_command_resets_to_initialized(api, ready) -> None:
    results = await run_script(api, ready, [{"terminate": {}}, run("true")])
    assert results[0]["result"] == "Ok"
    assert results[1]["message"].startswith("Activity is initialized")


async def test_busy_exe_unit_refuses_overlapping_commands(api, ready) -> None:
    slow = await api.ok(
        "POST",
        f"{ACTIVITY}/activity/{ready}/exec",
        json_body={"text": json.dumps([run("sleep 0.5")])},
    )
    await asyncio.sleep(0.1)
    results = await run_script(api, ready, [run("true")])
    assert results[0]["message"].startswith("Busy")
    done = await api.ok("GET", f"{ACTIVITY}/activity/{ready}/exec/{slow}", params={"timeout": 5})
    assert done[0]["result"] == "Ok"


async def test_transfer_between_files_container_and_http(api, ready, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("payload\n")
    stored: dict[str, bytes] = {}

    async def put(request: web.Request) -> web.Response:
        stored[request.path] = await request.read()
        return web.Response(status=201)

    async def get(request: web.Request) -> web.Response:
        return web.Response(body=b"from http\n")

    app = web.Application()
    app.add_routes([web.put("/up/{name}", put), web.get("/down", get)])
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        results = await run_script(
            api,
            ready,
            [
                {"transfer": {"from": f"file://{source}", "to": "container:/golem/input/in.txt"}},
                {
                    "transfer": {
                        "from": f"http://127.0.0.1:{port}/down",
                        "to": "container:/golem/input/h.txt",
                    }
                },
                run("cat /golem/input/in.txt /golem/input/h.txt > /golem/output/out.txt"),
                {
                    "transfer": {
                        "from": "container:/golem/output/out.txt",
                        "to": f"file://{tmp_path}/out.txt",
                    }
                },
                {
                    "transfer": {
                        "from": "container:/golem/output/out.txt",
                        "to": f"http://127.0.0.1:{port}/up/o",
                    }
                },
            ],
        )
    finally:
        await runner.cleanup()
    assert [r["result"] for r in results] == ["Ok"] * 5, results
    assert (tmp_path / "out.txt").read_text() == "payload\nfrom http\n"
    assert stored["/up/o"] == b"payload\nfrom http\n"
    bad = await run_script(
        api, ready, [{"transfer": {"from": "ftp://x/y", "to": "container:/golem/input/z"}}]
    )
    assert bad[0]["result"] == "Error" and "unsupported transfer protocol" in bad[0]["message"]
    # A gftp URL of a real node (node id, no port) cannot be served by the devnet.
    real = await run_script(
        api, ready, [{"transfer": {"from": "gftp://0xabc/y", "to": "container:/golem/input/z"}}]
    )
    assert real[0]["result"] == "Error" and "names no devnet gftp server" in real[0]["message"]
    escape = await run_script(
        api, ready, [{"transfer": {"from": f"file://{source}", "to": "container:/../../x"}}]
    )
    assert escape[0]["result"] == "Error"


async def test_symbolic_links_do_not_lead_out_of_the_container(api, ready, tmp_path: Path) -> None:
    """A command can make links to anywhere; transfers through them stay inside."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("host file\n")
    await run_script(
        api,
        ready,
        [
            run(f"ln -s {outside} /golem/output/out"),
            run(f"ln -s {outside}/secret.txt /golem/output/secret.txt"),
            run(f"ln -s {outside}/new.txt /golem/output/new.txt"),
            run("mkdir -p /golem/output/d && echo inside > /golem/output/d/own.txt"),
            run("ln -s d /golem/output/alias && mkfifo /golem/output/pipe"),
        ],
    )
    copy = tmp_path / "copy.txt"
    for source in (
        "container:/golem/output/out/secret.txt",  # a linked directory on the way
        "container:/golem/output/secret.txt",  # the file itself a link
    ):
        results = await run_script(
            api, ready, [{"transfer": {"from": source, "to": f"file://{copy}"}}]
        )
        assert results[0]["result"] == "Error", source
        assert "outside the container" in results[0]["message"], results
        assert not copy.exists()
    for destination in (
        "container:/golem/output/out/written.txt",
        "container:/golem/output/out/sub/written.txt",
        "container:/golem/output/new.txt",  # a dangling link as the file
    ):
        results = await run_script(
            api,
            ready,
            [{"transfer": {"from": "container:/golem/output/d/own.txt", "to": destination}}],
        )
        assert results[0]["result"] == "Error", destination
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    # A fifo is not read (it would block), and a link that stays inside works.
    results = await run_script(
        api,
        ready,
        [{"transfer": {"from": "container:/golem/output/pipe", "to": f"file://{copy}"}}],
    )
    assert results[0]["result"] == "Error" and "not a regular file" in results[0]["message"]
    results = await run_script(
        api,
        ready,
        [
            {"transfer": {"from": "container:/golem/output/alias/own.txt", "to": f"file://{copy}"}},
            {"transfer": {"from": f"file://{copy}", "to": "container:/golem/output/alias/b.txt"}},
            run("cat /golem/output/d/b.txt"),
        ],
    )
    assert [r["result"] for r in results] == ["Ok"] * 3, results
    assert results[-1]["stdout"] == "inside\n"


async def test_results_wait_five_seconds_by_default(api, ready) -> None:
    """Without ``timeout`` a results poll waits the contract's 5 s for the batch."""
    batch = await api.ok(
        "POST",
        f"{ACTIVITY}/activity/{ready}/exec",
        json_body={"text": json.dumps([run("sleep 0.3; echo slow")])},
    )
    results = await api.ok("GET", f"{ACTIVITY}/activity/{ready}/exec/{batch}")
    assert results and results[-1]["isBatchFinished"] and results[-1]["stdout"] == "slow\n"


async def test_results_wait_for_a_command_index(api, ready) -> None:
    batch = await api.ok(
        "POST",
        f"{ACTIVITY}/activity/{ready}/exec",
        json_body={"text": json.dumps([run("echo a"), run("sleep 0.3; echo b")])},
    )
    path = f"{ACTIVITY}/activity/{ready}/exec/{batch}"
    first = await api.ok("GET", path, params={"commandIndex": 0, "timeout": 5})
    assert [r["index"] for r in first] == [0] and first[0]["isBatchFinished"]
    # Not done in time: yagna would answer 408, which the contract lacks; results so far.
    partial = await api.ok("GET", path, params={"commandIndex": 1, "timeout": 0.05})
    assert [r["index"] for r in partial] == [0]
    everything = await api.ok("GET", path, params={"timeout": 5})
    assert [r["stdout"] for r in everything] == ["a\n", "b\n"]


async def test_results_as_server_sent_events(api, ready) -> None:
    batch = await api.ok(
        "POST",
        f"{ACTIVITY}/activity/{ready}/exec",
        json_body={"text": json.dumps([run("echo one; sleep 0.1; echo two"), run("exit 1")])},
    )
    url = f"{api.base}{ACTIVITY}/activity/{ready}/exec/{batch}"
    headers = {**api.headers, "Accept": "text/event-stream"}
    async with api.session.get(url, headers=headers) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        text = (await response.read()).decode()
    frames = [f for f in text.split("\n\n") if f.strip()]
    events = []
    for frame in frames:
        lines = dict(line.split(": ", 1) for line in frame.splitlines())
        assert lines["event"] == "runtime"
        events.append(json.loads(lines["data"]))
    kinds = [next(iter(e["kind"])) for e in events]
    assert kinds[0] == "started" and kinds[-1] == "finished"
    assert "".join(e["kind"]["stdout"] for e in events if "stdout" in e["kind"]) == "one\ntwo\n"
    finished = [e for e in events if "finished" in e["kind"]]
    assert [f["kind"]["finished"]["return_code"] for f in finished] == [0, 1]
    assert [f["kind"]["finished"]["message"] for f in finished] == [
        None,  # yagna sends null for a command that succeeded
        "ExeScript command exited with code 1",
    ]
    assert all(e["batchId"] == batch and "timestamp" in e for e in events)


async def test_state_usage_agreement_and_destroy(api, ready) -> None:
    base = f"{ACTIVITY}/activity/{ready}"
    assert (await api.ok("GET", base + "/state"))["state"] == ["Ready", None]
    await run_script(api, ready, [run("i=0; while [ $i -lt 30000 ]; do i=$((i+1)); done")])
    usage = await api.ok("GET", base + "/usage")
    cpu, duration = usage["currentUsage"]
    assert cpu > 0 and duration >= cpu * 0.5 and isinstance(usage["timestamp"], int)
    agreement_id = await api.ok("GET", base + "/agreement")
    assert ready in await api.ok(
        "GET", f"{ACTIVITY}/activity", params={"agreementId": agreement_id}
    )

    assert (await api.call("DELETE", base))[0] == 200
    assert (await api.call("DELETE", base))[0] == 200  # idempotent, as yagna
    state = await api.ok("GET", base + "/state")
    assert state["state"][0] == "Terminated"
    assert (await api.ok("GET", base + "/usage"))["currentUsage"][0] == cpu
    status, body = await api.call("POST", base + "/exec", json_body={"text": "[]"})
    assert status == 500 and "endpoint address not found" in body["message"]
    assert (await api.call("DELETE", f"{ACTIVITY}/activity/unknown"))[0] == 500  # as yagna


async def test_create_activity_needs_an_approved_agreement(api) -> None:
    agreement_id, _, _ = await agreement(api, "silent", approve=False)
    status, body = await api.call("POST", f"{ACTIVITY}/activity", json_body=agreement_id)
    assert status == 400 and "is not Approved" in body["message"]
    assert (await api.call("POST", f"{ACTIVITY}/activity", json_body="nope"))[0] == 404
    ok_id, _, _ = await agreement(api)
    created = await api.ok("POST", f"{ACTIVITY}/activity", json_body={"agreementId": ok_id})
    assert set(created) == {"activityId"}


async def test_malformed_scripts_are_bad_requests(api, ready) -> None:
    path = f"{ACTIVITY}/activity/{ready}/exec"
    for text in ("not json", "{}", '[{"fly": {}}]', '[{"run": {"args": []}}]', '[{"deploy":1}]'):
        status, body = await api.call("POST", path, json_body={"text": text})
        assert status == 400 and body["message"], text
    assert (await api.call("POST", path, json_body={"txt": "[]"}))[0] == 400
    assert (await api.call("GET", f"{ACTIVITY}/activity/{ready}/exec/nope"))[0] == 404
