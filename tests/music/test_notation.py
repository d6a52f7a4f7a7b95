"""Sheet music (music/notation.py): spelling in a key, the bar layout, MusicXML and ABC read back by music21 equal to
the melody's notes (hand-made melodies in all 24 keys, random ones and ones the shipped model makes), and engraving."""

from __future__ import annotations

import concurrent.futures
import itertools
import re
from collections.abc import Callable

import pytest

from melodiff.music import notation
from melodiff.music.melody import STEPS_PER_BAR, Melody, Note
from melodiff.music.notation import NotationError, Spelling, spell

WRITTEN_VALUES = {1, 2, 3, 4, 6, 8, 12, 16}  # 16th, 8th, dotted 8th, quarter, dotted quarter, half, dotted half, whole
# a tune with what notation must get right: a pickup rest, ties over bar lines, notes across the middle of a bar and
# off the beat, chromatic notes, a whole bar of rest, a last bar left part empty
TUNE = [Note(62, 2, 4), Note(66, 4, 10), Note(69, 10, 20), Note(68, 20, 21), Note(69, 21, 23), Note(73, 23, 32),
        Note(74, 32, 47), Note(60, 64, 66), Note(61, 66, 67), Note(63, 67, 72), Note(70, 72, 80)]


def tune_in(tonic: int) -> Melody:
    """TUNE (in D major) moved to ``tonic``, kept between MIDI 55 and 83."""
    shift = (tonic - 2) % 12
    shift -= 12 if shift > 5 else 0
    return Melody.from_notes([Note(n.pitch + shift, n.start, n.end) for n in TUNE], 88)


def name(s: Spelling) -> str:
    return s.letter + {-2: "bb", -1: "b", 0: "", 1: "#", 2: "##"}[s.alter] + str(s.octave)


@pytest.mark.parametrize(("key", "pitches", "names"), [
    ((0, False), [60, 61, 63, 66, 68, 70, 72], ["C4", "C#4", "Eb4", "F#4", "G#4", "Bb4", "C5"]),
    ((2, False), [66, 73, 72, 65], ["F#4", "C#5", "C5", "F4"]),
    ((5, False), [70, 71, 64], ["Bb4", "B4", "E4"]),
    ((3, False), [63, 68, 70, 62, 64], ["Eb4", "Ab4", "Bb4", "D4", "E4"]),
    ((9, True), [68, 66, 72, 70], ["G#4", "F#4", "C5", "Bb4"]),
    ((2, True), [61, 70, 59], ["C#4", "Bb4", "B3"]),
    ((8, True), [67, 68, 71, 60], ["F##4", "G#4", "B4", "B#3"]),  # G# minor: a double-sharp leading note, B# = C4
    ((1, False), [61, 71, 72], ["Db4", "Cb5", "C5"]),  # Db major: B is C flat, in the octave above
])
def test_spelling_in_a_key(key: tuple[int, bool], pitches: list[int], names: list[str]) -> None:
    assert [name(spell(p, key)) for p in pitches] == names


def test_every_key_has_a_signature_of_at_most_six_accidentals_naming_its_tonic() -> None:
    for tonic in range(12):
        for minor in (False, True):
            fifths = notation.key_fifths((tonic, minor))
            letter, alter = notation.tonic_name((tonic, minor))
            assert -6 <= fifths <= 6 and abs(alter) <= 1
            assert (notation._NATURAL_PC[letter] + alter) % 12 == tonic
            alters = notation.signature_alters((tonic, minor))
            assert sum(alters.values()) == fifths and sum(map(abs, alters.values())) == abs(fifths)
    assert notation.tonic_name((3, False)) == ("E", -1) and notation.tonic_name((1, True)) == ("C", 1)


def test_split_in_bar_gives_written_values_on_the_beat() -> None:
    for start in range(STEPS_PER_BAR):
        for end in range(start + 1, STEPS_PER_BAR + 1):
            for rest in (False, True):
                pieces = notation.split_in_bar(start, end, rest)
                assert pieces[0][0] == start and sum(n for _, n in pieces) == end - start
                for (s, n), (t, _) in itertools.pairwise(pieces):
                    assert s + n == t
                for s, n in pieces:
                    assert n in WRITTEN_VALUES
                    assert s % 4 == 0 or (s + n - 1) // 4 == s // 4  # off the beat: only up to the next beat
                    assert s == 0 or not s < 8 < s + n  # the middle of the bar shows, unless the piece starts the bar
    assert notation.split_in_bar(0, 16) == [(0, 16)] and notation.split_in_bar(4, 12) == [(4, 4), (8, 4)]
    assert notation.split_in_bar(1, 10) == [(1, 3), (4, 4), (8, 2)]
    assert notation.split_in_bar(0, 12, rest=True) == [(0, 8), (8, 4)]


def test_bars_tie_over_bar_lines_and_fill_the_last_bar() -> None:
    written = notation.bars(Melody.from_notes([Note(60, 12, 20)], 24))
    assert [(e.start, e.length, e.pitch, e.tie_start, e.tie_stop) for e in written[0]] == [
        (0, 8, None, False, False), (8, 4, None, False, False), (12, 4, 60, True, False)]
    assert [(e.start, e.length, e.pitch, e.tie_start, e.tie_stop) for e in written[1]] == [
        (0, 4, 60, False, True), (4, 4, None, False, False), (8, 8, None, False, False)]
    with pytest.raises(NotationError, match="empty"):
        notation.bars(Melody([]))


def assert_round_trip(melody: Melody, key: tuple[int, bool] | None = None) -> None:
    notes = melody.to_notes()
    assert notation.read_notes(notation.to_musicxml(melody, "t", key), "musicxml") == notes
    assert notation.read_notes(notation.to_abc(melody, "t", key), "abc") == notes


@pytest.mark.parametrize("minor", [False, True])
def test_round_trip_in_all_keys(minor: bool) -> None:
    for tonic in range(12):
        assert_round_trip(tune_in(tonic), (tonic, minor))


def test_round_trip_of_random_melodies(make_melody: Callable[[int, int], Melody]) -> None:
    for seed in range(8):
        assert_round_trip(make_melody(seed, 8))


def test_round_trip_of_melodies_from_the_shipped_model() -> None:
    """A sample of what the CI checks for 200 melodies in benchmarks/notation_round_trip.py."""
    from melodiff.pipeline import Pipeline, SamplingOptions

    melodies = Pipeline.from_pretrained().generate(16, 6, seed=0, options=SamplingOptions(sampler="ddim", steps=10))
    for melody in melodies:
        assert melody.num_notes
        assert_round_trip(melody)


def test_abc_headers_and_accidentals() -> None:
    abc = notation.to_abc(tune_in(2), "melodiff generate, seed 3, #1", (2, False), tempo_qpm=96)
    head = abc.splitlines()[:7]
    assert head == ["X:1", "T:melodiff generate, seed 3, #1", "C:melodiff", "M:4/4", "L:1/8", "Q:1/4=96", "K:D"]
    body = abc.splitlines()[7:]
    # beats apart, ties over the middle of the bar and over bar lines, no sign where the key gives one (C#)
    assert body[0] == "zD F2- FA- A2- | A2 ^G/Ac/- c4 | d6- d3/2z/ | z8 |"
    # signs off the key, and back on it after one; the tied D# repeats its sign; the last bar filled with rest
    assert body[1] == "=C^C/^D/- ^D2 ^A4 | z8 ]"
    assert notation.to_abc(tune_in(0), key=(9, True)).splitlines()[6] == "K:Am"
    assert notation.to_abc(tune_in(0), key=(10, True)).splitlines()[6] == "K:Bbm"


def test_musicxml_is_version_4_with_key_title_and_ties() -> None:
    text = notation.to_musicxml(tune_in(3), "a title\nwith a break", (3, False), tempo_qpm=100)
    assert '<score-partwise version="4.0">' in text and "<work-title>a title with a break</work-title>" in text
    assert "<fifths>-3</fifths>" in text and "<mode>major</mode>" in text and 'per-minute>100<' in text
    assert text.count('<tie type="start"') == text.count('<tie type="stop"') > 0
    assert text == notation.to_musicxml(tune_in(3), "a title\nwith a break", (3, False), tempo_qpm=100)
    low = Melody.from_notes([Note(40, 0, 16), Note(43, 16, 32)])
    assert "<sign>F</sign>" in notation.to_musicxml(low)  # bass clef for a low melody


def test_the_found_key_is_used_by_default() -> None:
    text = notation.to_abc(tune_in(7))  # G major
    assert "K:G" in text.splitlines()


def test_engrave_svg_with_highlighted_bars() -> None:
    melody = tune_in(2)
    (page,) = notation.engrave(notation.to_musicxml(melody, "engraved"), highlight=[(1, 3)])
    assert page.startswith("<svg") and "engraved" in page
    measures = re.findall(r'<g id="[^"]*" class="measure[^"]*"', page)
    assert len(measures) == 6 and [("highlight" in m) for m in measures] == [False, True, True, False, False, False]
    assert page == notation.engrave(notation.to_musicxml(melody, "engraved"), highlight=[(1, 3)])[0]


def test_engraving_in_another_thread() -> None:
    """The studio engraves in worker threads; Verovio's default font path holds only in the thread importing it."""
    musicxml = notation.to_musicxml(tune_in(5), "threads")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        assert pool.submit(notation.engrave, musicxml).result() == notation.engrave(musicxml)


def test_bad_input_is_a_notation_error() -> None:
    with pytest.raises(NotationError, match="too many to engrave"):
        notation.engrave("<measure " * (notation.MAX_SHEET_BARS + 1))
    with pytest.raises(NotationError, match="could not read"):
        notation.read_notes("<score-partwise><part", "musicxml")
    with pytest.raises(NotationError, match="tonic"):
        notation.to_abc(tune_in(0), key=(12, False))
    assert notation.to_abc(Melody([0] * 16)).splitlines()[-1] == "z8 ]"  # rests only: C major, a whole-bar rest
