"""Activity API routes (``/activity-api/v1``), requestor side, including the SSE stream."""

from __future__ import annotations

import json
import time

from aiohttp import web

from golem_tasks.devnet.activity import Activity
from golem_tasks.devnet.errors import BadRequest
from golem_tasks.devnet.rest import (
    body_error,
    body_json,
    body_object,
    network,
    query_error,
    query_int,
    query_timeout,
    respond,
)

PREFIX = "/activity-api/v1"


async def create_activity(request: web.Request) -> web.Response:
    net = network(request)
    query_timeout(request)  # validated; creation does not wait
    data = await body_json(request)
    if isinstance(data, str):
        agreement_id, as_object = data, False
    elif isinstance(data, dict) and isinstance(data.get("agreementId"), str):
        agreement_id, as_object = data["agreementId"], True
    else:
        raise body_error(
            request, 'Json deserialize error: expected an agreement id or {"agreementId": ...}'
        )
    agreement = net.market.agreement(agreement_id)
    await net.gate(agreement.provider, "create_activity")
    activity = net.create_activity(agreement_id)
    if as_object:
        return respond({"activityId": activity.id}, status=201)
    return respond(activity.id, status=201)


async def list_activities(request: web.Request) -> web.Response:
    agreement_id = request.query.get("agreementId")
    if not agreement_id:
        raise query_error("missing field `agreementId`")
    net = network(request)
    net.market.agreement(agreement_id)
    return respond(
        [a.id for a in net.exeunits.activities.values() if a.agreement_id == agreement_id]
    )


async def exec_script(request: web.Request) -> web.Response:
    net = network(request)
    activity = net.exeunits.get(request.match_info["activity_id"])
    data = await body_object(request)
    if "text" not in data:
        raise BadRequest("Json deserialize error: missing field `text`")
    await net.gate(activity.provider, "exec")
    net.exeunits.live(activity.id)
    batch_id = net.exeunits.exec(activity, data["text"])
    return respond(batch_id)


async def batch_results(request: web.Request) -> web.StreamResponse:
    net = network(request)
    activity = net.exeunits.get(request.match_info["activity_id"])
    batch_id = request.match_info["batch_id"]
    if "text/event-stream" in request.headers.get("Accept", ""):
        net.exeunits.batch(activity, batch_id)
        return await _stream(request, activity, batch_id)
    # golem-core polls with ``timeout=5`` and gives up on the HTTP call at 5.5 s.
    timeout = query_timeout(request)
    command_index = query_int(request, "commandIndex", None, low=0)
    if activity.alive:
        await net.gate(activity.provider, "results")
    results = await net.exeunits.results(activity, batch_id, timeout, command_index)
    return respond(results)


async def _stream(request: web.Request, activity: Activity, batch_id: str) -> web.StreamResponse:
    """Server-sent events in yagna's framing: ``event: runtime``, ``data:``, ``id:``.

    The payload is what yagna sends and golem-js reads (``stdout``/``stderr`` as a plain
    string, ``batch_id``), not the contract's ``{"str": ...}``; see the README.
    """
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    sequence = 0
    async for event in network(request).exeunits.stream(activity, batch_id):
        if event is None:
            await response.write(b":ping\n\n")
            continue
        frame = f"event: runtime\ndata: {json.dumps(event)}\nid: {sequence}\n\n"
        await response.write(frame.encode())
        sequence += 1
    await response.write_eof()
    return response


async def destroy_activity(request: web.Request) -> web.Response:
    net = network(request)
    activity = net.exeunits.get(request.match_info["activity_id"])
    query_timeout(request)
    if activity.alive:
        await net.gate(activity.provider, "destroy")
        net.destroy_activity(activity)
    return respond(None)


async def activity_state(request: web.Request) -> web.Response:
    net = network(request)
    activity = net.exeunits.get(request.match_info["activity_id"])
    if activity.alive:
        await net.gate(activity.provider, "state")
    return respond(activity.state_json())


async def activity_usage(request: web.Request) -> web.Response:
    net = network(request)
    activity = net.exeunits.get(request.match_info["activity_id"])
    if activity.alive:
        await net.gate(activity.provider, "usage")
    return respond({"currentUsage": net.exeunits.usage(activity), "timestamp": int(time.time())})


async def activity_agreement(request: web.Request) -> web.Response:
    activity = network(request).exeunits.get(request.match_info["activity_id"])
    return respond(activity.agreement_id)


async def running_command(request: web.Request) -> web.Response:
    net = network(request)
    activity = net.exeunits.live(request.match_info["activity_id"])
    running = []
    for batch in activity.batches.values():
        if batch.done:
            continue
        for index, state in enumerate(batch.states):
            if state.result is None:
                command = batch.commands[index]
                params = [command.args.get("entry_point", ""), *command.args.get("args", [])]
                running.append(
                    {
                        "batchId": batch.id,
                        "command": command.name,
                        "params": [p for p in params if p] if command.name == "run" else [],
                    }
                )
    return respond(running)


def routes() -> list[web.RouteDef]:
    p = PREFIX
    activity = p + "/activity/{activity_id}"
    return [
        web.post(p + "/activity", create_activity),
        web.get(p + "/activity", list_activities),
        web.post(activity + "/exec", exec_script),
        web.get(activity + "/exec/{batch_id}", batch_results),
        web.delete(activity, destroy_activity),
        web.get(activity + "/state", activity_state),
        web.get(activity + "/usage", activity_usage),
        web.get(activity + "/agreement", activity_agreement),
        web.get(activity + "/command", running_command),
    ]
