"""Sheet music in 3/4 and 6/8 (music/notation.py): bars of the melody's meter, values that show its beats, the time
signature in MusicXML and ABC, and both read back (read_melody) as the same melody in the same meter; other written
meters read into their model meter, and meters outside every model refused by name."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

import pytest

from melodiff.music import notation
from melodiff.music.melody import Melody, Note
from melodiff.music.meter import FILE_METERS, FOUR_FOUR, SIX_EIGHT, THREE_FOUR, Meter
from melodiff.music.notation import NotationError

WRITTEN_VALUES = {1, 2, 3, 4, 6, 8, 12, 16}
# a waltz and a jig with what notation must get right in their meters: ties over bar lines, notes across beats and
# off them, a whole bar of rest, a last bar left part empty
WALTZ = [Note(62, 0, 4), Note(64, 4, 8), Note(66, 8, 16), Note(67, 16, 18), Note(69, 18, 24), Note(71, 24, 33),
         Note(74, 34, 36), Note(73, 48, 50)]
JIG = [Note(62, 0, 4), Note(64, 4, 6), Note(66, 6, 12), Note(67, 12, 20), Note(69, 20, 22), Note(71, 22, 26),
       Note(74, 26, 36), Note(73, 49, 52)]


def in_meter(meter: Meter, seed: int, bars: int, make_melody: Callable[[int, int], Melody]) -> Melody:
    """A random melody of exactly ``bars`` bars of ``meter`` (a 4/4 one cut to length, its ids made canonical)."""
    steps = bars * meter.steps_per_bar
    cut = Melody(make_melody(seed, bars).ids[:steps], meter)
    return Melody.from_notes(cut.to_notes(), steps, meter)


def events(bar: list[notation.Event]) -> list[tuple]:
    return [(e.start, e.length, e.pitch, e.tie_start, e.tie_stop) for e in bar]


@pytest.mark.parametrize("meter", [THREE_FOUR, SIX_EIGHT])
def test_split_in_bar_shows_the_beats_of_the_meter(meter: Meter) -> None:
    bar = meter.steps_per_bar
    division = 4 if meter is THREE_FOUR else 2  # off the beat (3/4) or the eighth (6/8), a piece runs to the next
    for start in range(bar):
        for end in range(start + 1, bar + 1):
            for rest in (False, True):
                pieces = notation.split_in_bar(start, end, rest, meter)
                assert pieces[0][0] == start and sum(n for _, n in pieces) == end - start
                for (s, n), (t, _) in itertools.pairwise(pieces):
                    assert s + n == t
                for s, n in pieces:
                    assert n in WRITTEN_VALUES and s + n <= bar
                    assert s % division == 0 or (s + n - 1) // division == s // division
                    if meter is SIX_EIGHT:  # the second beat shows unless the piece is the whole bar
                        assert not s < 6 < s + n or (s, n) == (0, 12)
                    if rest:  # a rest is the whole bar or inside one beat
                        assert (s, n) == (0, bar) or (s + n - 1) // (bar // len(meter.beats)) == s // (
                            bar // len(meter.beats))


def test_split_in_bar_known_answers() -> None:
    assert notation.split_in_bar(0, 12, meter=THREE_FOUR) == [(0, 12)]  # a dotted half
    assert notation.split_in_bar(4, 12, meter=THREE_FOUR) == [(4, 8)]  # a half on beat 2: 3/4 has no middle to hide
    assert notation.split_in_bar(0, 10, meter=THREE_FOUR) == [(0, 8), (8, 2)]
    assert notation.split_in_bar(0, 8, rest=True, meter=THREE_FOUR) == [(0, 4), (4, 4)]  # no half rests in 3/4
    assert notation.split_in_bar(0, 8, meter=SIX_EIGHT) == [(0, 6), (6, 2)]  # a dotted quarter tied over the beat
    assert notation.split_in_bar(0, 10, meter=SIX_EIGHT) == [(0, 6), (6, 4)]
    assert notation.split_in_bar(2, 12, meter=SIX_EIGHT) == [(2, 4), (6, 6)]
    assert notation.split_in_bar(1, 6, meter=SIX_EIGHT) == [(1, 1), (2, 4)]  # a 16th to the eighth, then the beat
    assert notation.split_in_bar(0, 10, rest=True, meter=SIX_EIGHT) == [(0, 6), (6, 4)]  # a dotted quarter rest
    assert notation.split_in_bar(0, 16) == notation.split_in_bar(0, 16, meter=FOUR_FOUR) == [(0, 16)]
    with pytest.raises(ValueError, match="one bar of 3/4"):
        notation.split_in_bar(0, 16, meter=THREE_FOUR)


def test_a_note_over_a_3_4_bar_line_is_tied() -> None:
    melody = Melody.from_notes([Note(60, 8, 16)], 24, THREE_FOUR)
    first, second = notation.bars(melody)
    assert events(first) == [(0, 4, None, False, False), (4, 4, None, False, False), (8, 4, 60, True, False)]
    assert events(second) == [(0, 4, 60, False, True), (4, 4, None, False, False), (8, 4, None, False, False)]
    assert notation.to_abc(melody, key=(0, False)).splitlines()[7:] == ["z2 z2 C2- | C2 z2 z2 ]"]
    musicxml = notation.to_musicxml(melody, key=(0, False))
    assert musicxml.count('<tie type="start"') == musicxml.count('<tie type="stop"') == 1


def test_abc_of_a_waltz_and_a_jig() -> None:
    waltz = notation.to_abc(Melody.from_notes(WALTZ, 60, THREE_FOUR), "waltz", (11, True), tempo_qpm=90)
    assert waltz.splitlines() == ["X:1", "T:waltz", "C:melodiff", "M:3/4", "L:1/8", "Q:1/4=90", "K:Bm",
                                  "D2 E2 F2- | F2 GA- A2 | B4- B/z/d | z6 |", "cz z2 z2 ]"]
    jig = notation.to_abc(Melody.from_notes(JIG, 60, SIX_EIGHT), "jig", (2, False))
    # the notes of a dotted-quarter beat beamed together; a value over the beat tied at it; off the eighth a 16th
    # tied to an eighth; a dotted quarter rest for a whole beat
    assert jig.splitlines()[3] == "M:6/8"
    assert jig.splitlines()[7:] == ["D2E F3 | G3- GAB- | Bd2- d3 | z6 |", "z/c/-cz z3 ]"]


def test_musicxml_time_signature_and_beams() -> None:
    for meter, beats, beat_type in ((THREE_FOUR, 3, 4), (SIX_EIGHT, 6, 8)):
        eighths = Melody.from_notes([Note(60 + i, 2 * i, 2 * i + 2) for i in range(6)], 12, meter)
        text = notation.to_musicxml(eighths, key=(0, False))
        assert f"<beats>{beats}</beats>" in text and f"<beat-type>{beat_type}</beat-type>" in text
        beams = re.findall(r'<beam number="1">(\w+)</beam>', text)
        per_beat = ["begin", "end"] if meter is THREE_FOUR else ["begin", "continue", "end"]
        assert beams == per_beat * len(meter.beats)  # 3/4 beamed by quarters, 6/8 by dotted quarters
    whole_rest = notation.to_musicxml(Melody([0] * 12, SIX_EIGHT))
    assert '<rest measure="yes" />' in whole_rest and "<duration>" in whole_rest


@pytest.mark.parametrize("meter", [FOUR_FOUR, THREE_FOUR, SIX_EIGHT])
def test_read_melody_gives_back_the_melody_in_its_meter(meter: Meter,
                                                        make_melody: Callable[[int, int], Melody]) -> None:
    tune = {THREE_FOUR: WALTZ, SIX_EIGHT: JIG, FOUR_FOUR: WALTZ}[meter]
    melodies = [Melody.from_notes(tune, 5 * meter.steps_per_bar, meter)]
    melodies += [in_meter(meter, seed, 6, make_melody) for seed in range(4)]
    for melody in melodies:
        for fmt, text in (("abc", notation.to_abc(melody, "t")), ("musicxml", notation.to_musicxml(melody, "t"))):
            back = notation.read_melody(text, fmt)
            assert back == melody and back.meter == meter, fmt
            assert notation.read_notes(text, fmt) == melody.to_notes()


@pytest.mark.parametrize(("text", "meter", "notes"), [
    ("M:6/8\nL:1/8\nK:C\nC|DEF G3|A6|]", SIX_EIGHT, [Note(60, 10, 12), Note(62, 12, 14)]),  # a pickup padded
    ("M:12/8\nL:1/8\nK:C\nDEF G3 ABc d3|]", SIX_EIGHT, [Note(62, 0, 2), Note(64, 2, 4)]),  # one bar split in two
    ("M:3/2\nL:1/8\nK:C\nC4 D4 E4|]", THREE_FOUR, [Note(60, 0, 4), Note(62, 4, 8)]),  # halved
    ("M:2/4\nL:1/8\nK:C\nC|DEFG|A4|c4|]", FOUR_FOUR, [Note(60, 14, 16), Note(62, 16, 18)]),  # bars paired
    ("L:1/8\nK:C\nCDEF G4|]", FOUR_FOUR, [Note(60, 0, 2), Note(62, 2, 4)]),  # no meter: 4/4
])
def test_read_melody_maps_written_meters_onto_model_meters(text: str, meter: Meter, notes: list[Note]) -> None:
    melody = notation.read_melody("X:1\n" + text + "\n", "abc")
    assert melody.meter == meter and len(melody) % meter.steps_per_bar == 0 and melody.to_notes()[:2] == notes


def test_read_melody_refuses_meters_outside_every_model() -> None:
    for odd in ("5/8", "7/8", "9/8"):
        with pytest.raises(NotationError, match=f"in {odd}; melodiff reads melodies in {', '.join(FILE_METERS)}"):
            notation.read_melody(f"X:1\nM:{odd}\nL:1/8\nK:C\nCDEFGAB|]\n", "abc")
    with pytest.raises(NotationError, match="changes meter"):
        notation.read_melody("X:1\nM:3/4\nL:1/8\nK:C\nCDEFGA|M:4/4\nCDEFGABc|]\n", "abc")


def test_engraving_a_jig() -> None:
    melody = Melody.from_notes(JIG, 60, SIX_EIGHT)
    (page,) = notation.engrave(notation.to_musicxml(melody, "jig"), highlight=[(1, 2)])
    measures = re.findall(r'<g id="[^"]*" class="measure[^"]*"', page)
    assert len(measures) == 5 and [("highlight" in m) for m in measures] == [False, True, False, False, False]
