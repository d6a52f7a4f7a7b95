"""How many threads torch may use, chosen once per process before torch is imported (torch-free on purpose).

On a machine where other programs keep cores busy, torch's default (one thread per core) makes every parallel
operation wait for its slowest thread, the one that shares a core with someone else: a small job gets slower with
more threads. So a process takes the cores that are free now: ``cores - busy``, at least 1, where ``cores`` is what
this process may run on (CPU affinity and a cgroup CPU quota) and ``busy`` the cores other programs used in the last
``SAMPLE_SECONDS`` (Linux: /proc/stat, niced programs not counted as they yield; elsewhere the 1-minute load
average). Idle OpenMP threads sleep instead of spinning (``OMP_WAIT_POLICY=PASSIVE``), so they take no cycles from
the programs beside them.

Overrides: ``MELODIFF_THREADS=N`` (exactly N threads); an ``OMP_NUM_THREADS`` set by the user is kept as it is
(torchrun sets 1 per rank); an ``OMP_WAIT_POLICY`` set by the user is kept. Benchmarks: benchmarks/busy_core.py,
docs/SCALING.md."""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

ENV_THREADS = "MELODIFF_THREADS"
SAMPLE_SECONDS = 0.05  # how long /proc/stat is watched for busy cores (5 clock ticks at Linux's 100 Hz)
BUSY = 0.5  # a core counts as busy when others use at least this share of it (the busy shares are summed, rounded)


@dataclass(frozen=True)
class ThreadPolicy:
    threads: int | None  # None: the user's OMP_NUM_THREADS stands
    passive_wait: bool  # set OMP_WAIT_POLICY=PASSIVE
    measured: bool  # chosen from the busy cores (not from MELODIFF_THREADS or OMP_NUM_THREADS)
    why: str


def choose_threads(env: Mapping[str, str], cores: int, busy: Callable[[], float]) -> ThreadPolicy:
    """The decision: ``MELODIFF_THREADS``, else the user's ``OMP_NUM_THREADS``, else the free cores: ``cores`` (this
    process may use) minus those others keep busy (``busy()``: a sum of shares, 1.0 = one core fully used; a core
    counts from half used), at least 1. ``busy`` is called only when it decides. Idle threads sleep (PASSIVE) unless
    the user set ``OMP_WAIT_POLICY``."""
    passive = "OMP_WAIT_POLICY" not in env
    text = env.get(ENV_THREADS, "").strip()
    if text:
        try:
            threads = int(text)
        except ValueError:
            threads = 0
        if threads >= 1:
            return ThreadPolicy(threads, passive, False, f"{ENV_THREADS}={threads}")
        log.warning("ignoring %s=%r: not a positive integer", ENV_THREADS, text)
    if env.get("OMP_NUM_THREADS", "").strip():
        return ThreadPolicy(None, passive, False, f"OMP_NUM_THREADS={env['OMP_NUM_THREADS']} (set by the user)")
    cores = max(int(cores), 1)
    used = max(busy(), 0.0) if cores > 1 else 0.0
    taken = min(math.floor(used + 1.0 - BUSY), cores)  # 0.5 .. 1.49 cores used -> 1 core taken
    threads = max(cores - taken, 1)
    return ThreadPolicy(threads, passive, True, f"{cores} core(s), {used:.2f} busy -> {threads} thread(s)")


def usable_cpus() -> list[int] | None:
    """The CPUs this process may run on (its affinity), or None where the OS does not say (macOS, Windows)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def cgroup_cpu_limit(text: str | None) -> float | None:
    """Cores allowed by a cgroup v2 ``cpu.max`` line ("QUOTA PERIOD" or "max PERIOD"); None when unlimited."""
    if not text:
        return None
    parts = text.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def usable_cores() -> int:
    """Cores this process may use: its affinity (else os.cpu_count()), capped by a cgroup CPU quota (containers)."""
    cpus = usable_cpus()
    cores = len(cpus) if cpus else (os.cpu_count() or 1)
    try:
        limit = cgroup_cpu_limit(Path("/sys/fs/cgroup/cpu.max").read_text())
    except OSError:
        limit = None
    if limit is not None:
        cores = min(cores, max(math.ceil(limit), 1))
    return max(cores, 1)


def cpu_times(text: str) -> dict[int, tuple[int, int]]:
    """/proc/stat's text -> {cpu number: (busy ticks, all ticks)}; busy = user, system, irq, softirq, steal (guest
    time is inside user). Not busy: idle, iowait, and nice: a niced program yields its core to ours (a nice-19 one
    keeps about 1.5 % of it)."""
    out = {}
    for line in text.splitlines():
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu" or len(fields) < 4:
            continue
        try:
            cpu, ticks = int(name[3:]), [int(f) for f in fields[:8]]
        except ValueError:
            continue
        yielding = ticks[1] + ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # nice, idle, iowait
        total = sum(ticks)
        out[cpu] = (total - yielding, total)
    return out


def busy_share(before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]],
               cpus: list[int] | None) -> float:
    """Cores used between two /proc/stat readings (a sum of shares) over ``cpus`` (None: every CPU)."""
    share = 0.0
    for cpu in (cpus if cpus is not None else after):
        if cpu in before and cpu in after:
            busy, total = (a - b for a, b in zip(after[cpu], before[cpu], strict=True))
            if total > 0:
                share += min(max(busy / total, 0.0), 1.0)
    return share


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float:
    """Cores other programs use now, as a sum of shares: /proc/stat over ``seconds`` on Linux (this process sleeps
    meanwhile, so what it sees is the others'), else the 1-minute load average, else 0."""
    stat = Path("/proc/stat")
    try:
        before = cpu_times(stat.read_text())
        time.sleep(seconds)
        after = cpu_times(stat.read_text())
        if after:
            return busy_share(before, after, usable_cpus())
    except OSError:
        pass
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def configure_threads(env: MutableMapping[str, str] | None = None) -> ThreadPolicy:
    """Choose torch's thread count for this process (:func:`choose_threads`) and apply it: before torch is imported
    through the environment (OMP_NUM_THREADS, OMP_WAIT_POLICY, which torch's OpenMP reads when it loads; processes
    started from this one inherit them), after it with ``torch.set_num_threads`` (the wait policy is fixed then).
    Measures busy cores (about SAMPLE_SECONDS) only when it has to choose. Call it first thing in a process (the
    CLI's main())."""
    env = os.environ if env is None else env
    policy = choose_threads(env, usable_cores(), busy_cores)
    if "torch" in sys.modules:  # too late for the environment: OpenMP has read it
        if policy.threads is not None:
            sys.modules["torch"].set_num_threads(policy.threads)
    else:
        if policy.passive_wait:
            env["OMP_WAIT_POLICY"] = "PASSIVE"
        if policy.threads is not None:
            env["OMP_NUM_THREADS"] = str(policy.threads)
    log.debug("threads: %s", policy.why)
    return policy
