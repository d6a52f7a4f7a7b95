"""A small job on a busy machine: one 64-bar `melodiff generate` (the shipped model, default sampler, seed 0; the
whole command in a fresh process: import, load, sample, write the MIDI file), with and without one core kept busy by
a bounded busy loop in another process, under torch's own thread defaults and under melodiff's thread policy
(melodiff/utils/threads.py: threads = free cores, idle OpenMP threads sleep). Each condition is run ``--repeats``
times in turn; the median wall time is printed, with what the policy chose. Target: with one core busy, the
policy's time <= 1.3 x the idle time (docs/SCALING.md).

"torch defaults" runs the same CLI with the policy switched off (every core, OpenMP's default wait policy), as
before the policy existed; "1 thread" sets OMP_NUM_THREADS=1, which the policy respects.

usage: python benchmarks/busy_core.py [--repeats 5] [--bars 64]"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

CLI = "import sys; from melodiff import cli; sys.exit(cli.main(sys.argv[1:]))"
NO_POLICY = ("import sys; from melodiff import cli; cli.configure_threads = lambda: None; "
             "sys.exit(cli.main(sys.argv[1:]))")
CHOICE = "from melodiff.utils.threads import configure_threads; print(configure_threads().why)"
BUSY_LOOP = "import sys, time\nend = time.monotonic() + float(sys.argv[1])\nwhile time.monotonic() < end:\n    pass"
CONDITIONS = {  # name -> (entry point, extra environment)
    "torch defaults": (NO_POLICY, {}),
    "melodiff policy": (CLI, {}),
    "1 thread (OMP_NUM_THREADS=1)": (CLI, {"OMP_NUM_THREADS": "1"}),
}


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "MKL_", "MELODIFF_THREADS"))}
    return env | extra


def run_generate(entry: str, extra: dict[str, str], bars: int, out: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", entry, "-q", "generate", "--bars", str(bars), "--seed", "0", "--out", out],
                   env=clean_env(extra), check=True)
    return time.perf_counter() - t0


def policy_choice(extra: dict[str, str]) -> str:
    return subprocess.run([sys.executable, "-c", CHOICE], env=clean_env(extra), capture_output=True, text=True,
                          check=True).stdout.strip()


def measure(bars: int, repeats: int) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in CONDITIONS}
    with tempfile.TemporaryDirectory() as out:
        for _ in range(repeats):
            for name, (entry, extra) in CONDITIONS.items():
                times[name].append(run_generate(entry, extra, bars, out))
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--bars", type=int, default=64)
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load average now {os.getloadavg()[0]:.2f}; median of {args.repeats} runs of "
          f"`melodiff generate --bars {args.bars}` per cell\n")
    with tempfile.TemporaryDirectory() as out:  # the first run pays for cold caches
        run_generate(CLI, {}, args.bars, out)
    idle_choice = policy_choice({})
    idle = measure(args.bars, args.repeats)
    budget = 60.0 + 3 * args.repeats * len(CONDITIONS) * max(idle.values())  # the busy loop ends by itself
    busy_loop = subprocess.Popen([sys.executable, "-c", BUSY_LOOP, str(budget)])
    try:
        time.sleep(1.0)
        busy_choice = policy_choice({})
        busy = measure(args.bars, args.repeats)
    finally:
        busy_loop.terminate()
        busy_loop.wait()
    base = idle["torch defaults"]
    print("| threads | idle | one core busy | busy / idle (torch defaults) |\n|---|---|---|---|")
    for name in CONDITIONS:
        print(f"| {name} | {idle[name]:.2f} s | {busy[name]:.2f} s | {busy[name] / base:.2f} |")
    print(f"\nthe policy chose: idle: {idle_choice}; busy: {busy_choice}")


if __name__ == "__main__":
    main()
