"""The hostile-input figures for docs/verify.md: thousands of drawn API calls and command lines
(tests/hostile.py), each classified as an answer torch agrees with, a clean documented error, a
crash, a hang or a wrong answer.

    python bench/hostile.py --api 2000 --cli 1000 --timeout 60

Each case is one hypothesis example; a case that takes longer than --timeout seconds is a hang
(the run stops there and says which). Prints a Markdown table and the crashes found.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests"))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import hostile  # noqa: E402


class _Hang(Exception):
    pass


def _alarm(_signum, _frame):
    raise _Hang()


def run(kind: str, n: int, timeout: float, seed: int) -> collections.Counter:
    counts: collections.Counter = collections.Counter()
    hangs: list[str] = []

    @settings(max_examples=n, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck))
    @given(st.data())
    def case(data):
        signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(int(timeout))
        try:
            if kind == "api":
                outcome = hostile.api_case(data)
            else:
                argv = hostile.cli_argv(data)
                outcome = hostile.cli_case(argv)
        except _Hang:
            outcome = "hang"
            hangs.append(kind)
        finally:
            signal.alarm(0)
        counts[outcome] += 1

    import random
    random.seed(seed)
    case()
    return counts


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--api", type=int, default=2000)
    p.add_argument("--cli", type=int, default=1000)
    p.add_argument("--timeout", type=float, default=60)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    rows = []
    t0 = time.perf_counter()
    for kind, n in (("api", args.api), ("cli", args.cli)):
        counts = run(kind, n, args.timeout, args.seed)
        rows.append((kind, counts))
    print(f"| cases | tried | answers (checked against torch) | clean errors | crashes | hangs | wrong answers |")
    print("|---|---|---|---|---|---|---|")
    for kind, c in rows:
        label = "API calls" if kind == "api" else "command lines"
        print(f"| {label} | {sum(c.values())} | {c['answer']} | {c['clean']} | {c['crash']} | {c['hang']} | "
              f"{c['wrong']} |")
    print(f"\n{time.perf_counter() - t0:.0f} s")
    for line in dict.fromkeys(hostile.LAST):
        print("crash:", line)


if __name__ == "__main__":
    main()
