"""Endings: the parallel mode of ``--key`` (music/keys.py in_key), the last notes of event rows, the VAE decoding
on from given tokens, and Pipeline.cadence, which decodes a piece's last bar again until it ends on its tonic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melodiff.errors import MelodiffError
from melodiff.music.keys import in_key, last_pitch_class, last_pitch_classes, melody_key
from melodiff.music.melody import CHUNK_STEPS, STEPS_PER_BAR, Melody, pitch_to_id
from melodiff.options import MAX_CADENCE, SamplingOptions
from tiny_model import untrained_pipeline


def melody(pitches: list[int], step: int = 4) -> Melody:
    ids = []
    for p in pitches:
        ids += [pitch_to_id(p)] + [0] * (step - 1)
    return Melody(ids)


def test_in_key_changes_the_mode_and_keeps_the_rhythm() -> None:
    tune = melody([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 62, 60])  # C major
    assert melody_key(tune) == (0, False)
    minor = in_key(tune, 4, True)
    assert melody_key(minor) == (4, True)
    assert [p % 12 for p in (n.pitch for n in minor.to_notes())] == [4, 6, 7, 9, 11, 0, 2, 4, 11, 7, 6, 4]
    assert [(n.start, n.end) for n in minor.to_notes()] == [(n.start, n.end) for n in tune.to_notes()]
    back = in_key(minor, 4, False)
    assert melody_key(back) == (4, False)
    assert in_key(Melody([0] * 16), 2, True) == Melody([0] * 16)  # no notes: nothing to change
    low = melody([21, 25, 28, 21])  # A0 major: its third moves down, still inside MIDI 21..108
    assert all(n.pitch >= 21 for n in in_key(low, 9, True).to_notes())


def test_last_pitch_classes() -> None:
    rows = np.array([[pitch_to_id(60), 0, pitch_to_id(67), 1], [0, 0, 0, 0], [pitch_to_id(62), 0, 0, 0]])
    assert last_pitch_classes(rows).tolist() == [7, -1, 2]
    assert last_pitch_class(rows[0]) == 7 and last_pitch_class(rows[1]) == -1


def test_decoding_on_from_given_tokens() -> None:
    vae = untrained_pipeline().vae
    z = torch.randn(3, vae.config.z_size, generator=torch.Generator().manual_seed(0))
    greedy = vae.decode(z)
    assert vae.decode(z, prefix=greedy[:, :16]).equal(greedy)  # greedy from its own first bar: the same chunk
    given = torch.full((3, 5), pitch_to_id(60))
    sampled = vae.decode(z, 1.0, torch.Generator().manual_seed(1), prefix=given)
    assert sampled.shape == greedy.shape and sampled[:, :5].equal(given)
    assert vae.log_likelihood(z, greedy).shape == (3,) and (vae.log_likelihood(z, greedy) <= 0).all()
    # decoding on from a state read once scores what it draws as the teacher-forced decoder does
    state, previous = vae.read(z, given)
    made, logp = vae.decode_from(z, state, previous, CHUNK_STEPS - 5, 1.0, torch.Generator().manual_seed(1))
    assert made.equal(sampled[:, 5:]) and logp.shape == made.shape
    whole = vae.log_likelihood(z, sampled) - vae.log_likelihood(z, sampled, 5)
    assert torch.allclose(logp.sum(1), whole, atol=1e-4)


def test_cadence_ends_pieces_on_their_tonic_and_keeps_the_rest() -> None:
    pipe = untrained_pipeline()
    options = SamplingOptions("ddim", 2, 1.0, cadence=0)
    plain = pipe.generate(8, 24, seed=3, options=options)
    ended = pipe.generate(8, 24, seed=3, options=SamplingOptions("ddim", 2, 1.0, cadence=MAX_CADENCE))
    fixed = {1: 0, 2: 0}  # pieces mended in their last bar, in their last chunk (two bars)
    for before, after in zip(plain, ended, strict=True):
        assert before.ids[:-CHUNK_STEPS].tolist() == after.ids[:-CHUNK_STEPS].tolist()  # only the last chunk
        key = melody_key(after)
        if after != before:
            fixed[1 if before.ids[:-STEPS_PER_BAR].tolist() == after.ids[:-STEPS_PER_BAR].tolist() else 2] += 1
            assert key is not None and last_pitch_class(after.ids) == key[0]  # the tonic of the piece as it is now
    assert fixed[1] > 0 and fixed[2] > 0


def test_cadence_with_a_piece_ending_mid_chunk() -> None:
    pipe = untrained_pipeline()
    plain = pipe.generate(7, 16, seed=5, options=SamplingOptions("ddim", 2, 1.0, cadence=0))
    ended = pipe.generate(7, 16, seed=5, options=SamplingOptions("ddim", 2, 1.0, cadence=64))
    assert all(len(m) == 7 * STEPS_PER_BAR for m in ended)
    changed = [(b, a) for b, a in zip(plain, ended, strict=True) if a != b]
    assert changed and all(b.ids[:6 * STEPS_PER_BAR].tolist() == a.ids[:6 * STEPS_PER_BAR].tolist()
                           for b, a in changed)
    assert all(last_pitch_class(a.ids) == melody_key(a)[0] for _, a in changed)
    assert len(ended[0]) % CHUNK_STEPS != 0


def test_cadence_is_checked() -> None:
    with pytest.raises(MelodiffError, match="cadence"):
        SamplingOptions(cadence=MAX_CADENCE + 1)


def test_cadence_keeps_a_form_s_equal_sections_equal() -> None:
    pipe = untrained_pipeline()
    options = SamplingOptions("ddim", 2, 1.0, cadence=MAX_CADENCE)
    plain = pipe.generate(8, 12, seed=4, options=SamplingOptions("ddim", 2, 1.0, cadence=0), form="AABB")
    ended = pipe.generate(8, 12, seed=4, options=options, form="AABB")
    assert any(a != b for a, b in zip(plain, ended, strict=True))
    for m in ended:
        chunks = m.chunks()
        assert (chunks[0] == chunks[1]).all() and (chunks[2] == chunks[3]).all()
