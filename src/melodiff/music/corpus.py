"""The music21 corpus (shipped inside the music21 wheel) as named sources: music21:folk, music21:classical, ..."""

from __future__ import annotations

from dataclasses import dataclass

from melodiff.errors import MelodiffError
from melodiff.music.meter import METERS, read_as
from melodiff.music.scores import parse_score_file

FOLK = ("essenFolksong", "oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
NOT_MUSIC = ("demos", "theoryExercises", "leadSheet")  # examples and exercises, not repertoire
EXCLUDED_FILES = ("essenFolksong/test0.abc", "essenFolksong/test1.abc", "essenFolksong/testd.abc",
                  "essenFolksong/teste.abc")  # Essen's test files repeat tunes of the real collections


@dataclass(frozen=True)
class CorpusWork:
    """One tune/piece of the corpus: ``path`` relative to the corpus root, ``number`` within an ABC opus or None."""

    path: str
    number: int | None
    meters: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"music21:{self.path}" + (f"#{self.number}" if self.number is not None else "")

    @property
    def collection(self) -> str:
        return self.path.split("/")[0]


def _collections(name: str, available: set[str]) -> set[str]:
    if name == "folk":
        return set(FOLK)
    if name == "classical":
        return available - set(FOLK) - set(NOT_MUSIC)
    if name == "all":
        return available - set(NOT_MUSIC)
    if name in available:
        return {name}
    raise MelodiffError(f"unknown music21 source {name!r}: use folk, classical, all or one of {sorted(available)}")


def corpus_works(name: str) -> list[CorpusWork]:
    """All pieces of a named music21 source, from the corpus metadata bundle (no parsing)."""
    from music21 import corpus

    bundle = corpus.corpora.CoreCorpus().metadataBundle
    entries = list(bundle)
    available = {str(e.sourcePath).split("/")[0] for e in entries}
    wanted = _collections(name, available)
    works = []
    for e in entries:
        path = str(e.sourcePath)
        if path.split("/")[0] not in wanted or path in EXCLUDED_FILES:
            continue
        meters = tuple(getattr(e.metadata, "timeSignatures", None) or ())
        number = int(e.number) if e.number not in (None, "") else None
        works.append(CorpusWork(path, number, meters))
    works.sort(key=lambda w: (w.path, w.number or 0))
    return works


def skip_reason(work: CorpusWork, meters: tuple[str, ...] = tuple(METERS)) -> str | None:
    """Why a piece can be dropped from its metadata alone (no meter of the model ``meters`` anywhere), else None."""
    if not work.meters:
        return "meter none"
    if not any(read_as(m, meters) for m in work.meters):
        return f"meter {work.meters[0]}"
    return None


def parse_work(work: CorpusWork):
    """The music21 score of one corpus piece, parsed from its source file (extract.parse_score_file)."""
    from music21 import corpus

    return parse_score_file(corpus.getWork(work.path), work.number)
