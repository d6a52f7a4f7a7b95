"""The Pipeline facade on a tiny untrained model: lengths in bars, seeds, infill / continue / interpolate keep what
they must keep, long sequences, argument errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest
import torch

from melodiff.data.normalizer import LatentNormalizer, Scaling
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.diffusion.denoiser import TransformerDenoiser
from melodiff.diffusion.interpolation import ddim_invert
from melodiff.diffusion.sampling import Sampler, ddim_sample
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.errors import MelodiffError
from melodiff.music.form import chunk_sources, parse_form
from melodiff.music.melody import CHUNK_STEPS, STEPS_PER_BAR, Melody
from melodiff.options import FAST_STEPS, GIVEN_STEPS
from melodiff.pipeline import MAX_BARS, Pipeline, SamplingOptions
from melodiff.vae.config import preset as vae_preset
from melodiff.vae.model import MelodyVAE

# temperature 1: the untrained decoder's greedy output hardly depends on z; sampling shows where the music changed
OPTIONS = SamplingOptions(sampler=Sampler.DDIM, steps=4, temperature=1.0)
MakeMelody = Callable[[int, int], Melody]


def tiny_pipeline() -> Pipeline:
    vae_config = vae_preset("tiny")[0]
    rng = np.random.default_rng(0)
    z = rng.normal(size=(100, vae_config.z_size)).astype(np.float32)
    sigma = np.where(np.arange(vae_config.z_size) % 3 == 0, 1.5, 0.2) * np.ones((100, 1))
    normalizer = LatentNormalizer.fit(z, sigma, scaling=Scaling.MINMAX)  # latents in [-1, 1]
    denoiser_config, schedule_config, _ = diffusion_preset("tiny")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = MelodyVAE(vae_config)
        denoiser = TransformerDenoiser(replace(denoiser_config, latent_dim=normalizer.latent_dim))
    return Pipeline(vae, denoiser, NoiseSchedule(schedule_config), normalizer)


@pytest.fixture(scope="module")
def pipe() -> Pipeline:
    return tiny_pipeline()


def chunk_ids(melody: Melody) -> np.ndarray:
    return melody.padded().chunks()


def test_components_must_belong_together(pipe: Pipeline) -> None:
    other = replace(pipe.normalizer, dims=pipe.normalizer.dims[:-1])
    with pytest.raises(MelodiffError, match="do not belong together"):
        Pipeline(pipe.vae, pipe.denoiser, pipe.schedule, other)
    assert pipe.normalizer.latent_dim == 10 and pipe.window_chunks == 8


@pytest.mark.parametrize("bars", [1, 5, 16])
def test_generate_length_in_bars(pipe: Pipeline, bars: int) -> None:
    melodies = pipe.generate(bars, 2, seed=0, options=OPTIONS)
    assert len(melodies) == 2 and all(len(m) == bars * STEPS_PER_BAR for m in melodies)


def test_generate_defaults_to_the_window(pipe: Pipeline) -> None:
    (melody,) = pipe.generate(seed=0)  # default options: DPM-Solver, greedy decoding
    assert len(melody) == pipe.window_chunks * CHUNK_STEPS


def test_same_seed_same_music(pipe: Pipeline) -> None:
    a = pipe.generate(6, 2, seed=3, options=OPTIONS)
    assert a == pipe.generate(6, 2, seed=3, options=OPTIONS)
    assert a != pipe.generate(6, 2, seed=4, options=OPTIONS)
    assert a[0] != a[1]
    x = pipe.sample_latents(3, 2, OPTIONS, torch.Generator().manual_seed(0))
    assert torch.equal(x, pipe.sample_latents(3, 2, OPTIONS, torch.Generator().manual_seed(0)))
    assert not torch.equal(x, pipe.sample_latents(3, 2, OPTIONS, torch.Generator().manual_seed(1)))


def test_longer_than_the_window(pipe: Pipeline) -> None:
    bars = 3 * pipe.window_chunks * 2
    melodies = pipe.generate(bars, 2, seed=1, options=OPTIONS)
    assert [len(m) for m in melodies] == [bars * STEPS_PER_BAR] * 2
    x = pipe.sample_latents(3 * pipe.window_chunks + 1, 1, OPTIONS, torch.Generator().manual_seed(0))
    assert x.shape == (1, 25, pipe.normalizer.latent_dim) and x.abs().max() <= 1


def test_long_sequences_keep_each_window(pipe: Pipeline) -> None:
    """Later windows are infilled from the earlier ones: the first window of a long sample is exactly the sample of
    one window with the same seed (nothing already made is generated again)."""
    window = pipe.window_chunks
    short = pipe.sample_latents(window, 2, OPTIONS, torch.Generator().manual_seed(5))
    long = pipe.sample_latents(3 * window, 2, OPTIONS, torch.Generator().manual_seed(5))
    assert torch.equal(long[:, :window], short)


@pytest.mark.parametrize("num_chunks", [6, 20])
def test_sample_latents_keeps_known_latents(pipe: Pipeline, num_chunks: int) -> None:
    g = torch.Generator().manual_seed(0)
    known = torch.rand(1, num_chunks, pipe.normalizer.latent_dim, generator=g) * 2 - 1
    mask = (torch.arange(num_chunks) % 5 < 2).float()
    x = pipe.sample_latents(num_chunks, 3, OPTIONS, g, known=known, mask=mask)
    keep = mask.bool()
    assert torch.equal(x[:, keep], known[:, keep].expand(3, -1, -1))
    assert (x[:, ~keep] - known[:, ~keep]).abs().amax(-1).min() > 1e-3


@pytest.mark.parametrize(("bars", "start", "end", "regenerated"),
                         [(8, 2, 4, [1]), (7, 3, 5, [1, 2]), (8, 0, 1, [0]), (8, 6, 8, [3]), (40, 10, 15, [5, 6, 7])])
def test_infill_keeps_the_other_bars(pipe: Pipeline, make_melody: MakeMelody, bars: int, start: int, end: int,
                                     regenerated: list[int]) -> None:
    melody = make_melody(bars, bars)
    source = chunk_ids(melody)
    results = pipe.infill(melody, start, end, 3, seed=0, options=OPTIONS)
    assert len(results) == 3
    kept = [i for i in range(len(source)) if i not in regenerated]
    for m in results:
        assert len(m) == len(source) * CHUNK_STEPS
        assert np.array_equal(m.chunks()[kept], source[kept])
    assert any(not np.array_equal(m.chunks()[regenerated], source[regenerated]) for m in results)
    assert results == pipe.infill(melody, start, end, 3, seed=0, options=OPTIONS)


def test_music_around_a_given_melody_takes_fewer_dpm_solver_steps(pipe: Pipeline, make_melody: MakeMelody) -> None:
    calls: dict[str, int] = {}

    def counted(name: str):
        return lambda made, planned: calls.__setitem__(name, planned)

    melody = make_melody(3, 8)
    pipe.infill(melody, 2, 4, seed=1, options=SamplingOptions(guidance=0), progress=counted("infill"))
    pipe.continue_melody(melody, 2, seed=1, options=SamplingOptions(guidance=0), progress=counted("continue"))
    pipe.infill(melody, 2, 4, seed=1, options=SamplingOptions(steps=50, guidance=0), progress=counted("asked"))
    pipe.generate(8, 1, seed=1, options=SamplingOptions(guidance=0), progress=counted("generate"))
    assert SamplingOptions().for_given_music().steps == GIVEN_STEPS
    assert SamplingOptions(Sampler.DDIM).for_given_music() == SamplingOptions(Sampler.DDIM)
    assert calls == {"infill": GIVEN_STEPS, "continue": GIVEN_STEPS, "asked": 50, "generate": FAST_STEPS}


@pytest.mark.parametrize(("start", "end"), [(-1, 2), (2, 2), (3, 2), (0, 9), (8, 10)])
def test_infill_bad_bars_raise(pipe: Pipeline, make_melody: MakeMelody, start: int, end: int) -> None:
    with pytest.raises(MelodiffError, match="bars to infill"):
        pipe.infill(make_melody(0, 8), start, end, options=OPTIONS)


def test_infill_bars_several_ranges(pipe: Pipeline, make_melody: MakeMelody) -> None:
    melody = make_melody(12, 12)
    source = chunk_ids(melody)
    results = pipe.infill_bars(melody, [(0, 2), (6, 10)], 2, seed=0, options=OPTIONS)
    for m in results:
        assert np.array_equal(m.chunks()[[1, 2, 5]], source[[1, 2, 5]])
    assert any(not np.array_equal(m.chunks()[[0, 3, 4]], source[[0, 3, 4]]) for m in results)


@pytest.mark.parametrize(("spans", "match"), [([(1, 4)], "do not fall on 2-bar chunks"),
                                              ([(2, 5)], "do not fall on 2-bar chunks"),
                                              ([(0, 2), (8, 10)], "outside the melody's 8 bars"),
                                              ([(4, 4)], "outside"), ([], "no bars")])
def test_infill_bars_bad_ranges_raise(pipe: Pipeline, make_melody: MakeMelody, spans, match: str) -> None:
    with pytest.raises(MelodiffError, match=match):
        pipe.infill_bars(make_melody(0, 8), spans, options=OPTIONS)


@pytest.mark.parametrize(("prompt_bars", "bars"), [(6, 5), (5, 2), (4, 20)])
def test_continue_keeps_the_prompt(pipe: Pipeline, make_melody: MakeMelody, prompt_bars: int, bars: int) -> None:
    prompt = make_melody(prompt_bars, prompt_bars).padded()
    results = pipe.continue_melody(prompt, bars, 2, seed=0, options=OPTIONS)
    for m in results:
        assert len(m) == len(prompt) + -(-bars // 2) * CHUNK_STEPS
        assert np.array_equal(m.ids[:len(prompt)], prompt.ids)
    assert results[0].ids[len(prompt):].tobytes() != results[1].ids[len(prompt):].tobytes()


def test_bridge_keeps_both_ends(pipe: Pipeline, make_melody: MakeMelody) -> None:
    first, second = make_melody(1, 4).padded(), make_melody(2, 5).padded()
    for m in pipe.bridge(first, second, 3, 2, seed=0, options=OPTIONS):
        assert len(m) == len(first) + 2 * CHUNK_STEPS + len(second)
        assert np.array_equal(m.ids[:len(first)], first.ids)
        assert np.array_equal(m.ids[len(m) - len(second):], second.ids)


def test_decode_shapes(pipe: Pipeline, make_melody: MakeMelody) -> None:
    melody = make_melody(3, 6)
    x = pipe.encode(melody, torch.Generator().manual_seed(0))
    assert x.shape == (3, pipe.normalizer.latent_dim)
    melodies = pipe.decode(torch.stack([x, -x]))
    assert len(melodies) == 2 and all(len(m) == 3 * CHUNK_STEPS for m in melodies)


@pytest.mark.parametrize("bad", [0, -1, MAX_BARS + 1, 2.5, "4"])
def test_bad_counts_raise(pipe: Pipeline, make_melody: MakeMelody, bad) -> None:
    melody = make_melody(0, 4)
    calls = [lambda: pipe.generate(bad, options=OPTIONS), lambda: pipe.generate(2, bad, options=OPTIONS),
             lambda: pipe.continue_melody(melody, bad, options=OPTIONS),
             lambda: pipe.continue_melody(melody, 2, bad, options=OPTIONS),
             lambda: pipe.bridge(melody, melody, bad, options=OPTIONS),
             lambda: pipe.infill(melody, 0, 2, bad, options=OPTIONS)]
    for call in calls:
        with pytest.raises(MelodiffError, match="must be an integer"):
            call()


def test_bad_sampler_options_raise(pipe: Pipeline) -> None:
    with pytest.raises(MelodiffError, match="unknown sampler"):
        pipe.generate(2, options=SamplingOptions(sampler="euler"))
    with pytest.raises(MelodiffError, match="sampling steps"):
        pipe.generate(2, options=SamplingOptions(sampler=Sampler.DDIM, steps=0))
    with pytest.raises(MelodiffError, match=r"resample must be in 1\.\.10"):
        SamplingOptions(resample=0)
    with pytest.raises(MelodiffError, match="not dpm-solver"):
        SamplingOptions(sampler="dpm-solver", resample=2)


def test_from_pretrained_needs_a_model_folder(tmp_path) -> None:
    with pytest.raises(MelodiffError, match="not a melodiff model folder"):
        Pipeline.from_pretrained(tmp_path)


@pytest.mark.parametrize("space", ["diffusion", "vae"])
def test_interpolate_between_two_melodies(pipe: Pipeline, make_melody: MakeMelody, space: str) -> None:
    first, second = make_melody(1, 20), make_melody(2, 24)
    results = pipe.interpolate(first, second, 3, seed=0, steps=5, space=space, temperature=1.0)
    assert len(results) == 3 and all(len(m) == 20 * STEPS_PER_BAR for m in results)
    assert results == pipe.interpolate(first, second, 3, seed=0, steps=5, space=space, temperature=1.0)
    assert results[0] != results[2]


def test_interpolate_bad_arguments_raise(pipe: Pipeline, make_melody: MakeMelody) -> None:
    melody = make_melody(0, 4)
    with pytest.raises(MelodiffError, match="interpolation points"):
        pipe.interpolate(melody, melody, 0)
    with pytest.raises(MelodiffError, match="unknown interpolation space"):
        pipe.interpolate(melody, melody, 2, space="pixels")


def test_ddim_inversion_inverts_ddim(pipe: Pipeline) -> None:
    """DDIM run backwards from the inverted noise lands on the start; the error shrinks with the step count."""
    x0 = torch.rand(2, 6, pipe.normalizer.latent_dim, generator=torch.Generator().manual_seed(0)) - 0.5
    errors = []
    for steps in (5, pipe.schedule.num_steps):
        x_T = ddim_invert(pipe._model_fn, pipe.schedule, x0, steps)
        assert (x_T - x0).abs().max() > 0.1
        back = ddim_sample(pipe._model_fn, pipe.schedule, x_T, None, steps=steps, clip=False)
        errors.append((back - x0).abs().max().item())
    assert errors[1] < 0.02 and errors[1] < errors[0]


def test_encode_uses_the_encoder_mean_when_the_model_was_trained_on_means(pipe: Pipeline,
                                                                          make_melody: MakeMelody) -> None:
    melody = make_melody(3, 8)
    sampled = [pipe.encode(melody, torch.Generator().manual_seed(s)) for s in (0, 1)]
    assert not torch.equal(*sampled)  # a fresh z per call
    means = Pipeline(pipe.vae, pipe.denoiser, pipe.schedule, replace(pipe.normalizer, use_mean=True))
    x = [means.encode(melody, torch.Generator().manual_seed(s)) for s in (0, 1)]
    assert torch.equal(*x)
    _, mu, _ = pipe.vae.encode(torch.as_tensor(melody.padded().chunks()))
    assert torch.allclose(x[0], pipe.normalizer.transform(mu))


# ---- forms ---------------------------------------------------------------------------------------------------------
def test_a_written_form_makes_equal_sections_equal(pipe: Pipeline) -> None:
    for form, bars, section_bars in (("AABB", 16, 4), ("ABAB", 40, None), ("AA'BA", 32, None)):
        melodies = pipe.generate(bars, 2, seed=3, options=OPTIONS, form=form, section_bars=section_bars)
        sources = chunk_sources(form, section_bars or bars // len(parse_form(form)))
        for melody in melodies:
            chunks = chunk_ids(melody)
            assert len(melody) == bars * STEPS_PER_BAR
            assert all(np.array_equal(chunks[i], chunks[s]) for i, s in enumerate(sources))
        assert not np.array_equal(chunk_ids(melodies[0]), chunk_ids(melodies[1]))
    assert len(pipe.generate(None, 1, options=OPTIONS, form="AB")[0]) == 16 * STEPS_PER_BAR  # 2 sections of 8


def test_tied_latents_are_one_latent(pipe: Pipeline) -> None:
    sources = torch.tensor(chunk_sources("ABAB", 6))  # 12 chunks: across the window of 8, too
    x, melodies = pipe.sample_melodies(12, 2, OPTIONS, torch.Generator().manual_seed(0), sources)
    assert torch.equal(x[:, 6:9], x[:, 0:3]) and torch.equal(x[:, 9:12], x[:, 3:6])
    assert not torch.equal(x[:, 0:3], x[:, 3:6])
    assert all(np.array_equal(m.chunks()[6:], m.chunks()[:6]) for m in melodies)  # at temperature 1 too


def test_auto_forms_are_drawn_from_the_model_and_free_without_them(pipe: Pipeline) -> None:
    free = pipe.generate(8, 3, seed=5, options=OPTIONS, form="none")
    assert [m.ids.tolist() for m in pipe.generate(8, 3, seed=5, options=OPTIONS, form="auto")] == \
        [m.ids.tolist() for m in free]  # this model has no forms
    model = Pipeline(pipe.vae, pipe.denoiser, pipe.schedule, pipe.normalizer,
                     forms={"8": {"section_bars": 2, "melodies": 60, "forms": {"AABB": 40, "ABCB": 20}}})
    sources = model.form_sources("auto", 8, None, 50, seed=5)
    assert sources.shape == (50, 4) and {tuple(s.tolist()) for s in sources} == {(0, 1, 2, 1), (0, 0, 2, 2)}
    assert (sources[:, 1] == 0).sum() > 20  # about 2 in 3 are AABB: (0, 0, 2, 2)
    for melody, row in zip(model.generate(8, 50, seed=5, options=OPTIONS, form="auto"), sources, strict=True):
        chunks = chunk_ids(melody)
        assert all(np.array_equal(chunks[i], chunks[s]) for i, s in enumerate(row.tolist()))
    with pytest.raises(MelodiffError, match="section bars need a written form"):
        model.generate(8, 1, form="auto", section_bars=2)


@pytest.mark.parametrize(("form", "bars", "section_bars", "message"), [
    ("ABC", 32, None, "3 sections of 8 bars last 24 bars, not 32"), ("", 16, None, "write sections as letters"),
    ("AB", 16, 3, "even number of bars"), ("B'", 16, None, "has not come yet")])
def test_forms_that_do_not_fit(pipe: Pipeline, form: str, bars: int, section_bars, message: str) -> None:
    with pytest.raises(MelodiffError, match=message):
        pipe.generate(bars, 1, form=form, section_bars=section_bars)
