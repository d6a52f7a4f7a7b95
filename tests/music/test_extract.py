"""extract_file on small real files (MIDI via symusic, ABC, MusicXML via music21) against hand-computed ids."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from symusic import Note as MidiNote
from symusic import Score, TimeSignature, Track

from melodiff.errors import MelodiffError
from melodiff.music.corpus import corpus_works, parse_work
from melodiff.music.extract import extract_file, extract_score, split_at_rest_chunks
from melodiff.music.melody import STEPS_PER_QUARTER, Melody, Note
from melodiff.music.scores import has_repeats, parse_score_file

TPQ = 480
STEP = TPQ // 4  # ticks per 16th-note step

# (tick, duration in ticks, pitch): C4+E4 together (E4 kept), G4, A4 off the grid, MIDI 110 (dropped), C5 whole note
LEAD = [(0, 480, 60), (0, 480, 64), (480, 240, 67), (1000, 230, 69), (1440, 480, 110), (1920, 1920, 72)]
LEAD_IDS = [45, 0, 0, 0, 48, 0, 1, 0, 50, 0, 1, 0, 0, 0, 0, 0, 53] + [0] * 15

ABC = """X:1
T:Two four
M:2/4
L:1/8
K:C
CDEF|GABc|cBAG|FEDC|CDEF|GABc|cBAG|FEDC|

X:2
T:Six eight
M:6/8
L:1/8
K:G
GAB cde|dcB AGF|GAB cde|dcB AGF|
"""


def write_score_midi(path: Path, notes: list[tuple[int, int, int]], meters: list[tuple[int, int, int]],
                     drums: bool = False) -> Path:
    score = Score(TPQ)
    for tick, num, den in meters:
        score.time_signatures.append(TimeSignature(tick, num, den))
    lead = Track(name="lead", program=0)
    for tick, duration, pitch in notes:
        lead.notes.append(MidiNote(tick, duration, pitch, 100))
    score.tracks.append(lead)
    if drums:
        kit = Track(name="kit", program=0, is_drum=True)
        for beat in range(16):
            kit.notes.append(MidiNote(beat * TPQ, STEP, 36, 100))
        score.tracks.append(kit)
    path.write_bytes(score.dumps_midi())
    return path


def test_midi_4_4_with_chord_range_and_drums(tmp_path: Path) -> None:
    path = write_score_midi(tmp_path / "lead.mid", LEAD, [(0, 4, 4)], drums=True)
    ((piece, ex),) = extract_file(path, min_bars=2)
    assert piece == str(path)
    (m,) = ex.melodies
    assert m.melody.ids.tolist() == LEAD_IDS
    assert (m.part, m.meter, m.key) == ("lead", "4/4", "")
    assert ex.dropped == {"note under a higher simultaneous note": 1, "note out of pitch range": 1, "drum track": 1}
    assert (ex.onsets, ex.onsets_off_grid) == (5, 1)  # every in-range note counts, A4 at tick 1000 is off the grid


def test_midi_without_time_signature_is_4_4_and_min_bars_applies(tmp_path: Path) -> None:
    path = write_score_midi(tmp_path / "plain.midi", LEAD, [])
    ((_, ex),) = extract_file(path, min_bars=2)
    assert [m.melody.ids.tolist() for m in ex.melodies] == [LEAD_IDS]
    ((_, ex),) = extract_file(path, min_bars=4)
    assert ex.melodies == [] and ex.dropped["too short"] == 1


def test_midi_3_4_is_kept_in_bars_of_12_steps(tmp_path: Path) -> None:
    path = write_score_midi(tmp_path / "waltz.mid", LEAD, [(0, 3, 4)])
    ((_, ex),) = extract_file(path, min_bars=2)
    (m,) = ex.melodies
    assert (m.meter, m.melody.meter.name, m.melody.steps_per_bar) == ("3/4", "3/4", 12)
    # the notes of LEAD on the same 16th grid in one 2-bar chunk of 24 steps; the whole note C5 (steps 16-32) is cut
    # where the next chunk, which has no onset, is dropped
    assert m.melody.ids.tolist() == LEAD_IDS[:17] + [0] * 7


def test_midi_in_a_meter_outside_the_models_is_dropped(tmp_path: Path) -> None:
    path = write_score_midi(tmp_path / "odd.mid", LEAD, [(0, 7, 8)])
    ((_, ex),) = extract_file(path, min_bars=2)
    assert ex.melodies == [] and ex.dropped == {"meter 7/8": 1}
    ((_, ex),) = extract_file(write_score_midi(tmp_path / "waltz.mid", LEAD, [(0, 3, 4)]), min_bars=2,
                              meters=("4/4",))
    assert ex.melodies == [] and ex.dropped == {"meter 3/4": 1}  # a meter not asked for


def test_midi_meter_change_cuts_segments_in_their_meters(tmp_path: Path) -> None:
    # two bars of 4/4 (LEAD), then 3/4 from tick 3840 with more notes: a 4/4 melody and a 3/4 one; 4/4 alone if asked
    notes = [*LEAD, (3840, 480, 62), (4320, 480, 64)]
    path = write_score_midi(tmp_path / "change.mid", notes, [(0, 4, 4), (3840, 3, 4)])
    ((_, ex),) = extract_file(path, min_bars=1)
    assert [(m.meter, m.melody.meter.name) for m in ex.melodies] == [("4/4", "4/4"), ("3/4", "3/4")]
    assert ex.melodies[0].melody.ids.tolist() == LEAD_IDS
    assert ex.melodies[1].melody.ids.tolist() == [43, 0, 0, 0, 45, 0, 0, 0, 1] + [0] * 15  # D4, E4, rest
    ((_, ex),) = extract_file(path, min_bars=1, meters=("4/4",))
    assert [m.melody.ids.tolist() for m in ex.melodies] == [LEAD_IDS]
    assert ex.dropped["meter 3/4"] == 1


def test_abc_2_4_pairs_bars_and_6_8_has_bars_of_12_steps(tmp_path: Path) -> None:
    path = tmp_path / "tunes.abc"
    path.write_text(ABC)
    (first, ex1), (second, ex2) = extract_file(path, min_bars=2)
    assert (first, second) == (f"{path}#0", f"{path}#1")
    pitches = [60, 62, 64, 65, 67, 69, 71, 72, 72, 71, 69, 67, 65, 64, 62, 60] * 2  # eighth notes = 2 steps
    expected = Melody.from_notes([Note(p, 2 * i, 2 * i + 2) for i, p in enumerate(pitches)])
    (m,) = ex1.melodies
    assert m.melody == expected and len(m.melody) == 64  # 8 bars of 2/4 = 4 bars of 16 steps
    assert (m.meter, m.key) == ("2/4", "C major")
    (jig,) = ex2.melodies
    assert (jig.meter, jig.melody.meter.name, jig.key) == ("6/8", "6/8", "G major")
    jig_pitches = [67, 69, 71, 72, 74, 76, 74, 72, 71, 69, 67, 66] * 2  # G A B c d e | d c B A G F (F# in G)
    assert jig.melody == Melody.from_notes([Note(p, 2 * i, 2 * i + 2) for i, p in enumerate(jig_pitches)],
                                           meter=jig.melody.meter)
    assert len(jig.melody) == 48  # 4 bars of 12 steps


def test_musicxml_pickup_is_padded_to_the_bar_line(tmp_path: Path) -> None:
    from music21 import key, meter, note, stream

    part = stream.Part()
    part.partName = "Flute"
    pickup = stream.Measure(number=0)
    pickup.append([meter.TimeSignature("4/4"), key.Key("G"), note.Note("D4", quarterLength=1)])
    pickup.paddingLeft = 3.0
    bar1 = stream.Measure(number=1)
    bar1.append([note.Note(p, quarterLength=1) for p in ("G4", "A4", "B4", "C5")])
    bar2 = stream.Measure(number=2)
    bar2.append([note.Note("D5", quarterLength=2), note.Rest(quarterLength=1), note.Note("B4", quarterLength=0.5),
                 note.Note("G4", quarterLength=0.5)])
    part.append([pickup, bar1, bar2])
    score = stream.Score([part])
    path = Path(score.write("musicxml", fp=tmp_path / "pickup.musicxml"))
    ((_, ex),) = extract_file(path, min_bars=2)
    (m,) = ex.melodies
    # D4 on the last beat before the first full bar (step 12), G4 A4 B4 C5, D5 (half), rest, B4 G4 (eighths)
    expected = [0] * 12 + [43, 0, 0, 0] + [48, 0, 0, 0, 50, 0, 0, 0, 52, 0, 0, 0, 53, 0, 0, 0]
    expected += [55, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 52, 0, 48, 0, 1] + [0] * 15  # padded to whole 2-bar chunks
    assert m.melody.ids.tolist() == expected
    assert (m.part, m.meter, m.key) == ("Flute", "4/4", "G major")


def test_split_at_rest_chunks_drops_a_held_note_off() -> None:
    # C4 held for 3 bars leaves chunk 1 without an onset; the next piece starts clean (no leading NOTE_OFF)
    m = Melody.from_notes([Note(60, 0, 64), *[Note(62, s, s + 4) for s in range(68, 128, 4)]], 128)
    pieces, too_short = split_at_rest_chunks(m, min_bars=2)
    assert too_short == 0 and [len(p) for p in pieces] == [32, 64]
    assert pieces[1] == Melody.from_notes([Note(62, s - 64, s - 60) for s in range(68, 128, 4)], 64)


@pytest.mark.parametrize("name, content, message", [
    ("corrupt.mid", np.random.default_rng(0).integers(0, 256, 200, dtype=np.uint8).tobytes(), "not a readable MIDI"),
    ("empty.mid", b"", "empty"),
    ("tune.txt", b"X:1\n", "unsupported file type .txt"),
    ("broken.musicxml", b"this is <not xml", "could not parse"),
])
def test_bad_files_raise_one_line_errors(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(MelodiffError, match=message) as info:
        extract_file(path)
    assert "\n" not in str(info.value)


def test_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(MelodiffError, match="no such file"):
        extract_file(tmp_path / "nothing.mid")


# ---- repeats, ties and parsing ---------------------------------------------------------------------------------------
def oneills(number: int):
    (work,) = [w for w in corpus_works("oneills1850") if w.path == "oneills1850/0001-0050.abc" and w.number == number]
    return work


def test_corpus_tune_with_repeats_is_expanded() -> None:
    work = oneills(34)  # a 4/4 reel: 12 bars written, 16 played (two sections repeated)
    assert has_repeats(parse_work(work))
    (expanded,) = extract_score(parse_work(work), min_bars=2).melodies
    (written,) = extract_score(parse_work(work), min_bars=2, expand_repeats=False).melodies
    assert len(written.melody) < 64 * STEPS_PER_QUARTER <= len(expanded.melody)
    # The played notes are the written ones with the repeated sections again: same pitches, more of them.
    played, notated = expanded.melody.to_notes(), written.melody.to_notes()
    assert len(played) > len(notated) and {n.pitch for n in played} == {n.pitch for n in notated}


def write_abc(body: str, path: Path | None = None) -> Path:
    """A one-tune ABC file in 4/4 with quarter-note unit length."""
    if path is None:
        import tempfile

        path = Path(tempfile.mkdtemp()) / "tune.abc"
    path.write_text(f"X:1\nT:test\nM:4/4\nL:1/4\nK:C\n{body}\n")
    return path


def test_tune_without_repeat_marks_is_not_expanded() -> None:
    score = parse_score_file(write_abc("CDEF|GABc|c4|]"))
    assert not has_repeats(score)
    (m,) = extract_score(score, min_bars=2).melodies
    assert [(n.pitch, n.start, n.end) for n in m.melody.to_notes()] == [
        (60, 0, 4), (62, 4, 8), (64, 8, 12), (65, 12, 16), (67, 16, 20), (69, 20, 24), (71, 24, 28), (72, 28, 32),
        (72, 32, 48)]


def test_ties_are_merged() -> None:
    (m,) = extract_score(parse_score_file(write_abc("CDEF|GABc-|c2BA|G4|]")), min_bars=2).melodies
    assert [(n.pitch, n.start, n.end) for n in m.melody.to_notes()][-4:] == [
        (72, 28, 40), (71, 40, 44), (69, 44, 48), (67, 48, 64)]


def test_parsing_restores_music21_beaming_even_when_threads_overlap(tmp_path: Path) -> None:
    from music21 import stream

    original = stream.Stream.makeBeams
    path = write_abc("CDEF|GABc|c4|]", tmp_path / "tune.abc")
    with ThreadPoolExecutor(4) as pool:
        scores = list(pool.map(lambda _: parse_score_file(path), range(8)))
    assert stream.Stream.makeBeams is original
    assert all(len(s.parts[0].getElementsByClass("Measure")) == 3 for s in scores)


def test_repeat_expansion_that_takes_too_long_keeps_the_written_tune(monkeypatch: pytest.MonkeyPatch) -> None:
    import signal

    from melodiff.music import scores

    monkeypatch.setattr(scores, "REPEAT_EXPANSION_SECONDS", 1e-4)
    handler = signal.getsignal(signal.SIGALRM)
    work = oneills(34)
    timed_out = extract_score(parse_work(work), min_bars=2)
    written = extract_score(parse_work(work), min_bars=2, expand_repeats=False)
    assert timed_out.dropped == {"repeats not expanded in time (kept unexpanded)": 1}
    assert [m.melody for m in timed_out.melodies] == [m.melody for m in written.melodies]
    assert signal.getsignal(signal.SIGALRM) == handler  # the alarm handler is put back


def test_implausibly_long_repeat_expansion_keeps_the_written_tune(monkeypatch: pytest.MonkeyPatch) -> None:
    from melodiff.music import scores

    monkeypatch.setattr(scores, "MAX_EXPANSION", 1.2)  # the reel's repeats make it 1.33 times as long
    work = oneills(34)
    capped = extract_score(parse_work(work), min_bars=2)
    written = extract_score(parse_work(work), min_bars=2, expand_repeats=False)
    assert capped.dropped == {"repeats expand to over 1.2x the written length (kept unexpanded)": 1}
    assert [m.melody for m in capped.melodies] == [m.melody for m in written.melodies]
