"""Devnet profiles are bounded: a huge count or an unsafe provider name is refused with one
line instead of hanging or being used."""

from __future__ import annotations

import re

import pytest

from golem_tasks.devnet.profile import MAX_PROVIDERS, ProfileError, default_profile, load_profile
from tests.helpers import run_cli


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[group]]\ncount = 1000000000\n", "count 1000000000 is above the limit of 10000"),
        (
            "[[group]]\nname='a'\ncount=6000\n[[group]]\nname='b'\ncount=6000\n",
            "12000 providers in all is too many",
        ),
        ("[[group]]\nname = 'x/../../etc'\n", "name 'x/../../etc' may only contain"),
        ("[[group]]\nname = '..'\n", "may only contain"),
        ("[[group]]\nname = 'a..b'\n", "no '..'"),
        ("[[group]]\nname = 'bell\\u0007'\n", "may only contain"),
        ("[[group]]\nname = ''\n", "non-empty"),
        ("[[group]]\nname = 'a/b'\n", "may only contain"),
    ],
)
def test_unbounded_or_unsafe_profiles_are_refused(tmp_path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ProfileError, match=re.escape(message)):
        load_profile(path)


def test_the_limit_itself_is_accepted(tmp_path) -> None:
    path = tmp_path / "big.toml"
    path.write_text(f"[[group]]\nname = 'big.group_1-a'\ncount = {MAX_PROVIDERS}\n")
    assert load_profile(path).size == MAX_PROVIDERS
    with pytest.raises(ProfileError, match="too many"):
        default_profile(MAX_PROVIDERS + 1, seed=1)


@pytest.mark.parametrize(
    "args",
    [["--providers", "1000000000"], ["--profile", "PROFILE"]],
)
def test_devnet_command_refuses_them_in_one_line(tmp_path, args: list[str]) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text("[[group]]\ncount = 1000000000\n")
    args = [str(profile) if arg == "PROFILE" else arg for arg in args]
    result = run_cli("devnet", "--port", "0", *args, timeout=60)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert "limit of 10000" in lines[0] or "at most 10000" in lines[0]
