"""Every relative link in README.md and docs/*.md resolves inside the repository."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^()\s]+)\)")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.S | re.M)


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    found = set()
    for heading in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def links(path: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def broken(path: Path, repo: Path = REPO) -> list[str]:
    problems = []
    for target in links(path):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if repo not in resolved.parents and resolved != repo:
            problems.append(f"{target}: leaves the repository")
        elif not resolved.exists():
            problems.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            problems.append(f"{target}: no heading #{anchor} in {resolved.name}")
    return problems


@pytest.mark.parametrize("path", documents(), ids=lambda p: p.name)
def test_relative_links_resolve(path: Path) -> None:
    assert broken(path) == []


def test_the_checker_catches_what_it_is_for(tmp_path: Path) -> None:
    assert "docs/architecture.md" in links(REPO / "README.md")
    assert "the-yagna-contract" in anchors(REPO / "docs" / "architecture.md")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "architecture.md").write_text("# Principles\n", encoding="utf-8")
    fake = tmp_path / "docs" / "sample.md"
    fake.write_text(
        "# Title\n[a](../../shared/DESIGN.md) [b](missing.md) [c](architecture.md#nope)\n"
        "[d](#title) [e](https://example.org/x) [f](architecture.md#principles)\n"
        "```\n[g](inside-a-fence.md)\n```\n",
        encoding="utf-8",
    )
    assert broken(fake, repo=tmp_path) == [
        "../../shared/DESIGN.md: leaves the repository",
        "missing.md: no such file",
        "architecture.md#nope: no heading #nope in architecture.md",
    ]
