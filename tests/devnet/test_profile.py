"""Provider profiles: JSON and TOML files, validation with clear messages."""

from __future__ import annotations

import json

import pytest

from golem_tasks.devnet.profile import ProfileError, default_profile, load_profile

TOML = """
[[group]]
name = "cheap"
count = 3
subnet = "lab"
cpu_threads = 2
memory_gib = 4
price_cpu_hour = 0.01
[group.faults]
reject_proposal = 0.25
die_after_sec = 30

[[group]]
name = "solo"
"""


def test_toml_and_json_profiles(tmp_path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TOML)
    profile = load_profile(path)
    specs = profile.expand()
    assert [s.name for s in specs] == ["cheap-1", "cheap-2", "cheap-3", "solo-1"]
    cheap = specs[0]
    assert (cheap.subnet, cheap.cpu_threads, cheap.memory_gib) == ("lab", 2, 4.0)
    assert cheap.faults.reject_proposal == 0.25 and cheap.faults.die_after_sec == 30.0
    assert specs[-1].faults.reject_proposal == 0.0

    as_json = tmp_path / "p.json"
    as_json.write_text(
        json.dumps({"groups": [{"name": "j", "count": 2, "faults": {"error_rate": 0.1}}]})
    )
    assert [s.name for s in load_profile(as_json).expand()] == ["j-1", "j-2"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[group]]\nname='a'\ncolour='red'\n", r"unknown key\(s\) colour"),
        ("[[group]]\n[group.faults]\nreject_proposal=2\n", "probability"),
        ("[[group]]\n[group.faults]\nslowdown=0.5\n", "slowdown"),
        ("[[group]]\ncount=-1\n", "count"),
        ("[[group]]\ncpu_threads='many'\n", "must be a number"),
        ("x = 1\n", "unknown top-level"),
        ("", "at least one group"),
        ("[[group]]\nname='a'\n[[group]]\nname='a'\n", "duplicate"),
        ("not toml [", "not valid"),
    ],
)
def test_bad_profiles_say_what_is_wrong(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=message):
        load_profile(path)


def test_missing_file() -> None:
    with pytest.raises(ProfileError, match="cannot read profile"):
        load_profile("/nonexistent/profile.toml")


def test_default_profile_is_seeded() -> None:
    assert default_profile(5, seed=1) == default_profile(5, seed=1)
    assert default_profile(5, seed=1) != default_profile(5, seed=2)
    assert default_profile(0, seed=1).size == 0
