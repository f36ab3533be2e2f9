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
        ("[[group]]\nsubnet='x)y'\n", "subnet"),  # would break the offer's constraints
        ("[[group]]\nsubnet='pub*'\n", "subnet"),  # would be a wildcard
        ("[[group]]\nsubnet=''\n", "non-empty"),
        ("[[group]]\nprice_cpu_hour=nan\n", "finite"),
        ("[[group]]\nmemory_gib=inf\n", "finite"),
        ("[[group]]\n[group.faults]\nslowdown=inf\n", "finite"),
        ("[[group]]\n[group.faults]\nerror_rate=nan\n", "finite"),
        ("[[group]]\nmin_debit_note_interval_sec=0\n", "must be >= 1"),
        ("[[group]]\nmin_expiration_sec=100\nmax_expiration_sec=50\n", "max_expiration_sec"),
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


def test_profiles_built_in_code_are_checked_too() -> None:
    from golem_tasks.devnet.platform import PaymentPlatform
    from golem_tasks.devnet.profile import ProviderSpec
    from golem_tasks.devnet.providers import build_providers

    for spec in (ProviderSpec(name="a", subnet="x)y"), ProviderSpec(name="b", deploy_sec=-1.0)):
        with pytest.raises(ProfileError):
            build_providers([spec], seed=1, platform=PaymentPlatform())
