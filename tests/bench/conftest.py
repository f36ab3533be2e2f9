"""Benchmark fixtures: one report per session, written to $GOLEM_TASKS_BENCH_REPORT (``make
bench`` sets it to BENCHMARKS.md) when the session measured anything."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.report import Report

REPORT_ENV = "GOLEM_TASKS_BENCH_REPORT"


@pytest.fixture(scope="session")
def bench_report() -> Iterator[Report]:
    report = Report()
    yield report
    target = os.environ.get(REPORT_ENV)
    if target and report.figures:
        report.write(Path(target))
