"""HTTP contract details: app-key auth, JSON errors, bad input is 4xx (never 500), /me,
/version/get, images."""

from __future__ import annotations

import json

import pytest

from tests.devnet.flows import (
    ACTIVITY,
    DEPLOY_START,
    MARKET,
    PAYMENT,
    Api,
    agreement,
    run_script,
    subscribe,
)

ROUTES = [
    ("GET", "/me"),
    ("GET", f"{MARKET}/demands"),
    ("POST", f"{MARKET}/demands"),
    ("GET", f"{PAYMENT}/allocations"),
    ("GET", f"{ACTIVITY}/activity/x/state"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_missing_or_wrong_app_key_is_401(api, method: str, path: str) -> None:
    # yagna's words (it sends them as plain text; the contract's ErrorMessage wins here).
    for headers, text in (
        ({}, "Missing application key"),
        ({"Authorization": "Bearer wrong"}, "Invalid application key"),
        ({"Authorization": "Basic abc"}, "Missing application key"),
    ):
        url = api.base + path
        async with api.session.request(method, url, headers=headers) as response:
            assert response.status == 401
            assert (await response.json()) == {"message": text}


async def test_auth_token_query_parameter(api, devnet) -> None:
    async with api.session.get(api.base + "/me", params={"authToken": devnet.app_key}) as response:
        assert response.status == 200


async def test_identity(api, devnet) -> None:
    me = await api.ok("GET", "/me")
    assert set(me) == {"identity", "name", "role"}
    assert me["identity"] == devnet.network.requestor_id


async def test_version(api) -> None:
    version = await api.ok("GET", "/version/get")
    assert set(version["current"]) == {
        "version",
        "name",
        "seen",
        "releaseTs",
        "insertionTs",
        "updateTs",
    }


async def test_version_needs_no_app_key(api) -> None:
    """yagna answers /version/get without a key: clients check the daemon's version first."""
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        async with api.session.get(api.base + "/version/get", headers=headers) as response:
            assert response.status == 200
            assert (await response.json())["current"]["version"] == "0.17.6"


async def test_image_repository_needs_no_key(api) -> None:
    image = "9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae"
    async with api.session.get(f"{api.base}/image.{image}.link") as response:
        assert response.status == 200
        url = await response.text()
    assert url == f"{api.base}/images/{image}.gvmi"  # verbatim, no newline
    async with api.session.head(url) as response:
        assert response.status == 200
    async with api.session.get(f"{api.base}/image.not-a-hash.link") as response:
        assert response.status == 404


async def test_unknown_routes_and_methods_answer_json(api) -> None:
    status, body = await api.call("GET", "/market-api/v1/nothing")
    assert status == 404 and "message" in body
    status, body = await api.call("PATCH", f"{MARKET}/demands")
    assert status == 405 and "message" in body


async def test_unknown_ids_are_404(api) -> None:
    for method, path in (
        ("GET", f"{MARKET}/demands/x/events"),
        ("GET", f"{MARKET}/demands/x/proposals/y"),
        ("GET", f"{MARKET}/agreements/x"),
        ("POST", f"{MARKET}/agreements/x/confirm"),
        ("POST", f"{MARKET}/agreements/x/wait"),
        ("POST", f"{MARKET}/agreements/x/terminate"),
        ("GET", f"{PAYMENT}/allocations/x"),
        ("GET", f"{PAYMENT}/debitNotes/x"),
        ("GET", f"{PAYMENT}/invoices/x"),
    ):
        status, body = await api.call(method, path, json_body={"text": "[]"})
        assert status == 404, (method, path, status, body)
        assert isinstance(body, dict) and body.get("message"), (method, path)


async def test_unknown_activities_are_500_as_in_yagna(api) -> None:
    """yagna 0.17.6 answers every call about an activity it does not know with 500
    "DAO error: Not found: agreement id for activity: <id>" (not 404)."""
    for method, path in (
        ("GET", f"{ACTIVITY}/activity/x/state"),
        ("GET", f"{ACTIVITY}/activity/x/usage"),
        ("GET", f"{ACTIVITY}/activity/x/agreement"),
        ("GET", f"{ACTIVITY}/activity/x/command"),
        ("POST", f"{ACTIVITY}/activity/x/exec"),
        ("GET", f"{ACTIVITY}/activity/x/exec/y"),
        ("DELETE", f"{ACTIVITY}/activity/x"),
    ):
        status, body = await api.call(method, path, json_body={"text": "[]"})
        assert status == 500, (method, path, status, body)
        assert body["message"] == "DAO error: Not found: agreement id for activity: x"


GARBAGE = [
    None,
    b"{not json",
    b"[]",
    b'"a string"',
    b"42",
    b'{"properties": 1, "constraints": 2}',
    b'{"properties": {}, "constraints": "((("}',
    b'{"totalAmount": {"x": 1}}',
    b'{"proposalId": 5, "validTo": "tomorrow"}',
    b"[" * 200_000,  # nests deeper than json's recursion
    b'{"properties": ' + b'{"a": ' * 500 + b"1" + b"}" * 501 + b', "constraints": ""}',
    b'{"text": ' + json.dumps("[" * 200_000).encode() + b"}",
    b'{"totalAmount": "1e10"}',
    b'{"totalAmount": 1e308}',
    b'{"totalAmount": 1e400}',  # Python reads it as inf
    b'{"totalAmount": "1e999999999"}',
    b'{"totalAmount": NaN}',
    b'{"totalAmount": "-1"}',
    b'{"totalAmount": "1", "timeout": "9999-12-31T23:59:59-05:00"}',
    b'{"totalAmount": "1", "timeout": "0001-01-01T00:00:00+05:00"}',
    b'{"totalAmountAccepted": "1e999999999", "allocationId": "x"}',
    b'{"proposalId": "x", "validTo": "9999-12-31T23:59:59-05:00"}',
    b'{"proposalId": "x", "validTo": "0001-01-01T00:00:00+05:00"}',
]

#: ExeScript texts that parse (Python's json reads NaN and Infinity) but cannot run as they
#: are: NUL bytes and "=" where execve cannot take them, limits that are not finite.
_RUN = '{"run": {"entry_point": "/bin/echo", '
BAD_SCRIPTS = [
    "[" + _RUN + r'"args": ["a\u0000b"]}}]',
    r'[{"run": {"entry_point": "/bin/ec\u0000ho"}}]',
    '[{"deploy": {"env": {"A=B": "x"}}}]',
    '[{"deploy": {"env": {"": "x"}}}]',
    r'[{"deploy": {"env": {"A": "x\u0000y"}}}]',
    r'[{"transfer": {"from": "container:/a\u0000", "to": "file:///tmp/x"}}]',
    "[" + _RUN + '"capture": {"stdout": {"stream": {"limit": Infinity}}}}}]',
    "[" + _RUN + '"capture": {"stdout": {"atEnd": {"head": NaN}}}}}]',
    "[" + _RUN + '"capture": {"stdout": {"atEnd": {"tail": -Infinity}}}}}]',
    "[" + _RUN + '"capture": {"stderr": {"atEnd": {"part": {"headTail": 1e400}}}}}}]',
]


async def test_bad_input_never_gets_500(api: Api) -> None:
    demand_id = await subscribe(api)
    agreement_id, _, _ = await agreement(api)
    activity_id = await api.ok("POST", f"{ACTIVITY}/activity", json_body=agreement_id)
    targets = [
        ("POST", f"{ACTIVITY}/activity/{activity_id}/exec"),  # before its agreement ends
        ("POST", f"{MARKET}/demands"),
        ("POST", f"{MARKET}/demands/{demand_id}/proposals/x"),
        ("POST", f"{MARKET}/demands/{demand_id}/proposals/x/reject"),
        ("POST", f"{MARKET}/agreements"),
        ("POST", f"{MARKET}/agreements/{agreement_id}/terminate"),
        ("POST", f"{ACTIVITY}/activity"),
        ("POST", f"{PAYMENT}/allocations"),
        ("PUT", f"{PAYMENT}/allocations/x"),
        ("POST", f"{PAYMENT}/debitNotes/x/accept"),
        ("POST", f"{PAYMENT}/invoices/x/reject"),
    ]
    for method, path in targets:
        for body in GARBAGE:
            status, answer = await api.call(
                method, path, data=body, headers={"Content-Type": "application/json"}
            )
            assert status < 500, (method, path, body, status, answer)
            if body is not None:  # an empty body is valid where the body is optional
                assert status >= 400, (method, path, body, status, answer)
            if status >= 400:
                assert isinstance(answer, dict) and answer.get("message"), (method, path, body)
    bad_queries = [
        (f"{MARKET}/demands/{demand_id}/events", {"timeout": "soon"}),
        (f"{MARKET}/demands/{demand_id}/events", {"maxEvents": "101"}),
        (f"{MARKET}/demands/{demand_id}/events", {"maxEvents": "inf"}),
        (f"{MARKET}/demands/{demand_id}/events", {"maxEvents": "1e400"}),
        (f"{MARKET}/demands/{demand_id}/events", {"maxEvents": "-inf"}),
        (f"{MARKET}/demands/{demand_id}/events", {"maxEvents": "nan"}),
        (f"{MARKET}/agreementEvents", {"maxEvents": "inf"}),
        (f"{PAYMENT}/debitNotes", {"maxItems": "inf"}),
        (f"{PAYMENT}/debitNotes", {"maxItems": "-inf"}),
        (f"{PAYMENT}/invoices", {"maxItems": "101"}),
        (f"{PAYMENT}/debitNotes", {"afterTimestamp": "9999-12-31T23:59:59-05:00"}),
        (f"{MARKET}/agreements", {"afterDate": "0001-01-01T00:00:00+05:00"}),
        (f"{MARKET}/demands/{demand_id}/events", {"timeout": "-1"}),
        (f"{PAYMENT}/debitNoteEvents", {"afterTimestamp": "yesterday"}),
        (f"{PAYMENT}/invoiceEvents", {"maxEvents": "x"}),
        (f"{PAYMENT}/demandDecorations", {}),
        (f"{MARKET}/agreements", {"state": "Happy"}),
        (f"{ACTIVITY}/activity", {}),
        (f"{ACTIVITY}/activity/{activity_id}/exec/x", {"commandIndex": "-2"}),
    ]
    for path, params in bad_queries:
        status, answer = await api.call("GET", path, params=params)
        assert 400 <= status < 500, (path, params, status, answer)
    agreement_id, _, _ = await agreement(api)
    activity_id = await api.ok("POST", f"{ACTIVITY}/activity", json_body=agreement_id)
    await run_script(api, activity_id, DEPLOY_START)
    for text in BAD_SCRIPTS:
        status, answer = await api.call(
            "POST", f"{ACTIVITY}/activity/{activity_id}/exec", json_body={"text": text}
        )
        assert status == 400, (text, status, answer)
    held = (await api.ok("POST", f"{PAYMENT}/allocations", json_body={"totalAmount": "1"}))[
        "allocationId"
    ]
    for amend in (
        {"totalAmount": "1e999999999"},
        {"totalAmount": 1e308},
        {"totalAmount": "Infinity"},
        {"timeout": "9999-12-31T23:59:59-05:00"},
    ):
        status, answer = await api.call("PUT", f"{PAYMENT}/allocations/{held}", json_body=amend)
        assert status == 400, (amend, status, answer)
    # Nothing above left a broken object behind.
    for path in (f"{PAYMENT}/allocations", f"{MARKET}/agreements", f"{MARKET}/demands"):
        assert (await api.call("GET", path))[0] == 200, path
