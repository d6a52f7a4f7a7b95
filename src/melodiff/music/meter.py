"""Meters: how many 16th-note steps a bar holds and where its beats fall (docs/DEVIATIONS.md, "Meters").

A model meter is one a melody is stored, modelled and written in: 4/4 (16 steps a bar), 3/4 and 6/8 (12 steps a
bar). A model's meters share one bar length, so one 2-bar VAE chunk has one length: the duple family (4/4: 32-step
chunks) and the triple family (3/4 and 6/8: 24-step chunks). The meters files are written in map onto them
(FILE_METERS): 2/2 and 2/4 onto 4/4 (two 2/4 bars paired into one), 4/2 onto 4/4 with durations halved; 3/2 onto 3/4
halved; 3/8 onto 6/8 (two bars paired), 12/8 onto 6/8 (one bar split in two), 6/4 onto 6/8 halved. Any other meter
(5/8, 7/8, 9/8, ...) is outside every model.
"""

from __future__ import annotations

from dataclasses import dataclass

from melodiff.errors import MelodiffError, MeterOutsideModel

STEPS_PER_QUARTER = 4
BARS_PER_CHUNK = 2


@dataclass(frozen=True)
class Meter:
    """``name`` as written ("6/8"), ``steps_per_bar`` 16th-note steps in a bar, ``beats`` the steps where its beats
    start (the first is the downbeat): 4/4 (0, 4, 8, 12), 3/4 (0, 4, 8), 6/8 (0, 6)."""

    name: str
    steps_per_bar: int
    beats: tuple[int, ...]

    @property
    def chunk_steps(self) -> int:
        """Steps in one 2-bar VAE chunk."""
        return self.steps_per_bar * BARS_PER_CHUNK

    @property
    def numerator(self) -> int:
        return int(self.name.split("/")[0])

    @property
    def denominator(self) -> int:
        return int(self.name.split("/")[1])

    def __str__(self) -> str:
        return self.name


FOUR_FOUR = Meter("4/4", 16, (0, 4, 8, 12))
THREE_FOUR = Meter("3/4", 12, (0, 4, 8))
SIX_EIGHT = Meter("6/8", 12, (0, 6))
METERS = {m.name: m for m in (FOUR_FOUR, THREE_FOUR, SIX_EIGHT)}  # the model meters

# a written meter -> (its model meter, factor from its quarter notes to the model's): every one has a bar of the
# model meter's length, half of it (paired) or twice it (split)
FILE_METERS: dict[str, tuple[Meter, float]] = {
    "4/4": (FOUR_FOUR, 1.0), "2/2": (FOUR_FOUR, 1.0), "2/4": (FOUR_FOUR, 1.0), "4/2": (FOUR_FOUR, 0.5),
    "3/4": (THREE_FOUR, 1.0), "3/2": (THREE_FOUR, 0.5),
    "6/8": (SIX_EIGHT, 1.0), "3/8": (SIX_EIGHT, 1.0), "12/8": (SIX_EIGHT, 1.0), "6/4": (SIX_EIGHT, 0.5),
}


def meter(name: str | Meter, known: tuple[str, ...] | None = None) -> Meter:
    """The model meter named ``name`` (a Meter passes through); MelodiffError naming the meters ``known`` (default:
    every model meter) for any other."""
    names = tuple(METERS) if known is None else known
    key = name.name if isinstance(name, Meter) else str(name).strip()
    if key not in names:
        raise MeterOutsideModel(f"meter {key!r} is outside the model: it makes {', '.join(names)}")
    return METERS[key]


def model_meter(written: str) -> Meter:
    """The model meter a melody written in ``written`` is stored in (FILE_METERS; a dataset record's meter)."""
    if written not in FILE_METERS:
        raise MelodiffError(f"meter {written!r} is outside every model: melodiff reads "
                            f"{', '.join(FILE_METERS)}")
    return FILE_METERS[written][0]


def read_as(written: str, meters: tuple[str, ...] | list[str]) -> bool:
    """Whether a melody written in ``written`` is stored in one of the model ``meters`` (FILE_METERS)."""
    return written in FILE_METERS and FILE_METERS[written][0].name in meters


def family(meters: tuple[str, ...] | list[str]) -> int:
    """The one bar length (steps) that ``meters`` share; MelodiffError if they do not share one."""
    lengths = {meter(m).steps_per_bar for m in meters}
    if len(lengths) != 1:
        raise MelodiffError(f"meters {', '.join(meters)} do not share one bar length: one model takes the meters of "
                            "one family (4/4; or 3/4 and 6/8)")
    return lengths.pop()
