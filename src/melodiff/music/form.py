"""Tune form: sections named by letters, as musicians write it ("AABB", "ABAC", "AA'BA").

A form is a string of section letters A-Z, each optionally followed by ``'``: a varied repeat of that letter's first
section, which keeps its first half and ends differently. Every section lasts ``section_bars`` bars (even: the
models work in 2-bar chunks). Equal letters are equal music: ``chunk_sources`` says, for every 2-bar chunk of the
piece, which earlier chunk it repeats (itself when it is new music), and the pipeline gives the repeats the latents
of what they repeat (Pipeline.generate(form=...)). ``form_of`` reads the form of a real melody the same way; a
model keeps the forms of its training melodies (``choose_forms``, forms.json) and draws one for each piece it makes
with form "auto", so that its pieces repeat themselves where the data's do."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

import numpy as np

from melodiff.errors import MelodiffError
from melodiff.music.melody import BARS_PER_CHUNK, Melody

FREE = "none"  # no form: the paper's free sampling
AUTO = "auto"  # each piece the form of a random training melody of its length (choose_forms, auto_sources)
MAX_SECTIONS = 64
_TOKEN = re.compile(r"[A-Z]'?")


def parse_form(form: str) -> list[tuple[str, bool]]:
    """"AA'BB" -> [("A", False), ("A", True), ("B", False), ("B", False)]; MelodiffError for anything else."""
    text = form.replace(" ", "").upper()
    tokens = _TOKEN.findall(text)
    if not text or "".join(tokens) != text:
        raise MelodiffError(f"form {form!r}: write sections as letters A-Z, a varied repeat with ' (e.g. AABB, "
                            f"AA'BA), or {FREE!r} for no form")
    if len(tokens) > MAX_SECTIONS:
        raise MelodiffError(f"form {form!r}: at most {MAX_SECTIONS} sections")
    seen: set[str] = set()
    for token in tokens:
        if token.endswith("'") and token[0] not in seen:
            raise MelodiffError(f"form {form!r}: {token} varies section {token[0]}, which has not come yet")
        seen.add(token[0])
    return [(t[0], t.endswith("'")) for t in tokens]


def check_section_bars(section_bars: int) -> None:
    if not isinstance(section_bars, int) or section_bars < BARS_PER_CHUNK or section_bars % BARS_PER_CHUNK:
        raise MelodiffError(f"sections must last a positive even number of bars (whole 2-bar chunks), got "
                            f"{section_bars}")


def chunk_sources(form: str, section_bars: int) -> list[int]:
    """For every 2-bar chunk of a piece in ``form``: the index of the earlier chunk it repeats, or its own index
    when it is new music. A varied repeat (``A'``) repeats the first half of its section (rounded down to whole
    chunks: sections of 2 bars have no half to keep, and refuse it) and is new after it."""
    check_section_bars(section_bars)
    per_section = section_bars // BARS_PER_CHUNK
    parsed = parse_form(form)
    if per_section < 2 and any(varied for _, varied in parsed):
        raise MelodiffError(f"form {form}: a varied repeat (') keeps the first half of a section, which needs "
                            f"sections of at least {2 * BARS_PER_CHUNK} bars, not {section_bars}")
    first: dict[str, int] = {}  # letter -> its first section's first chunk
    sources = []
    for i, (letter, varied) in enumerate(parsed):
        start = i * per_section
        origin = first.setdefault(letter, start)
        tied = 0 if origin == start else per_section // 2 if varied else per_section
        sources += [origin + k if k < tied else start + k for k in range(per_section)]
    return sources


def fit_form(form: str | None, num_bars: int | None, section_bars: int | None) -> tuple[str | None, int]:
    """(form, section bars) for a piece of ``num_bars`` bars (None: the form's own length); (None, 0) for no form
    (None or "none"). Sections default to the length divided among them, else 8 bars. MelodiffError when the
    sections do not divide the length, or are not whole 2-bar chunks."""
    if form is None or form.strip().lower() == FREE:
        if section_bars is not None and form is not None:
            raise MelodiffError("section bars need a form: give one (e.g. AABB) with them")
        return None, 0
    sections = len(parse_form(form))
    if section_bars is None:
        section_bars = num_bars // sections if num_bars is not None and num_bars % sections == 0 else 8
    check_section_bars(section_bars)
    if num_bars is not None and num_bars != sections * section_bars:
        raise MelodiffError(f"form {form}: {sections} sections of {section_bars} bars last {sections * section_bars} "
                            f"bars, not {num_bars}")
    return form, section_bars


def written_length(form: str | None, section_bars: int | None) -> int | None:
    """The length in bars of a written form (its sections times ``section_bars``, default 8); None for "auto",
    "none" or no form, whose length comes from elsewhere."""
    if form is None or form.strip().lower() in (AUTO, FREE):
        return None
    return form_bars(*fit_form(form, None, section_bars))


def form_bars(form: str, section_bars: int) -> int:
    check_section_bars(section_bars)
    return len(parse_form(form)) * section_bars


def form_of(melody: Melody, section_bars: int, sections: int) -> str | None:
    """The form of the first ``sections`` (at most 26) sections of ``section_bars`` bars of a real melody (None if
    it is shorter): a section equal to an earlier one gets its letter, one whose first half (whole 2-bar chunks, so
    sections of 4 bars or more) equals an earlier section's first half but not the rest that letter with ', any other
    the next new letter: the forms that :func:`chunk_sources` can make."""
    steps = section_bars * melody.steps_per_bar
    if len(melody) < steps * sections or sections > 26:
        return None
    cells = [melody.ids[i * steps:(i + 1) * steps] for i in range(sections)]
    half = section_bars // (2 * BARS_PER_CHUNK) * melody.chunk_steps  # whole chunks; 0: no variations
    letters: list[str] = []
    firsts: list[tuple[str, int]] = []  # (letter, section index) of each new letter
    for i, cell in enumerate(cells):
        same = next((letter for letter, j in firsts if (cells[j] == cell).all()), None)
        varied = next((letter for letter, j in firsts if half and (cells[j][:half] == cell[:half]).all()), None)
        if same is not None:
            letters.append(same)
        elif varied is not None:
            letters.append(varied + "'")
        else:
            letter = chr(ord("A") + len(firsts))
            firsts.append((letter, i))
            letters.append(letter)
    return "".join(letters)


def form_statistics(melodies: Iterable[Melody], section_bars: int, sections: int) -> Counter:
    """How often each form occurs among the melodies at least ``sections`` sections long."""
    return Counter(f for f in (form_of(m, section_bars, sections) for m in melodies) if f is not None)


SECTION_BARS = (2, 4, 8)  # the section lengths a model's forms are read at: the finest with enough melodies
MIN_MELODIES = 50  # a length needs at least this many training melodies for forms of its own


def choose_forms(melodies: list[Melody], lengths: Iterable[int] = (8, 16, 32, 64, 128)) -> dict[str, dict]:
    """The forms a model draws from for each length (``Pipeline.generate(form="auto")``): the forms of the first
    ``bars`` bars of its training melodies at the finest section length of SECTION_BARS for which at least
    MIN_MELODIES melodies are long enough and the form has at most 26 sections. A length without enough melodies is
    left out (free sampling). -> {"32": {"section_bars": 2, "melodies": 620, "forms": {"ABCD…": count, …}}}."""
    chosen = {}
    for bars in lengths:
        for section_bars in SECTION_BARS:
            sections = bars // section_bars
            if bars % section_bars or sections > 26:
                continue
            counts = form_statistics(melodies, section_bars, sections)
            total = sum(counts.values())
            if total >= MIN_MELODIES:
                chosen[str(bars)] = {"section_bars": section_bars, "melodies": total,
                                     "forms": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))}
            break
    return chosen


def auto_sources(forms: dict[str, dict], num_bars: int, num: int, seed: int) -> np.ndarray | None:
    """(num, chunks) chunk sources (as :func:`chunk_sources`) of ``num`` pieces of ``num_bars`` bars in form "auto",
    from a model's forms (:func:`choose_forms`): each piece the form of a training melody of its length, drawn with
    ``seed``. A length the model has no forms for (longer, or between two it has) is made of consecutive parts of the
    longest lengths that fit, each in a form of its own with letters of its own (64 bars: two 32-bar parts; 24: 16 +
    8), the form of the first part drawn with ``seed``, of the n-th with (``seed``, n); bars no part fits are free
    (their own sources). None when no part fits (free sampling)."""
    parts = auto_parts(forms, num_bars)
    if not parts:
        return None
    sources = np.tile(np.arange(-(-num_bars // BARS_PER_CHUNK)), (num, 1))
    start = 0
    for part, bars in enumerate(parts):
        entry = forms[str(bars)]
        part_seed = seed if part == 0 else np.random.SeedSequence([seed, part])
        drawn = [chunk_sources(f, int(entry["section_bars"])) for f in draw_forms(entry, num, part_seed)]
        sources[:, start:start + bars // BARS_PER_CHUNK] = np.array(drawn) + start
        start += bars // BARS_PER_CHUNK
    return sources


def auto_parts(forms: dict[str, dict], num_bars: int) -> list[int]:
    """The lengths in bars of the consecutive parts of a piece of ``num_bars`` bars in form "auto": the longest
    lengths of ``forms`` that still fit, in turn (64 bars with forms of 8, 16 and 32: [32, 32]; 40: [32, 8]); the
    bars left after them are left free. [] when no length fits."""
    lengths = sorted((int(bars) for bars in forms), reverse=True)
    parts: list[int] = []
    while (fit := next((bars for bars in lengths if bars <= num_bars - sum(parts)), None)) is not None:
        parts.append(fit)
    return parts


def draw_forms(entry: dict, num: int, seed: int | np.random.SeedSequence) -> list[str]:
    """``num`` forms drawn (with ``seed``) in proportion to how often they occur in a :func:`choose_forms` entry."""
    forms = list(entry["forms"])
    counts = np.array([entry["forms"][f] for f in forms], dtype=np.float64)
    picks = np.random.default_rng(seed).choice(len(forms), size=num, p=counts / counts.sum())
    return [forms[i] for i in picks]
