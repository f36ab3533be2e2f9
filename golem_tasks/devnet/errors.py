"""Errors the devnet answers with: an HTTP status and yagna's ``{"message": ...}`` body.

Domain code raises these; the server turns them into JSON responses. Anything else that
escapes a handler is a devnet bug and becomes a logged 500.
"""

from __future__ import annotations


class ApiError(Exception):
    """A refusal with the status code yagna uses for it."""

    status = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    status = 400


class NotFound(ApiError):
    status = 404


class RequestTimeout(ApiError):
    status = 408


class Conflict(ApiError):
    status = 409


class Gone(ApiError):
    status = 410


class ServiceError(ApiError):
    """What yagna answers when the remote side (a provider's exe-unit) is unreachable."""

    status = 500


def unknown_activity(activity_id: str) -> ServiceError:
    """yagna's answer to any call about an activity it does not know (500, not 404)."""
    return ServiceError(f"DAO error: Not found: agreement id for activity: {activity_id}")


def gsb_endpoint_not_found(address: str) -> ServiceError:
    """yagna's answer for a call routed to an exe-unit that no longer exists.

    golem-core recognises this message and retries a few times before giving up.
    """
    return ServiceError(
        f"GSB error: GSB failure: Bad request: endpoint address not found: {address}"
    )
