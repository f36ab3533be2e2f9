"""gftp on the devnet (``make bench``): MB/s up (SendFile) and down (DownloadFile).

The devnet runs in its own process (it fetches from and PUTs to the gftp server, as a
provider would); golem-core and its gftp servers run on the test's side. The 10 MB
round trip in tests/devnet/test_gftp.py is the short version that runs in ``make test``.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest
from golem.resources import DownloadFile, Run, SendFile

from golem_tasks.devnet.detached import DevnetProcess
from golem_tasks.files import run_batch
from tests.devnet.test_gftp import MB, activities, random_file

pytestmark = pytest.mark.bench

#: 100 MB: long enough that the transfer, not the batch's start, dominates the time.
SIZE_MB = 100


async def test_gftp_megabytes_per_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record_property, capsys, bench_report
) -> None:
    source = tmp_path / "up.bin"
    digest = random_file(source, SIZE_MB * MB)
    back = tmp_path / "back.bin"
    async with DevnetProcess(providers=2, seed=3) as net:
        for key, value in net.env().items():
            monkeypatch.setenv(key, value)
        async with activities(net, 1) as [activity]:  # type: ignore[arg-type]
            started = time.monotonic()
            await run_batch(activity, SendFile(str(source), "/golem/input/x.bin"), timeout=300)
            up = SIZE_MB / (time.monotonic() - started)
            await run_batch(activity, Run("mv /golem/input/x.bin /golem/output/y.bin"), timeout=60)
            started = time.monotonic()
            await run_batch(activity, DownloadFile("/golem/output/y.bin", str(back)), timeout=300)
            down = SIZE_MB / (time.monotonic() - started)
    with back.open("rb") as reader:
        assert hashlib.file_digest(reader, "sha256").hexdigest() == digest
    record_property("gftp_up_mb_per_s", round(up, 1))
    record_property("gftp_down_mb_per_s", round(down, 1))
    with capsys.disabled():
        print(f"\n[gftp bench] {SIZE_MB} MB: up {up:.0f} MB/s, down {down:.0f} MB/s")
    section = "gftp on the devnet (one file through golem-core's gftp server)"
    bench_report.add(section, f"{SIZE_MB} MB up (SendFile): MB/s", f"{up:.0f}")
    bench_report.add(section, f"{SIZE_MB} MB down (DownloadFile): MB/s", f"{down:.0f}")
