"""BENCHMARKS.md: every figure of one ``make bench`` run beside its target, with the machine
it ran on and the command that reproduces it."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

COMMAND = "make bench"


@dataclass(frozen=True)
class Figure:
    section: str
    what: str
    value: str
    target: str = ""
    met: bool | None = None  # None: no target


def _meminfo_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return float("nan")


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (
        f"{os.cpu_count()} cores ({_cpu_model()}), {_meminfo_gib():.1f} GiB memory, "
        f"Python {platform.python_version()}, load average at the end {load}"
    )


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def add(
        self, section: str, what: str, value: str, target: str = "", met: bool | None = None
    ) -> None:
        self.figures.append(Figure(section, what, value, target, met))

    def markdown(self) -> str:
        lines = [
            "# Benchmarks",
            "",
            f"Written by `{COMMAND}` on {self.started:%Y-%m-%d %H:%M} UTC "
            f"({(datetime.now(timezone.utc) - self.started).total_seconds() / 60:.1f} min).",
            "",
            f"Machine: {machine()}.",
            "",
            "Reproduce: `make bench` (rewrites this file). The devnet runs in its own process "
            "(`DevnetProcess`), PostgreSQL is the embedded one of the tests (fsync off). "
            "Ratios compare runs made one after the other on the same devnet, so they hold "
            "better than absolute times on a busy machine. What limits the figures that miss "
            "their target, and what would lift them: [docs/throughput.md](docs/throughput.md).",
            "",
        ]
        sections: dict[str, list[Figure]] = {}
        for figure in self.figures:
            sections.setdefault(figure.section, []).append(figure)
        for section, figures in sections.items():
            lines += [
                f"## {section}",
                "",
                "| figure | value | target | met |",
                "| --- | --- | --- | --- |",
            ]
            for f in figures:
                met = "" if f.met is None else ("yes" if f.met else "**no**")
                lines.append(f"| {f.what} | {f.value} | {f.target} | {met} |")
            lines.append("")
        if self.notes:
            lines += ["## Notes", ""] + [f"- {note}" for note in self.notes] + [""]
        return "\n".join(lines)

    def write(self, path: Path) -> None:
        path.write_text(self.markdown())
