"""Where the devnet deliberately answers otherwise than yagna 0.17.6, and why.

Each entry names the cases (``fnmatch`` patterns), the kind of difference (``status``,
``content_type`` or ``body``) and a pattern of its detail; ``docs/devnet-deviations.md``
explains every entry under its key.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase


@dataclass(frozen=True)
class Difference:
    case: str
    kind: str  # "status", "content_type" or "body"
    detail: str


@dataclass(frozen=True)
class Deviation:
    key: str
    cases: tuple[str, ...]
    kind: str
    detail: str = "*"
    reason: str = ""

    def matches(self, difference: Difference) -> bool:
        return (
            self.kind == difference.kind
            and fnmatchcase(difference.detail, self.detail)
            and any(fnmatchcase(difference.case, pattern) for pattern in self.cases)
        )


DEVIATIONS: tuple[Deviation, ...] = (
    Deviation(
        "json-errors",
        ("*",),
        "content_type",
        "text/plain -> application/json",
        "yagna answers a missing or wrong app key, a query string that does not parse and "
        "(outside the market API) a body that does not parse in plain text; the devnet "
        "answers the contract's ErrorMessage, with yagna's words in `message`.",
    ),
    Deviation("json-errors", ("*",), "body", '$: {"message": "string"} where yagna has "text"'),
    Deviation(
        "version-pending",
        ("version", "version.*"),
        "body",
        "$.pending: missing*",
        'yagna adds `"pending": null`; the contract\'s YagnaVersionInfo is not nullable, and '
        "a client reads an absent `pending` as it reads null.",
    ),
    Deviation(
        "malformed-ids",
        ("*.malformed", "*.malformed_*"),
        "status",
        "* -> 404",
        "yagna refuses a demand or agreement id of the wrong form before looking it up (400; "
        "500 when creating an activity); the devnet looks it up and answers 404. Clients "
        "only send ids they were given.",
    ),
    Deviation("malformed-ids", ("*.malformed", "*.malformed_*"), "content_type"),
    Deviation(
        "properties-object",
        ("market.subscribe_demand.properties_list",),
        "status",
        "201 -> 400",
        "yagna takes `properties: []`; the contract says object and the devnet refuses it.",
    ),
    Deviation("properties-object", ("market.subscribe_demand.properties_list",), "body"),
    Deviation(
        "reject-unknown-proposal",
        ("market.reject_proposal.unknown",),
        "status",
        "500 -> 404",
        "yagna answers 500 for rejecting a proposal it does not know; the devnet 404, as "
        "for every other call about an unknown proposal.",
    ),
    Deviation(
        "error-bodies",
        ("market.termination_reason.unknown", "unknown_route"),
        "content_type",
        "none -> application/json",
        "yagna sends these 404s without a body; the devnet says what was not found.",
    ),
    Deviation("error-bodies", ("market.termination_reason.unknown", "unknown_route"), "body"),
    Deviation(
        "payment-404-message",
        ("payment.*.unknown",),
        "body",
        '$.message: "string" where yagna has "null"',
        'yagna\'s payment API answers unknown ids with `{"message": null}`; the devnet names '
        "the id in the message (a string is what the contract's ErrorMessage has).",
    ),
    Deviation(
        "debit-note-rejection",
        ("payment.reject_debit_note.unknown", "payment.debit_note_payments.unknown"),
        "status",
        "501 -> 404",
        "yagna 0.17.6 has no debit-note rejection nor debit-note payment listing (501 Not "
        "Implemented); the devnet implements both (the contract has them) and answers "
        "unknown ids 404.",
    ),
)


def allowed(difference: Difference) -> bool:
    return any(dev.matches(difference) for dev in DEVIATIONS)
