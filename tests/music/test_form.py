"""Tune forms (music/form.py): parsing, which chunks repeat which, fitting a length, reading real melodies' forms,
a model's forms and drawing from them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from melodiff.errors import MelodiffError
from melodiff.music.form import (
    MIN_MELODIES,
    auto_sources,
    choose_forms,
    chunk_sources,
    draw_forms,
    fit_form,
    form_of,
    form_statistics,
    parse_form,
)
from melodiff.music.melody import STEPS_PER_BAR, Melody, Note


def test_parse_forms() -> None:
    assert parse_form("AA'BA") == [("A", False), ("A", True), ("B", False), ("A", False)]
    assert parse_form("aabb") == parse_form("A A B B")
    for bad in ("", "A1", "A''", "B'A", "AB-C", "A" * 65):
        with pytest.raises(MelodiffError):
            parse_form(bad)


def test_chunk_sources() -> None:
    assert chunk_sources("AABB", 4) == [0, 1, 0, 1, 4, 5, 4, 5]
    assert chunk_sources("AA'", 8) == [0, 1, 2, 3, 0, 1, 6, 7]  # A': the first half of A, then new
    assert chunk_sources("ABA", 2) == [0, 1, 0]
    assert chunk_sources("AA'", 6) == [0, 1, 2, 0, 4, 5]  # half of 3 chunks: 1 kept
    with pytest.raises(MelodiffError, match="needs sections of at least 4 bars"):
        chunk_sources("AA'", 2)  # half a 2-bar section is no whole chunk
    with pytest.raises(MelodiffError, match="even number of bars"):
        chunk_sources("AB", 3)


def test_fit_form_to_a_length() -> None:
    assert fit_form("AABB", None, None) == ("AABB", 8)
    assert fit_form("AABB", 64, None) == ("AABB", 16)
    assert fit_form("AABB", 16, 4) == ("AABB", 4)
    assert fit_form("none", 32, None) == (None, 0) and fit_form(None, 32, None) == (None, 0)
    with pytest.raises(MelodiffError, match="3 sections of 8 bars last 24 bars, not 32"):
        fit_form("ABC", 32, None)
    with pytest.raises(MelodiffError, match="last 32 bars, not 64"):
        fit_form("AABB", 64, 8)
    with pytest.raises(MelodiffError, match="section bars need a form"):
        fit_form("none", 32, 4)


def bars_of(pitch: int, bars: int = 2) -> np.ndarray:
    return Melody.from_notes([Note(pitch + i % 3, 4 * i, 4 * i + 4) for i in range(4 * bars)]).ids


def test_form_of_real_melodies() -> None:
    a, b, c = bars_of(60, 4), bars_of(67, 4), bars_of(72, 4)
    varied = a.copy()
    varied[2 * STEPS_PER_BAR:] = bars_of(50)  # the first half (2 bars) of A, then something else
    tune = Melody(np.concatenate([a, a, b, varied, c]))
    assert form_of(tune, 4, 5) == "AABA'C"
    assert form_of(tune, 4, 6) is None  # too short
    assert form_of(tune, 2, 10) == "ABABCDAEFG"  # 2-bar sections have no half to vary: the varied one is new
    assert form_of(tune, 8, 2) == "AB"


def test_model_forms_and_drawing() -> None:
    a, b = bars_of(60), bars_of(67)
    tunes = [Melody(np.concatenate([a, a, b, b]))] * 40 + [Melody(np.concatenate([a, b, bars_of(70), b]))] * 20
    assert form_statistics(tunes, 2, 4) == Counter({"AABB": 40, "ABCB": 20})
    forms = choose_forms(tunes, lengths=(8, 16))
    assert set(forms) == {"8"} and forms["8"]["section_bars"] == 2 and forms["8"]["melodies"] == 60
    assert forms["8"]["forms"] == {"AABB": 40, "ABCB": 20}
    assert choose_forms(tunes[:MIN_MELODIES - 1], lengths=(8,)) == {}
    drawn = Counter(draw_forms(forms["8"], 3000, seed=0))
    assert abs(drawn["AABB"] / 3000 - 2 / 3) < 0.03
    assert draw_forms(forms["8"], 5, seed=1) == draw_forms(forms["8"], 5, seed=1)


def test_auto_sources_make_a_longer_piece_of_parts_in_forms_of_their_own() -> None:
    forms = {"8": {"section_bars": 2, "melodies": 60, "forms": {"AABB": 1}},
             "16": {"section_bars": 4, "melodies": 50, "forms": {"ABAC": 1}}}
    assert auto_sources(forms, 16, 2, seed=0).tolist() == [[0, 1, 2, 3, 0, 1, 6, 7]] * 2  # its own length: as drawn
    assert auto_sources(forms, 8, 1, seed=0).tolist() == [[0, 0, 2, 2]]
    # 34 bars: 16 + 16 + 2 left free; each part's letters its own (the second A is not the first part's A)
    assert auto_sources(forms, 34, 1, seed=0).tolist() == [[0, 1, 2, 3, 0, 1, 6, 7, 8, 9, 10, 11, 8, 9, 14, 15, 16]]
    # 24 bars: 16 + 8
    assert auto_sources(forms, 24, 1, seed=0).tolist() == [[0, 1, 2, 3, 0, 1, 6, 7, 8, 8, 10, 10]]
    assert auto_sources(forms, 6, 3, seed=0) is None  # shorter than every form: free sampling
    mixed = {"8": {"section_bars": 2, "melodies": 60, "forms": {"AABB": 1, "ABCD": 1}}}
    parts = auto_sources(mixed, 16, 200, seed=3)  # each part drawn on its own
    assert {(tuple(r[:4]), tuple(r[4:] - 4)) for r in parts.tolist() for r in [np.array(r)]} == \
        {(a, b) for a in ((0, 0, 2, 2), (0, 1, 2, 3)) for b in ((0, 0, 2, 2), (0, 1, 2, 3))}
