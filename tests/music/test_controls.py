"""Controls (music/controls.py): the words a musician writes, checked once; the range applied to melodies; and the
pipeline obeying (or refusing) them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from melodiff.data.contexts import density_class, draw_contexts, style_index
from melodiff.errors import MelodiffError
from melodiff.music.controls import Controls, fit_range, key_name, parse_key, parse_pitch, parse_range
from melodiff.music.melody import Melody, Note
from melodiff.options import SamplingOptions


@pytest.mark.parametrize("text, key", [("C", (0, False)), ("F#", (6, False)), ("Bb", (10, False)), ("Em", (4, True)),
                                       ("F#m", (6, True)), ("D minor", (2, True)), ("eb major", (3, False)),
                                       ("Abmin", (8, True)), ("B", (11, False))])
def test_keys(text: str, key: tuple[int, bool]) -> None:
    assert parse_key(text) == key
    assert parse_key(key_name(*key)) == key


@pytest.mark.parametrize("text", ["H", "", "C##", "Emaj7", "minor"])
def test_unknown_keys(text: str) -> None:
    with pytest.raises(MelodiffError, match="unknown key"):
        parse_key(text)


def test_pitches_and_ranges() -> None:
    assert parse_pitch("C4") == 60 and parse_pitch("A0") == 21 and parse_pitch("C8") == 108
    assert parse_pitch("Bb3") == 58 and parse_pitch("f#5") == 78 and parse_pitch("62") == 62
    assert parse_range("D5-B6") == (74, 95) and parse_range("62-83") == (62, 83) and parse_range("C4..G4") == (60, 67)
    for bad, message in [("C4-D4", "at least a fifth"), ("10-80", "outside MIDI"), ("C4", "LOW-HIGH"),
                         ("C9-D9", "outside MIDI"), ("Q4-B5", "unknown pitch"), ("B5-D4", "at least a fifth")]:
        with pytest.raises(MelodiffError, match=message):
            parse_range(bad)


def test_density_and_the_controls_record() -> None:
    assert not Controls() and Controls(density=4.0)
    assert Controls.parse("Em", "D4-B5", 4, "irish") == Controls((4, True), (62, 83), 4.0, "irish")
    for density in (0.5, 0, 17, float("nan")):
        with pytest.raises(MelodiffError, match="density"):
            Controls(density=density)


def melody(pitches: list[int]) -> Melody:
    return Melody.from_notes([Note(p, 4 * i, 4 * i + 4) for i, p in enumerate(pitches)], 4 * len(pitches))


def test_fit_range_moves_the_piece_by_octaves_then_folds_what_is_left() -> None:
    tune = melody([48, 50, 52, 55, 60, 64])
    assert [n.pitch for n in fit_range(tune, 60, 79, steps=(0, 12, 24)).to_notes()] == [60, 62, 64, 67, 72, 76]
    folded = fit_range(tune, 55, 67)  # no octave shift allowed: each note outside is moved by octaves
    assert [n.pitch for n in folded.to_notes()] == [60, 62, 64, 55, 60, 64]
    narrow = fit_range(melody([60, 61, 66, 70]), 62, 69)  # under an octave: 61 -> 73 overshoots, takes the edge
    assert all(62 <= n.pitch <= 69 for n in narrow.to_notes())
    rests = Melody(np.zeros(16, np.int64))
    assert fit_range(rests, 60, 72) is rests


def test_constrained_draws_keep_the_asked_fields() -> None:
    table = {"styles": ["music21:a", "music21:oneills1850"],
             "rows": [[7, 0, 1, 5, 30], [2, 1, 0, 9, 10], [9, 1, 1, 3, 5]]}
    drawn = draw_contexts(table, 500, 0, {"minor": 1, "style": 1})
    assert (drawn[:, 1] == 1).all() and (drawn[:, 2] == 1).all() and set(drawn[:, 0]) == {9}
    unseen = draw_contexts(table, 50, 0, {"tonic": 4, "density": density_class(12)})  # no such tune: set anyway
    assert (unseen[:, 0] == 4).all() and (unseen[:, 3] == 11).all()
    assert style_index(table["styles"], "ONEILLS1850") == 1 == style_index(table["styles"], "music21:oneills1850")
    with pytest.raises(MelodiffError, match="this model knows a, oneills1850"):
        style_index(table["styles"], "irish")


def test_the_pipeline_obeys_controls() -> None:
    from test_contexts import context_pipeline

    pipe = context_pipeline()
    options = SamplingOptions(sampler="ddim", steps=2, temperature=1.0)
    assert pipe.controls == ("key", "range", "density", "style")
    tunes = pipe.draw_tunes(20, 0, Controls(key=(4, True), density=6.0, style="a"))
    assert tunes.tolist() == [[4, 1, 0, 5]] * 20
    melodies = pipe.generate(4, 3, seed=1, options=options, controls=Controls(pitch_range=(62, 74)))
    assert all(62 <= n.pitch <= 74 for m in melodies for n in m.to_notes())
    tune = melody([62, 64, 66, 67, 69, 71, 73, 74] * 4)
    filled = pipe.infill(tune, 2, 4, 2, options=options, controls=Controls(pitch_range=(60, 67), style="a"))
    assert all(60 <= n.pitch <= 67 for m in filled for n in m.to_notes() if 32 <= n.start < 64)
    with pytest.raises(MelodiffError, match="key of music made around a given melody"):
        pipe.continue_melody(tune, 2, options=options, controls=Controls(key=(0, False)))


def test_a_model_without_contexts_takes_only_the_range() -> None:
    from tiny_model import untrained_pipeline

    pipe = untrained_pipeline()
    assert pipe.controls == ("key", "range")
    with pytest.raises(MelodiffError, match=r"no style control.*its controls: key, range"):
        pipe.generate(4, controls=Controls(key=(0, False), style="a"))
    melodies = pipe.generate(4, 2, options=SamplingOptions("ddim", 2, 1.0), controls=Controls(pitch_range=(60, 72)))
    assert all(60 <= n.pitch <= 72 for m in melodies for n in m.to_notes())
    assert torch.is_tensor(pipe.tune(melodies[0]))
