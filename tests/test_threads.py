"""The thread policy (melodiff/utils/threads.py): who decides (MELODIFF_THREADS, then the user's OMP_NUM_THREADS,
then the free cores), how busy cores are counted, and that the CLI applies it before torch loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from melodiff import cli
from melodiff.utils import threads as th
from melodiff.utils.threads import busy_share, cgroup_cpu_limit, choose_threads, configure_threads, cpu_times


def _never() -> float:
    raise AssertionError("busy cores measured although the user chose")


@pytest.mark.parametrize("cores, busy, threads", [
    (2, 0.0, 2), (2, 0.3, 2), (2, 0.49, 2), (2, 0.5, 1), (2, 1.0, 1), (2, 1.4, 1), (2, 2.0, 1), (2, 5.0, 1),
    (8, 0.0, 8), (8, 3.2, 5), (8, 3.6, 4), (4, -1.0, 4),
])
def test_free_cores(cores: int, busy: float, threads: int) -> None:
    policy = choose_threads({}, cores, lambda: busy)
    assert policy.threads == threads and policy.measured and policy.passive_wait


def test_one_core_is_not_measured() -> None:
    assert choose_threads({}, 1, _never).threads == 1


def test_melodiff_threads_wins(caplog: pytest.LogCaptureFixture) -> None:
    env = {"MELODIFF_THREADS": "3", "OMP_NUM_THREADS": "1"}
    policy = choose_threads(env, 2, _never)
    assert policy.threads == 3 and not policy.measured  # exactly what was asked, even above the cores
    for bad in ("0", "-2", "two", "1.5"):
        policy = choose_threads({"MELODIFF_THREADS": bad}, 2, lambda: 1.0)
        assert policy.threads == 1 and policy.measured  # ignored, with a warning
        assert "ignoring MELODIFF_THREADS" in caplog.text


def test_user_settings_stand() -> None:
    policy = choose_threads({"OMP_NUM_THREADS": "4"}, 2, _never)
    assert policy.threads is None and not policy.measured
    assert not choose_threads({"OMP_WAIT_POLICY": "ACTIVE"}, 2, lambda: 0.0).passive_wait


def test_cgroup_quota() -> None:
    assert cgroup_cpu_limit("max 100000") is None
    assert cgroup_cpu_limit("150000 100000") == 1.5
    assert cgroup_cpu_limit("") is None and cgroup_cpu_limit("garbage") is None and cgroup_cpu_limit("0 100") is None


STAT_BEFORE = """cpu  300 0 100 900 0 0 0 0 0 0
cpu0 100 0 50 450 0 0 0 0 0 0
cpu1 200 0 50 450 0 0 0 0 0 0
intr 12345
"""
STAT_AFTER = """cpu  305 0 100 910 0 0 0 0 0 0
cpu0 100 8 50 462 0 0 0 0 0 0
cpu1 204 0 51 450 0 0 0 0 0 0
"""


def test_busy_cores_from_proc_stat() -> None:
    before, after = cpu_times(STAT_BEFORE), cpu_times(STAT_AFTER)
    assert before == {0: (150, 600), 1: (250, 700)}
    assert busy_share(before, after, None) == pytest.approx(1.0)  # cpu0 idle or niced, cpu1 busy all 5 ticks
    assert busy_share(before, after, [0]) == 0.0  # only the CPUs this process may use count
    assert busy_share(before, after, [1, 7]) == pytest.approx(1.0)


def test_configure_applies_to_a_loaded_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls = []
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.setattr(th, "usable_cores", lambda: 2)
    monkeypatch.setattr(th, "busy_cores", lambda: 1.0)
    env: dict[str, str] = {}
    assert configure_threads(env).threads == 1
    assert calls == [1] and env == {}  # torch has read the environment already: set directly, env left alone


def test_configure_before_torch_loads() -> None:
    code = ("import os, sys; from melodiff.utils.threads import configure_threads; configure_threads(); "
            "assert 'torch' not in sys.modules; import torch; "
            "print(torch.get_num_threads(), os.environ['OMP_NUM_THREADS'], os.environ['OMP_WAIT_POLICY'])")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")} | {"MELODIFF_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "1", "PASSIVE"]


def test_cli_main_configures_threads_first(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(cli, "configure_threads", lambda: calls.append("threads"))
    monkeypatch.setattr(cli, "build_parser", lambda: calls.append("parser") or pytest.fail("stop here"))
    with pytest.raises(pytest.fail.Exception):
        cli.main(["--help"])
    assert calls == ["threads", "parser"]
