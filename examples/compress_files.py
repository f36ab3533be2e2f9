"""Files in, files out: every file of a folder gzipped on a provider.

The file pattern: each task uploads its input with golem-core's ``SendFile``, transforms it
on the provider (``gzip``), and downloads the output with ``DownloadFile`` into an output
folder on the host where the worker runs. The result records the output's path, size and
SHA-256. A download lands under a private name first and is renamed into place only once
the whole task succeeded, so an attempt that dies midway (provider gone, timeout) leaves
no output behind and its retry starts clean.

    golem-tasks run examples/compress_files.py --devnet 3 --workers 2

Environment: COMPRESS_INPUT (folder whose files are compressed; default: this examples
folder), COMPRESS_OUTPUT (default ./compressed), COMPRESS_DELAY (seconds a provider waits
before compressing: a stand-in for a long job; default 0).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, DownloadFile, Run, SendFile

from golem_tasks.files import run_batch

PAYLOAD = RepositoryVmPayload("9a3b5d67b0b27746283cb5f287c13eab1beaa12d92a9f536b747c7ae")
TASK_TIMEOUT = 120

INPUT = Path(os.environ.get("COMPRESS_INPUT") or Path(__file__).parent).resolve()
OUTPUT = Path(os.environ.get("COMPRESS_OUTPUT") or "compressed").resolve()
DELAY = float(os.environ.get("COMPRESS_DELAY", "0"))


def get_tasks(run_id: str) -> Iterator[dict[str, Any]]:
    for path in sorted(INPUT.rglob("*")):
        if path.is_file() and OUTPUT not in path.parents:
            name = path.relative_to(INPUT).as_posix()
            yield {"id": name, "input": str(path)}


async def execute_task(activity: Activity, data: dict[str, Any]) -> dict[str, Any]:
    final = OUTPUT / f"{data['id']}.gz"
    partial = OUTPUT / ".partial" / f"{final.name}.{uuid.uuid4().hex}"
    partial.parent.mkdir(parents=True, exist_ok=True)
    commands = [
        SendFile(data["input"], "/golem/input/in"),
        Run(f"sleep {DELAY}; gzip -9 -n -c /golem/input/in > /golem/output/out.gz"),
        DownloadFile("/golem/output/out.gz", str(partial)),
    ]
    try:
        # The batch, its downloads landed, and golem-core's gftp servers stopped.
        await run_batch(activity, *commands, timeout=TASK_TIMEOUT)
        size, digest = await asyncio.to_thread(_keep, partial, final)
    finally:
        partial.unlink(missing_ok=True)
    return {"output": str(final), "size": size, "sha256": digest}


def _keep(partial: Path, final: Path) -> tuple[int, str]:
    """Size and SHA-256 of a complete download, then move it into place."""
    digest = hashlib.sha256()
    size = 0
    with partial.open("rb") as reader:
        while chunk := reader.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(partial, final)
    return size, digest.hexdigest()
