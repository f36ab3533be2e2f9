"""yacat: hashcat on Golem, the original golem-tasks example, in this interface.

An endless stream of random short passwords is hashed with SHA-256 (hashcat mode 1400).
Each password's main task asks hashcat on a provider for the keyspace of the mask (``?a``
per character); its result adds one follow-up part task per chunk of that keyspace
(``on_result``), and each part runs a mask attack over its chunk. A part that finds the
password returns it; ``results_cnt`` counts found passwords.

On Golem the providers run the hashcat image the original used. On the devnet they run the
host's hashcat (Debian: ``apt-get install hashcat pocl-opencl-icd``); its first attack
compiles OpenCL kernels (a minute on a busy machine), later ones reuse them.

    golem-tasks run examples/yacat.py --devnet 3 --workers 2

Environment: YACAT_LENGTH (password length, default 3), YACAT_CHUNK (keyspace per part,
default 4096), YACAT_PASSWORDS (how many; default endless), YACAT_SEED (default random).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import shlex
import string
from collections.abc import Iterator
from typing import Any

from golem.payload import RepositoryVmPayload
from golem.resources import Activity, Run

from golem_tasks.appapi import count_results

#: The hashcat image of the original yacat example.
PAYLOAD = RepositoryVmPayload("055911c811e56da4d75ffc928361a78ed13077933ffa8320fb1ec2db")
#: A provider's first attack compiles hashcat's kernels.
TASK_TIMEOUT = 600

HASH_TYPE = 1400  # SHA-256
ATTACK_MODE = 3  # mask attack
CHARS = string.ascii_letters + string.digits + string.punctuation
OUT = "/golem/output/out.potfile"

LENGTH = int(os.environ.get("YACAT_LENGTH", "3"))
CHUNK = int(os.environ.get("YACAT_CHUNK", str(2**12)))
PASSWORDS = os.environ.get("YACAT_PASSWORDS")
SEED = os.environ.get("YACAT_SEED")


def passwords(seed: str | None = SEED, length: int = LENGTH) -> Iterator[str]:
    """The passwords to find, endless (the same ones again for the same seed)."""
    rng = random.Random(seed)
    while True:
        yield "".join(rng.choice(CHARS) for _ in range(length))


def get_tasks(run_id: str) -> Iterator[dict[str, Any]]:
    count = int(PASSWORDS) if PASSWORDS else None
    mask = "?a" * LENGTH
    for n, password in enumerate(itertools.islice(passwords(), count)):
        digest = hashlib.sha256(password.encode()).hexdigest()
        yield {"id": n, "kind": "main", "mask": mask, "hash": digest}


async def execute_task(activity: Activity, data: dict[str, Any]) -> dict[str, Any]:
    if data["kind"] == "main":
        return {"keyspace": await _keyspace(activity, data["mask"])}
    return {"password": await _attack(activity, data), "skip": data["skip"]}


def on_result(
    run_id: str, key: str, data: dict[str, Any], result: dict[str, Any]
) -> list[dict[str, Any]]:
    """A main task's keyspace becomes one part task per chunk."""
    if data["kind"] != "main":
        return []
    keyspace = int(result["keyspace"])
    return [
        {
            "id": f"part-{skip}",
            "kind": "part",
            "mask": data["mask"],
            "hash": data["hash"],
            "skip": skip,
            # hashcat's --limit counts words after --skip (the original passed skip + CHUNK
            # and so searched the rest of the keyspace in every part).
            "limit": min(CHUNK, keyspace - skip),
        }
        for skip in range(0, keyspace, CHUNK)
    ]


async def results_cnt(run_id: str) -> int:
    """Found passwords (not finished tasks)."""
    return await count_results(run_id, having="password")


async def _keyspace(activity: Activity, mask: str) -> int:
    command = f"hashcat --keyspace -a {ATTACK_MODE} -m {HASH_TYPE} {shlex.quote(mask)}"
    batch = await activity.execute_commands(Run(command))
    await batch.wait(timeout=60)
    return int((batch.events[-1].stdout or "").strip())


async def _attack(activity: Activity, data: dict[str, Any]) -> str | None:
    attack = (
        f"hashcat -a {ATTACK_MODE} -m {HASH_TYPE} --self-test-disable --potfile-disable "
        f"--skip={data['skip']} --limit={data['limit']} -o {OUT} "
        f"{shlex.quote(data['hash'])} {shlex.quote(data['mask'])} > /dev/null || true"
    )
    batch = await activity.execute_commands(
        Run(f"rm -f {OUT}"), Run(f"touch {OUT}"), Run(attack), Run(f"cat {OUT}")
    )
    await batch.wait(timeout=TASK_TIMEOUT)
    return _found(batch.events[-1].stdout or "", data["hash"])


def _found(potfile: str, digest: str) -> str | None:
    """The password in hashcat's ``hash:plain`` output, if it found this hash."""
    for line in potfile.split("\n"):
        found_hash, sep, plain = line.partition(":")
        if sep and found_hash == digest:
            if plain.startswith("$HEX[") and plain.endswith("]"):
                plain = bytes.fromhex(plain[5:-1]).decode(errors="replace")
            return plain
    return None
