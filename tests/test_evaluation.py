"""The evaluation's tables and JSON rows, without a model (the whole `melodiff evaluate` run: test_end_to_end.py)."""

from __future__ import annotations

import math

from melodiff.evaluation import EvalRow, markdown_table, statistics_table, structure_table
from melodiff.metrics.stats import DESCRIPTIVE, melody_statistics
from melodiff.music.melody import Melody, Note


def test_rows_tables_and_json() -> None:
    melodies = [Melody.from_notes([Note(60, 0, 8), Note(62, 8, 32)])] * 2
    real = EvalRow("unconditional", "Test data", {"pitch_consistency": 1.0}, melody_statistics(melodies), 2,
                   real=True, melodies=melodies)
    generated = EvalRow("unconditional", "Diffusion", {"pitch_consistency": 0.5, "latent_fd": 2.0},
                        melody_statistics([Melody([0] * 32)] * 4), 4, seconds=2.0)
    other = EvalRow("infilling", "Prior", num_samples=1, seconds=1.0)
    assert (real.seconds_per_sample, generated.seconds_per_sample) == (None, 0.5)
    row = generated.to_json()
    assert set(row) == {"task", "name", "real", "num_samples", "seconds", "seconds_per_sample", "scores", "statistics",
                        "classifier", "structure"}
    assert row["statistics"]["pitch_range"] is None and row["statistics"]["rest_fraction"] == 1.0  # NaN -> null
    assert math.isnan(generated.statistics["pitch_range"])  # the row itself keeps NaN
    table = markdown_table([real, generated, other], "unconditional").splitlines()
    assert len(table) == 4 and "s / sample" in table[0]
    assert table[2].startswith("| Test data | 1.000 |") and table[2].endswith(" | 2 | — | — |")
    assert table[3] == "| Diffusion | 0.500 | — | — | — | 2.000 | — | 4 | 2.0 | 0.5 |"
    stats = statistics_table([real, generated, other], "unconditional").splitlines()
    assert len(stats) == 4 and stats[0].count(" | ") == len(DESCRIPTIVE)
    assert stats[2] == "| Test data | 1.00 | 2.0 | — | 1.000 | 0.000 | 0.000 |"  # no reference: no distance
    assert stats[3] == "| Diffusion | 0.00 | — | — | — | 1.000 | — |"  # no notes: no pitches, no chunks with notes


def test_structure_table_shows_errors_and_the_gap_to_real() -> None:
    real = EvalRow("unconditional", "Test data", real=True, structure={"repeated_2bar": (0.08, 0.01)},
                   classifier={"accuracy": 0.52, "accuracy_se": 0.01, "auc": 0.53, "auc_se": 0.02})
    generated = EvalRow("unconditional", "Diffusion", seconds=1.0, structure={"repeated_2bar": (0.02, 0.005)},
                        classifier={"accuracy": 0.9, "accuracy_se": 0.01, "auc": 0.97, "auc_se": 0.01})
    table = structure_table([real, generated], "unconditional").splitlines()
    assert len(table) == 4 and "classifier accuracy" in table[0] and "ends on the tonic" in table[0]
    assert table[2].startswith("| Test data | 0.520 ± 0.010 | 0.530 ± 0.020 | 0.080 ± 0.010 | —")
    assert table[3].startswith("| Diffusion | 0.900 ± 0.010 | 0.970 ± 0.010 | 0.020 ± 0.005 (-75 %) | —")


def test_a_like_for_like_row_of_long_test_melodies(make_melody) -> None:
    from melodiff.evaluation import Evaluator
    from melodiff.options import Sampler
    from tiny_model import untrained_pipeline

    pipeline = untrained_pipeline()  # a window of 16 bars
    test = [make_melody(i, 20 if i % 2 else 6) for i in range(6)]
    evaluator = Evaluator(pipeline, [make_melody(9, 16)] * 3, test, seed=0)
    evaluator.unconditional(2, [(Sampler.DDIM, 2)])
    rows = {r.name: r for r in evaluator.rows}
    long = rows["Test data of 16+ bars"]
    assert long.real and len(long.melodies) == 3 and all(len(m) == 16 * 16 for m in long.melodies)
    assert len(rows["Test data"].melodies) == 6


def test_the_controls_rows_say_how_often_each_control_was_obeyed(make_melody) -> None:
    from melodiff.evaluation import Evaluator, results_markdown
    from melodiff.options import Sampler
    from test_contexts import context_pipeline

    pipeline = context_pipeline()
    train = [make_melody(i, 8) for i in range(8)]
    evaluator = Evaluator(pipeline, train, [make_melody(20 + i, 8) for i in range(4)], seed=0)
    evaluator.controls(20, Sampler.DDIM, 2, ["music21:a", "music21:b"] * 4, ["music21:a", "music21:b"] * 2,
                       length=4)
    rows = {r.name: r for r in evaluator.rows}
    assert set(rows) == {"key (10 keys)", "density 2 / 4 / 6 / 8", "style (2 collections)", "range D4-B5",
                         "range D5-B6"}
    assert all(r.task == "controls" and 0 <= r.scores["obeyed"] <= 1 for r in rows.values())
    assert rows["range D5-B6"].scores["obeyed"] == 1.0  # moved into the range after decoding
    assert rows["style (2 collections)"].scores["chance"] == 0.5
    text = results_markdown(evaluator.rows, 8)
    assert "## Controls" in text and "| range D4-B5 | 1.000 |" in text
