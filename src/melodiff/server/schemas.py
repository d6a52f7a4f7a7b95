"""The studio's JSON API: request and response models (pydantic) and the limits every request is checked against.

Units: bars (of the melody's meter: 16 steps in 4/4, 12 in 3/4 and 6/8), steps (16th notes). Bar spans are half-open
``[start_bar, end_bar)``, 0-based; the models work in 2-bar chunks, so an infilled span is rounded outward to whole
chunks (``regenerated`` says what changed)."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from melodiff.music.controls import MAX_DENSITY, Controls
from melodiff.music.form import AUTO, MAX_SECTIONS
from melodiff.music.limits import MAX_SEED
from melodiff.music.meter import METERS
from melodiff.options import (
    CADENCE,
    DEFAULT_GUIDANCE,
    MAX_CADENCE,
    MAX_GUIDANCE,
    MAX_RESAMPLE,
    MAX_SAMPLING_STEPS,
    MAX_TEMPERATURE,
    Sampler,
    SamplingOptions,
)

MAX_BARS = 64  # bars one request may add (generate: the length; continue / bridge: the new bars)
MAX_TOTAL_BARS = 128  # the longest melody a request may produce or take as input (uploads are cut to this)
MAX_SAMPLES = 8  # variations per request (the library allows more: a request should be quick)
MELODY_ID = r"^[0-9a-f]{32}$"
MAX_ABC_CHARS = 200_000  # pasted ABC text (a tune is a few hundred characters; a book of tunes a few hundred KB)
MAX_CONTROL_CHARS = 64  # a key, range or style name as written ("F# minor", "D4-B5", "music21:oneills1850")

MelodyId = Annotated[str, Field(pattern=MELODY_ID, description="a melody id returned by this server")]
MeterName = Literal[tuple(METERS)]  # the model meters (music/meter.py)


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is an error, not silently ignored


class SamplingRequest(_Request):
    """Fields shared by every sampling request."""

    num_samples: int = Field(1, ge=1, le=MAX_SAMPLES, description="variations to make")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="the same seed gives the same music")
    sampler: Sampler = Field(Sampler.DPM_SOLVER, description="dpm-solver (default) | ddim | ddpm (all schedule steps)")
    steps: int | None = Field(None, ge=1, le=MAX_SAMPLING_STEPS, description="steps for ddim / dpm-solver "
                              "(default: the sampler's); at most the model's schedule length")
    temperature: float = Field(0.0, ge=0.0, le=MAX_TEMPERATURE, description="VAE decoder temperature; 0 = greedy")
    resample: int = Field(1, ge=1, le=MAX_RESAMPLE, description="RePaint: take every step this often where music "
                          "is kept (ddim and ddpm only; 1 = off)")
    guidance: float = Field(DEFAULT_GUIDANCE, ge=0.0, le=MAX_GUIDANCE, description="how strongly a model's guide "
                            "steers to the key, ending, density and style (0 = not at all)")
    cadence: int = Field(CADENCE, ge=0, le=MAX_CADENCE, description="candidate last bars (then last two) decoded for "
                         "a new piece that does not end on its tonic (0 = off)")

    def options(self) -> SamplingOptions:
        """The library's options (which check the combination, e.g. resampling with dpm-solver)."""
        return SamplingOptions(self.sampler, self.steps, self.temperature, self.resample, self.guidance,
                               self.cadence)


class ControlledRequest(SamplingRequest):
    """The controls music made around a given melody takes (music/controls.py); its key is the given melody's."""

    range: str | None = Field(None, max_length=MAX_CONTROL_CHARS, description="pitch range LOW-HIGH as note names "
                              "(D4-B5; C4 = 60) or MIDI numbers (62-83); the new notes are moved by octaves into it")
    density: float | None = Field(None, ge=1.0, le=MAX_DENSITY, description="note onsets per bar (1..16; "
                                  "models with a guide or tune contexts only)")
    style: str | None = Field(None, max_length=MAX_CONTROL_CHARS, description="a style the model knows "
                              "(GET /api/model: 'music21:oneills1850', or the part after the colon; models with a "
                              "guide or tune contexts only)")

    @model_validator(mode="before")
    @classmethod
    def _no_key(cls, data: object) -> object:
        if isinstance(data, dict) and "key" in data and "key" not in cls.model_fields:  # a clearer line than "extra"
            raise PydanticCustomError("key_kept", "key: infill, continue and bridge keep the given melody's key "
                                      "(transpose the melody instead)")
        return data

    def controls(self) -> Controls:
        """The library's controls (MelodiffError, a 422, for a range or key it cannot read)."""
        return Controls.parse(None, self.range, self.density, self.style)


class GenerateRequest(ControlledRequest):
    bars: int | None = Field(None, ge=1, le=MAX_BARS, description="length in bars (default: a written form's "
                             "length, else the model's window)")
    form: str = Field(AUTO, max_length=MAX_SECTIONS * 2 + 16, description="sections as letters (AABB, AA'BA: equal "
                      "letters are equal music, A' keeps the first half of A), 'auto' (each melody the form of a "
                      "random training melody that long; a length without forms: parts in such forms) or 'none' "
                      "(free sampling)")
    section_bars: int | None = Field(None, ge=2, le=MAX_BARS, description="bars per section of a written form "
                                     "(default: the length divided among the sections, else 8)")
    key: str | None = Field(None, max_length=MAX_CONTROL_CHARS, description="the key: Em, F#m, Bb, D minor "
                            "(context models only; default: drawn from the training tunes)")
    meter: MeterName | None = Field(None, description="the meter: 4/4, 3/4 or 6/8, those the model "
                                                 "makes (GET /api/model); default its first, 4/4")

    def controls(self) -> Controls:
        return Controls.parse(self.key, self.range, self.density, self.style)


class InfillRequest(ControlledRequest):
    melody_id: MelodyId
    start_bar: int = Field(ge=0, lt=MAX_TOTAL_BARS, description="first bar to regenerate (0-based)")
    end_bar: int = Field(ge=1, le=MAX_TOTAL_BARS, description="bar after the last one to regenerate")

    @model_validator(mode="after")
    def _ordered(self) -> InfillRequest:
        if self.end_bar <= self.start_bar:
            raise ValueError(f"end_bar ({self.end_bar}) must be greater than start_bar ({self.start_bar})")
        return self


class ContinueRequest(ControlledRequest):
    melody_id: MelodyId
    bars: int = Field(8, ge=1, le=MAX_BARS, description="bars to add")


class BridgeRequest(ControlledRequest):
    first_id: MelodyId
    second_id: MelodyId
    bars: int = Field(4, ge=1, le=MAX_BARS, description="new bars between the two melodies")


class AbcRequest(_Request):
    text: str = Field(min_length=1, max_length=MAX_ABC_CHARS, description="an ABC tune (or a book of tunes) as text: "
                      "X:, M:, L: and K: headers, then the notes")


class NoteOut(BaseModel):
    pitch: int = Field(description="MIDI pitch 21..108")
    start: int = Field(description="onset in steps (16th notes)")
    end: int = Field(description="end in steps, exclusive")


class MelodyOut(BaseModel):
    id: str
    label: str = Field(description="where the melody came from, for people")
    num_steps: int
    num_bars: float
    meter: str = Field("4/4", description="its meter; bars are bars of it")
    steps_per_bar: int = Field(16, description="16th-note steps in one of its bars: 16 in 4/4, 12 in 3/4 and 6/8")
    notes: list[NoteOut]
    regenerated: tuple[int, int] | None = Field(None, description="half-open span of steps the model wrote; the "
                                                "rest is copied unchanged from the input (infill / continue / "
                                                "bridge)")
    parents: list[str] = Field(default_factory=list, description="ids of the melodies this one was made from")


class UploadOut(BaseModel):
    melodies: list[MelodyOut]
    message: str = Field("", description="what was read, and anything cut or skipped")


class JobStatus(str, Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class JobOut(BaseModel):
    id: str
    kind: str
    status: JobStatus
    progress: float = Field(description="0..1; sampler steps done over steps planned")
    queue_position: int = Field(description="jobs ahead of this one while queued, else 0")
    melodies: list[MelodyOut] | None = Field(None, description="the results, once done")
    error: str | None = Field(None, description="why it failed, for people")


class Limits(BaseModel):
    max_bars: int = MAX_BARS
    max_total_bars: int = MAX_TOTAL_BARS
    max_samples: int = MAX_SAMPLES
    max_steps: int
    max_upload_bytes: int
    max_concurrent: int
    max_queued: int


class ModelOut(BaseModel):
    window_bars: int = Field(description="bars the model samples at once (longer pieces are made window by window)")
    controls: list[str] = Field(description="the controls the model takes: key and range always; density and "
                                "style for a model with a guide or tune contexts")
    guided: bool = Field(description="whether it has a guide (diffusion/guide.py) that the guidance field scales")
    styles: list[str] = Field(description="the style names it knows (collections such as 'music21:oneills1850'); "
                              "empty when it takes no style")
    meters: list[str] = Field(default_factory=list, description="the meters it makes, the default first")


class HealthOut(BaseModel):
    status: str
    model_loaded: bool
    window_bars: int | None
    samplers: list[str]
    running: int
    queued: int
    fluidsynth: bool
    limits: Limits
