"""Reading scores with music21, fast: parsing without music21's pickle cache and automatic beaming, and repeat
expansion only where a score has repeats, with a time limit. Measured on the music21 folk corpus (docs/DATA.md):
these took `melodiff prepare music21:folk` from 868 s to 264 s on 2 cores, with the same melodies (but for the one
tune whose expansion hit the limit)."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

_beaming_lock = threading.Lock()
_beaming_off = 0  # how many parses (threads) currently run with beaming switched off
_make_beams = None  # music21's Stream.makeBeams while it is switched off


@contextlib.contextmanager
def _without_beaming() -> Iterator[None]:
    """Switch off music21's automatic beaming while parsing: its ABC reader beams every part, which took half the
    parse time, and beams are notation that melodiff never reads (pitches, onsets and durations are unchanged).
    Thread-safe: the original method is back once the last concurrent parse has finished."""
    global _beaming_off, _make_beams
    from music21 import stream

    with _beaming_lock:
        if _beaming_off == 0:
            _make_beams, stream.Stream.makeBeams = stream.Stream.makeBeams, _no_beams
        _beaming_off += 1
    try:
        yield
    finally:
        with _beaming_lock:
            _beaming_off -= 1
            if _beaming_off == 0:
                stream.Stream.makeBeams, _make_beams = _make_beams, None


def _no_beams(self, *, inPlace: bool = False, **_):
    return None if inPlace else self


def parse_score_file(path: str | Path, number: int | None = None):
    """A score file (or tune ``number`` of an ABC collection) parsed by music21, without music21's pickle cache
    (writing and re-reading a pickle of every piece made parsing 1.5 times slower and filled the temp folder) and
    without automatic beaming (see :func:`_without_beaming`)."""
    from music21 import converter

    with _without_beaming():
        return converter.parseFile(path, number=number, forceSource=True, storePickle=False)


REPEAT_EXPANSION_SECONDS = 10.0  # music21 took 347 s on one Aird's air with 10 repeated sections; most take < 0.5 s


class _TookTooLong(BaseException):  # a BaseException, so that music21's own `except Exception` cannot swallow it
    pass


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Raise _TookTooLong in the block after ``seconds`` (SIGALRM). Only in a process's main thread, where signals
    are delivered (prepare's workers); elsewhere (the studio's request threads) the block runs unlimited."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def alarm(signum, frame):
        raise _TookTooLong

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


MAX_EXPANSION = 4.0  # music21 turned a 40-bar Aird's air into 8,184 bars; real repeats at most double or triple


def expand_score_repeats(score) -> tuple:
    """(the score with its repeats written out, None), or (the score as written, why not) when music21 cannot
    expand them, takes longer than ``REPEAT_EXPANSION_SECONDS``, or makes it more than ``MAX_EXPANSION`` times as
    long as written (a misread repeat structure)."""
    try:
        with _time_limit(REPEAT_EXPANSION_SECONDS):
            expanded = score.expandRepeats()
        if expanded.highestTime > MAX_EXPANSION * max(score.highestTime, 1e-9):
            return score, f"repeats expand to over {MAX_EXPANSION:g}x the written length (kept unexpanded)"
        return expanded, None
    except _TookTooLong:
        return score, "repeats not expanded in time (kept unexpanded)"
    except Exception:  # music21 raises several exception types on malformed repeats
        return score, "repeats not expandable (kept unexpanded)"


def has_repeats(score) -> bool:
    """True if the score has repeat barlines, repeat expressions (D.C., segno, ...) or volta brackets."""
    from music21 import bar, repeat, spanner

    marks = (bar.Repeat, repeat.RepeatExpression, spanner.RepeatBracket)
    return next(iter(score.recurse().getElementsByClass(marks)), None) is not None
