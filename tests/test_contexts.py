"""Tune contexts and key normalisation (data/contexts.py, music/keys.py): what the data records, what a context model
is told in training and sampling, and that a key-normalised model's pieces come out in the keys they are given."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from melodiff.data.contexts import (
    MAX_DENSITY,
    POSITION_CLASSES,
    check_table,
    context_table,
    density_class,
    describe_tunes,
    draw_contexts,
    position_classes,
)
from melodiff.data.normalizer import LatentNormalizer
from melodiff.diffusion.config import preset as diffusion_preset
from melodiff.diffusion.denoiser import TransformerDenoiser, context_classes
from melodiff.diffusion.schedule import NoiseSchedule
from melodiff.diffusion.train import WindowSampler, drop_context
from melodiff.errors import MelodiffError
from melodiff.music.keys import melody_key, shift_to_c, transposed_near
from melodiff.music.melody import STEPS_PER_BAR, Melody, Note
from melodiff.pipeline import Pipeline, SamplingOptions
from melodiff.vae.config import preset as vae_preset
from melodiff.vae.model import MelodyVAE

G_MAJOR = [67, 69, 71, 72, 74, 76, 78, 79]
OPTIONS = SamplingOptions(sampler="ddim", steps=3, temperature=1.0)


def scale_melody(pitches: list[int], bars: int = 4) -> Melody:
    """Quarter notes running up and down ``pitches``, ending on the first (the tonic)."""
    seq = (pitches + pitches[-2:0:-1]) * bars
    notes = [Note(p, 4 * i, 4 * i + 4) for i, p in enumerate([*seq[:4 * bars - 1], pitches[0]])]
    return Melody.from_notes(notes, bars * STEPS_PER_BAR)


def test_shift_to_c_is_the_shortest_move() -> None:
    assert [shift_to_c(t) for t in range(12)] == [0, -1, -2, -3, -4, -5, -6, 5, 4, 3, 2, 1]
    for tonic in range(12):
        assert (tonic + shift_to_c(tonic)) % 12 == 0


def test_a_g_major_tune_is_moved_to_c() -> None:
    tune = scale_melody(G_MAJOR)
    assert melody_key(tune) == (7, False)
    moved = transposed_near(tune, shift_to_c(7))
    assert melody_key(moved) == (0, False)
    assert moved.to_notes()[0].pitch == 72  # up a fourth: the shortest way
    assert melody_key(Melody(np.zeros(16, np.int64))) is None


def test_transposition_keeps_the_pitch_range() -> None:
    high = Melody.from_notes([Note(106, 0, 4)], 16)
    assert transposed_near(high, 5).to_notes()[0].pitch == 99  # an octave lower than asked: 111 is out of range


def test_describe_tunes_and_the_table() -> None:
    tunes = [scale_melody(G_MAJOR), scale_melody([p - 7 for p in G_MAJOR]), scale_melody(G_MAJOR, bars=2)]
    contexts = describe_tunes(tunes, ["music21:b", "music21:a", "music21:b"])
    assert contexts.styles == ("music21:a", "music21:b")
    assert contexts.tonic.tolist() == [7, 0, 7] and contexts.minor.tolist() == [0, 0, 0]
    assert contexts.style.tolist() == [1, 0, 1]
    assert contexts.density.tolist() == [density_class(4)] * 3 == [3] * 3
    table = check_table(context_table(contexts, np.array([True, True, True])))
    assert table["rows"] == [[0, 0, 0, 3, 1], [7, 0, 1, 3, 2]]
    drawn = draw_contexts(table, 3000, seed=0)
    assert drawn.shape == (3000, 4) and abs((drawn[:, 0] == 7).mean() - 2 / 3) < 0.05
    assert (draw_contexts(table, 5, seed=1) == draw_contexts(table, 5, seed=1)).all()
    for bad in ({"styles": ["a"], "rows": []}, {"styles": ["a"], "rows": [[12, 0, 0, 0, 1]]}, {"rows": 1}):
        with pytest.raises(MelodiffError, match="context table"):
            check_table(bad)


def test_density_and_position_classes_are_clipped() -> None:
    assert density_class(0.2) == 0 and density_class(99) == MAX_DENSITY - 1
    start, end = position_classes(np.array([0, 3, 40]), np.array([40, 3, 0]))
    assert start.tolist() == [0, 3, POSITION_CLASSES - 1] and end.tolist() == [POSITION_CLASSES - 1, 3, 0]


def test_training_windows_know_where_they_lie_in_their_tune() -> None:
    seqs = [np.zeros((12, 2), np.float32), np.ones((3, 2), np.float32)]
    tunes = np.array([[7, 0, 1, 5], [2, 1, 0, 9]])
    sampler = WindowSampler(seqs, seq_len=4, contexts=tunes)
    x0, _pad, context = sampler.sample(200, torch.Generator().manual_seed(0))
    short = x0[:, 0, 0] == 1
    assert short.any() and (~short).any()
    assert (context["start"][short] == torch.tensor([0, 1, 2, 3])).all()  # the 3-chunk tune: padded at 3
    assert (context["end"][short][:, :3] == torch.tensor([2, 1, 0])).all()
    assert (context["minor"][short] == 1).all() and (context["density"][~short] == 5).all()
    long = context["start"][~short]
    assert ((context["start"][~short] + context["end"][~short]).clamp(max=11) <= 11).all() and long.max() == 7
    classes = {"start": 8, "end": 8, "minor": 2, "style": 2, "density": 16}
    dropped = drop_context(context, classes, 1.0, torch.Generator().manual_seed(1))
    assert all((dropped[k] == classes[k]).all() for k in classes)
    assert drop_context(context, classes, 0.0, torch.Generator()) is context


def context_pipeline(in_c: bool = True) -> Pipeline:
    vae_config = vae_preset("tiny")[0]
    denoiser_config, schedule_config, _ = diffusion_preset("tiny")
    normalizer = LatentNormalizer(z_size=vae_config.z_size, dims=tuple(range(6)), low=-3.0, high=3.0, in_c=in_c)
    table = {"styles": ["music21:a", "music21:b"], "rows": [[7, 0, 1, 5, 3], [2, 1, 0, 9, 1]]}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        vae = MelodyVAE(vae_config)
        denoiser = TransformerDenoiser(replace(denoiser_config, latent_dim=6, context=True, styles=2))
    return Pipeline(vae, denoiser, NoiseSchedule(schedule_config), normalizer, contexts=table)


def test_a_context_model_needs_its_table() -> None:
    pipe = context_pipeline()
    with pytest.raises(MelodiffError, match="context table"):
        Pipeline(pipe.vae, pipe.denoiser, pipe.schedule, pipe.normalizer)


def test_the_denoiser_is_told_each_window_s_context(monkeypatch) -> None:
    pipe = context_pipeline()
    seen = []
    forward = pipe.denoiser.forward

    def spy(x, level, padding_mask=None, context=None):
        seen.append({k: v.clone() for k, v in context.items()})
        return forward(x, level, padding_mask, context)

    monkeypatch.setattr(pipe.denoiser, "forward", spy)
    tunes = torch.tensor([[7, 0, 1, 5], [2, 1, -1, 9]])
    pipe.sample_latents(12, 2, OPTIONS, torch.Generator().manual_seed(0), tunes=tunes)  # windows 0-8, 4-12
    first, last = seen[0], seen[-1]
    assert first["start"][0].tolist() == [0, 1, 2, 3, 4, 5, 6, 7] and first["end"][0, -1] == 4
    assert last["start"][0, 0] == 4 and last["end"][0].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]
    assert first["minor"].tolist() == [0, 1] and first["density"].tolist() == [5, 9]
    assert first["style"].tolist() == [1, 2]  # -1: "not told", the class count
    seen.clear()
    where = torch.tensor([[10, 30], [0, 8]])  # a window in the middle of a 30-chunk tune, and a whole 8-chunk one
    pipe.sample_latents(8, 2, OPTIONS, torch.Generator().manual_seed(0), tunes=tunes, where=where)
    assert seen[0]["start"][0].tolist() == [7] * 8 and seen[0]["end"][0].tolist() == [7] * 8
    assert seen[0]["end"][1].tolist() == [7, 6, 5, 4, 3, 2, 1, 0]


def test_a_context_model_generates_in_the_drawn_keys() -> None:
    pipe = context_pipeline()
    melodies = pipe.generate(8, num_samples=6, seed=3, options=OPTIONS)
    tunes = pipe.draw_tunes(6, 3)
    assert len(melodies) == 6 and all(len(m) == 8 * STEPS_PER_BAR for m in melodies)
    # the same latents decoded in C, then moved: the pieces are the C versions moved to each drawn tonic
    assert set(tunes[:, 0].tolist()) <= {7, 2}
    again = pipe.generate(8, num_samples=6, seed=3, options=OPTIONS)
    assert all((a.ids == b.ids).all() for a, b in zip(melodies, again, strict=True))


def test_pieces_are_moved_from_c_to_their_tonics() -> None:
    pipe = context_pipeline()
    in_c = [scale_melody([p - 7 for p in G_MAJOR]), scale_melody([p - 7 for p in G_MAJOR])]
    moved = pipe.to_key(in_c, [7, 2])
    assert [melody_key(m) for m in moved] == [(7, False), (2, False)]
    assert moved[0].to_notes()[0].pitch == 60 - 5 and moved[1].to_notes()[0].pitch == 60 + 2
    assert pipe.to_key(in_c, None) is in_c
    plain = context_pipeline(in_c=False)
    assert plain.to_key(in_c, [7, 2]) is in_c


def test_infill_and_continue_keep_the_given_bars_of_a_key_normalised_model() -> None:
    pipe = context_pipeline()
    tune = scale_melody(G_MAJOR, bars=8)
    filled = pipe.infill(tune, 2, 4, num_samples=2, options=OPTIONS)
    for m in filled:
        assert (m.ids[:2 * STEPS_PER_BAR] == tune.ids[:2 * STEPS_PER_BAR]).all()
        assert (m.ids[4 * STEPS_PER_BAR:] == tune.ids[4 * STEPS_PER_BAR:]).all()
    longer = pipe.continue_melody(tune, 4, options=OPTIONS)[0]
    assert (longer.ids[:len(tune)] == tune.ids).all() and len(longer) == len(tune) + 4 * STEPS_PER_BAR
    assert len(pipe.interpolate(tune, scale_melody(G_MAJOR[::-1], bars=8), num=2, steps=3)) == 2


def test_an_unconditioned_call_of_a_context_model_is_not_told_anything() -> None:
    model = context_pipeline().denoiser
    x, level = torch.randn(2, 4, 6), torch.full((2,), 0.5)
    classes = context_classes(model.config)
    nothing = {k: torch.full((2, 4) if k in ("start", "end") else (2,), n) for k, n in classes.items()}
    assert torch.allclose(model(x, level), model(x, level, context=nothing))
    told = dict(nothing, minor=torch.tensor([1, 1]))
    assert not torch.allclose(model(x, level), model(x, level, context=told))
