"""Management commands refuse bad option values the way argparse does (exit status 2, the option named on
stderr), never with a traceback: values that overflow a date or parse as something else were tracebacks
(``compress_raw --older-than 99999999d``, ``issue_token --expires-in-days 999999999``)."""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from apps.core.cli import MAX_DURATION, duration, seconds, whole_number

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "option"), [
    (["compress_raw", "--older-than", "99999999d"], "--older-than"),
    (["compress_raw", "--older-than", "1e400"], "--older-than"),
    (["compress_raw", "--older-than", "-1"], "--older-than"),
    (["compress_raw", "--limit", "0"], "--limit"),
    (["issue_token", "demo", "t", "--expires-in-days", "999999999"], "--expires-in-days"),
    (["issue_token", "demo", "t", "--expires-in-days", "-5"], "--expires-in-days"),
    (["issue_token", "demo", "t", "--expires-in-days", "soon"], "--expires-in-days"),
    (["agent", "--url", "http://127.0.0.1:9", "--token", "t", "--once", "--interval", "nan"], "--interval"),
    (["agent", "--url", "http://127.0.0.1:9", "--token", "t", "--once", "--interval", "inf"], "--interval"),
    (["agent", "--url", "http://127.0.0.1:9", "--token", "t", "--once", "--timeout", "-1"], "--timeout"),
    (["agent", "--url", "http://127.0.0.1:9", "--token", "t", "--once", "--buffer", "0"], "--buffer"),
])
def test_a_bad_option_value_is_a_usage_error_naming_the_option(args: list[str], option: str) -> None:
    # Arguments are parsed before any database access: no database is needed to see the refusal.
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"argument {option}" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("text", "expected"), [
    ("90", dt.timedelta(seconds=90)), ("1.5h", dt.timedelta(minutes=90)), (" 2d ", dt.timedelta(days=2)),
    ("30m", dt.timedelta(minutes=30)), (f"{MAX_DURATION.days}d", MAX_DURATION),
])
def test_durations(text: str, expected: dt.timedelta) -> None:
    assert duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "1w", "-1d", "1e3", f"{MAX_DURATION.days + 1}d", "9" * 13, "1.0000000001"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_whole_numbers_within_bounds() -> None:
    days = whole_number(1, 3650)
    assert (days("1"), days("3650")) == (1, 3650)
    for text in ("0", "3651", "-1", "1.5", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            days(text)


def test_seconds_are_finite_and_within_bounds() -> None:
    interval = seconds(60)
    assert (interval("0.5"), interval("60")) == (0.5, 60.0)
    for text in ("0", "-1", "61", "nan", "inf", "-inf", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError):
            interval(text)
