"""The window plan (diffusion/windows.py): which windows make a long sequence, which have known latents, and that
the denoiser calls the pipeline plans are the calls it makes (the studio's and the command line's progress)."""

from __future__ import annotations

import pytest
import torch

from melodiff.diffusion.windows import hop, plan_windows, sliding_starts
from melodiff.options import Sampler, SamplingOptions
from melodiff.pipeline import Pipeline
from tiny_model import untrained_pipeline


def test_windows_overlap_by_half_and_end_at_the_end() -> None:
    plan = plan_windows(40, 16)
    assert [(w.start, w.end) for w in plan] == [(0, 16), (8, 24), (16, 32), (24, 40)]
    assert [w.known for w in plan] == [False, True, True, True]  # every later window overlaps a made one
    odd = plan_windows(21, 8)
    assert [(w.start, w.end) for w in odd] == [(0, 8), (4, 12), (8, 16), (12, 20), (13, 21)]
    assert [(w.start, w.end, w.known) for w in plan_windows(5, 8)] == [(0, 5, False)]
    assert hop(1) == 1 and [w.known for w in plan_windows(3, 1)] == [False, False, False]  # no overlap at all


def test_kept_latents_make_a_window_known() -> None:
    mask = torch.zeros(40)
    mask[2] = 1
    assert plan_windows(40, 16, mask)[0].known
    assert not plan_windows(40, 16, torch.zeros(40))[0].known


def test_windows_with_nothing_to_make_are_left_out() -> None:
    mask = torch.ones(1024)
    mask[500] = 0  # infilling 2 bars of a 2,048-bar piece: only the windows around the gap
    plan = plan_windows(1024, 16, mask)
    assert [(w.start, w.end, w.known) for w in plan] == [(488, 504, True)]
    assert plan_windows(40, 16, torch.ones(40)) == []
    mask = torch.ones(40)
    mask[[3, 30]] = 0
    assert [(w.start, w.end) for w in plan_windows(40, 16, mask)] == [(0, 16), (16, 32)]


def test_evaluation_windows_fit_inside() -> None:
    assert list(sliding_starts(40, 16)) == [0, 8, 16, 24] and list(sliding_starts(15, 16)) == []


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return untrained_pipeline()


@pytest.mark.parametrize("options", [SamplingOptions(Sampler.DDIM, steps=5), SamplingOptions(Sampler.DPM_SOLVER, 7),
                                     SamplingOptions(Sampler.DDPM), SamplingOptions(Sampler.DDIM, 3, resample=3),
                                     SamplingOptions(Sampler.DDPM, resample=2)])
def test_planned_calls_are_the_calls_made(pipe: Pipeline, options: SamplingOptions, make_melody) -> None:
    reports: list[tuple[int, int]] = []

    def progress(done: int, planned: int) -> None:
        reports.append((done, planned))

    tune = make_melody(5, 12)
    runs = [lambda: pipe.generate(40, 1, 0, options, progress),  # 20 chunks: 4 windows of 8
            lambda: pipe.generate(4, 2, 0, options, progress),
            lambda: pipe.infill_bars(tune, [(4, 8)], 1, 0, options, progress),
            lambda: pipe.continue_melody(tune, 20, 1, 0, options, progress),
            lambda: pipe.bridge(tune, tune, 4, 1, 0, options, progress),
            lambda: pipe.generate(40, 2, 0, options, progress, form="ABAB")]  # ties across windows
    for run in runs:
        reports.clear()
        run()
        planned = reports[-1][1]
        assert [done for done, _ in reports] == list(range(1, planned + 1))
        assert {p for _, p in reports} == {planned}
    mask = torch.zeros(10)
    mask[:6] = 1  # continue: 12 bars kept (6 chunks), 20 more (10 chunks) -> 16 chunks in all
    assert pipe.planned_calls(16, options, torch.cat([mask[:6], torch.zeros(10)])) > pipe.planned_calls(16, options) \
        or options.resample == 1
