"""Point golem-core's image resolution at a chosen image repository.

golem-core resolves ``RepositoryVmPayload(image_hash=...)`` through Golem's public image
repository (an SRV record, then a fixed fallback host), which a machine without internet
access (or a devnet user) cannot reach. When ``GOLEM_TASKS_IMAGE_REPO`` names a repository
base URL, :func:`resolve_payload` resolves the hash there and fills ``package_url`` in, and
golem-core then skips its own lookup (it resolves only while ``package_url`` is None). The
same app therefore runs on the devnet (whose API port also serves the repository) and on
the real network (variable unset) without edits.
"""

from __future__ import annotations

import logging
import os
from typing import Any

logger = logging.getLogger(__name__)

IMAGE_REPO_ENV = "GOLEM_TASKS_IMAGE_REPO"


async def resolve_payload(payload: Any) -> Any:
    """Fill in ``package_url`` of a hash-only ``RepositoryVmPayload`` from the configured repo.

    Returns the payload (changed in place). Anything else, or an unset variable, is left
    alone so golem-core resolves as usual.
    """
    from golem.payload.vm import RepositoryVmPayload, get_package_url, resolve_image_url

    repo = os.environ.get(IMAGE_REPO_ENV, "").strip().rstrip("/")
    if not repo or not isinstance(payload, RepositoryVmPayload):
        return payload
    if not payload.image_hash or payload.package_url is not None:
        return payload
    if payload.image_url:
        # An explicit image URL wins; golem-core only checks it with HEAD.
        return payload
    image_url = await resolve_image_url(repo, payload.image_hash)
    payload.package_url = get_package_url(payload.image_hash, image_url)
    logger.debug("image %s resolved through %s: %s", payload.image_hash, repo, image_url)
    return payload
