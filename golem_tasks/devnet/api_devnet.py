"""The devnet's own API (``/devnet-api/v1``): what its ``yagna`` command needs beyond
yagna's REST API.

The real ``yagna`` command asks the daemon over its service bus; the devnet's asks over
HTTP, so it works from another host too. Only what yagna's REST API lacks is here: the
account's status (``yagna payment status``) and the app keys (``yagna app-key list``).
Both need the app key.
"""

from __future__ import annotations

from aiohttp import web

from golem_tasks.devnet.errors import NotFound
from golem_tasks.devnet.rest import APP_KEY, STARTED, network, respond

PREFIX = "/devnet-api/v1"


async def payment_status(request: web.Request) -> web.Response:
    payments = network(request).payments
    for name, own in (("network", payments.platform.network), ("driver", payments.platform.driver)):
        asked = request.query.get(name)
        if asked is not None and asked.lower() != own:
            raise NotFound(f"Payment {name} {asked} is not configured on this node")
    return respond(payments.status())


async def app_keys(request: web.Request) -> web.Response:
    net = network(request)
    key = {
        "name": net.identity()["name"],
        "key": request.app[APP_KEY],
        "id": net.requestor_id,
        "role": "manager",
        "created": request.app[STARTED],
    }
    return respond([key])


def routes() -> list[web.RouteDef]:
    return [
        web.get(PREFIX + "/payments/status", payment_status),
        web.get(PREFIX + "/appKeys", app_keys),
    ]
