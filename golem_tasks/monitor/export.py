"""`golem-tasks results`: every task of a run as JSON lines or CSV."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, TextIO

FIELDS = (
    "key",
    "status",
    "result",
    "attempts",
    "error",
    "activity_id",
    "provider_name",
    "started_at",
    "finished_at",
)


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def write_jsonl(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for row in rows:
        out.write(json.dumps({k: _plain(row[k]) for k in FIELDS}) + "\n")
        count += 1
    return count


def write_csv(rows: Iterable[dict[str, Any]], out: TextIO) -> int:
    writer = csv.writer(out)
    writer.writerow(FIELDS)
    count = 0
    for row in rows:
        values = [_plain(row[k]) for k in FIELDS]
        # Results are JSON values: keep them JSON in their cell, so they can be read back.
        values[FIELDS.index("result")] = (
            json.dumps(row["result"]) if row["result"] is not None else ""
        )
        writer.writerow(values)
        count += 1
    return count


WRITERS = {"jsonl": write_jsonl, "csv": write_csv}
