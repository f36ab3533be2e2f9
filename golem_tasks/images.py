"""Pointing golem-core's image resolution at another image repository.

``RepositoryVmPayload(image_hash)`` resolves the image through Golem's public repository
(an SRV record, then a fixed fallback host). Set ``GOLEM_TASKS_IMAGE_REPO`` to a
repository's base URL (the devnet serves one) and golem-tasks resolves the image there
instead, so an app that names only an image hash runs unchanged on both networks.
"""

from __future__ import annotations

import os
from typing import Any

IMAGE_REPO_ENV = "GOLEM_TASKS_IMAGE_REPO"


async def resolve_payload(payload: Any) -> None:
    """Resolve ``payload``'s image in ``$GOLEM_TASKS_IMAGE_REPO`` when that is set."""
    from golem.payload import RepositoryVmPayload
    from golem.payload.vm import get_package_url, resolve_image_url

    repo = os.environ.get(IMAGE_REPO_ENV)
    if not repo or not isinstance(payload, RepositoryVmPayload):
        return
    if payload.package_url is not None or not payload.image_hash or payload.image_url:
        return
    image_url = await resolve_image_url(repo.rstrip("/"), payload.image_hash)
    payload.package_url = get_package_url(payload.image_hash, image_url)
