"""The hostile-input suite (issue 22 point 8): hypothesis draws API calls and command lines
(tests/hostile.py); every outcome is an answer torch agrees with or a documented error. The
figures over thousands of cases are in docs/verify.md (python bench/hostile.py)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile import LAST, api_case, cli_argv, cli_case


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_api_answers_right_or_refuses_cleanly(data):
    assert api_case(data) in ("answer", "clean"), LAST[-1:]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_the_command_line_answers_or_exits_with_one_line(data):
    argv = cli_argv(data)
    assert cli_case(argv) in ("answer", "clean"), argv
