"""The musician's controls in the studio's JSON API (issue 22): key, range, density and style reach the pipeline and
the model (a tiny untrained context model with styles "music21:a" and "music21:b"), the range holds for every new
note, ``GET /api/model`` says which controls a model takes, and bad values, a control the model does not take and a
key where the given melody's is kept answer 422 with one line before any job is queued."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from melodiff.data.contexts import density_class
from melodiff.music.controls import Controls
from melodiff.music.melody import STEPS_PER_BAR, Melody
from melodiff.pipeline import Pipeline
from melodiff.server import create_app
from test_contexts import context_pipeline
from tiny_model import guided_pipeline

FAST = {"sampler": "ddim", "steps": 3, "temperature": 1.0}
D4, B5 = 62, 83
RunJob = Callable[..., dict]
MakeMelody = Callable[[int, int], Melody]


@pytest.fixture(scope="module")
def context_client() -> Iterator[TestClient]:
    with TestClient(create_app(context_pipeline())) as c:
        yield c


def pipeline_of(client: TestClient) -> Pipeline:
    return client.app.state.studio.pipeline()


def store(client: TestClient, melody: Melody) -> str:
    return client.app.state.studio.melodies.add(melody, "source").id


def new_pitches(melody: dict) -> list[int]:
    """Pitches of the notes the model wrote (all of a generated melody's; those starting in the regenerated span)."""
    a, b = melody["regenerated"] or (0, melody["num_steps"])
    return [n["pitch"] for n in melody["notes"] if a <= n["start"] < b]


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Callable[[TestClient], dict]:
    """``spy(client)`` -> a dict that fills, as the client's jobs run, with the ``controls`` each pipeline method was
    given (by method name) and the tune contexts the denoiser was told (``"tunes"``, the last sampling's)."""

    def install(client: TestClient) -> dict:
        pipeline, seen = pipeline_of(client), {}
        for name in ("generate", "infill", "continue_melody", "bridge", "sample_latents"):
            original = getattr(pipeline, name)

            def wrapped(*args, _name=name, _original=original, **kwargs):
                if _name == "sample_latents":
                    seen["tunes"] = kwargs.get("tunes")
                else:
                    seen[_name] = kwargs.get("controls")
                return _original(*args, **kwargs)

            monkeypatch.setattr(pipeline, name, wrapped)
        return seen

    return install


def test_the_model_endpoint_lists_controls_and_styles(client: TestClient, context_client: TestClient) -> None:
    assert client.get("/api/model").json() == {"window_bars": 16, "controls": ["key", "range"], "styles": [],
                                               "guided": False, "meters": ["4/4"]}
    info = context_client.get("/api/model").json()
    assert info["controls"] == ["key", "range", "density", "style"]
    assert info["styles"] == ["music21:a", "music21:b"]
    assert "/api/model" in client.get("/openapi.json").json()["paths"]


def test_generate_with_every_control(context_client: TestClient, run_job: RunJob, spy) -> None:
    seen = spy(context_client)
    controls = {"key": "Em", "range": "D4-B5", "density": 4, "style": "a"}
    job = run_job(context_client, "/api/generate", {"bars": 4, "num_samples": 3, "seed": 2, **controls, **FAST})
    assert job["status"] == "done", job
    assert seen["generate"] == Controls(key=(4, True), pitch_range=(D4, B5), density=4.0, style="a")
    assert seen["tunes"].tolist() == [[4, 1, 0, density_class(4)]] * 3  # E minor, style a, density: told the model
    for melody in job["melodies"]:
        assert melody["notes"] and all(D4 <= p <= B5 for p in new_pitches(melody))
        assert melody["label"].endswith("(key Em, range D4-B5, density 4, style a)")
    full_name = run_job(context_client, "/api/generate", {"bars": 2, "style": "MUSIC21:b", "key": "D minor",
                                                          "range": "62-83", **FAST})
    assert full_name["status"] == "done" and seen["generate"].style == "MUSIC21:b"
    assert seen["tunes"][:, :3].tolist() == [[2, 1, 1]]
    plain = run_job(context_client, "/api/generate", {"bars": 2, **FAST})
    assert plain["status"] == "done" and not seen["generate"]  # nothing asked: no controls


def test_infill_continue_and_bridge_take_range_density_and_style(context_client: TestClient, run_job: RunJob,
                                                                 make_melody: MakeMelody, spy) -> None:
    seen = spy(context_client)
    source, other = store(context_client, make_melody(3, 4)), store(context_client, make_melody(4, 2))
    asked = {"range": "D4-B5", "density": 6, "style": "b"}
    requests = {"infill": ("/api/infill", {"melody_id": source, "start_bar": 2, "end_bar": 4}),
                "continue_melody": ("/api/continue", {"melody_id": source, "bars": 2}),
                "bridge": ("/api/bridge", {"first_id": source, "second_id": other, "bars": 2})}
    for method, (path, payload) in requests.items():
        job = run_job(context_client, path, {**payload, **asked, "num_samples": 2, **FAST})
        assert job["status"] == "done", job
        assert seen[method] == Controls(pitch_range=(D4, B5), density=6.0, style="b"), method
        tunes = seen["tunes"]
        assert tunes[:, 2].tolist() == [1, 1] and tunes[:, 3].tolist() == [density_class(6)] * 2, method
        for melody in job["melodies"]:
            assert melody["regenerated"][1] - melody["regenerated"][0] == 2 * STEPS_PER_BAR
            assert new_pitches(melody) and all(D4 <= p <= B5 for p in new_pitches(melody)), method


def test_a_model_without_contexts_takes_the_range(client: TestClient, run_job: RunJob, make_melody: MakeMelody,
                                                  spy) -> None:
    seen = spy(client)
    job = run_job(client, "/api/generate", {"bars": 4, "num_samples": 2, "range": "62-83", **FAST})
    assert job["status"] == "done" and seen["generate"] == Controls(pitch_range=(D4, B5))
    assert seen["tunes"] is None
    assert all(m["notes"] and all(D4 <= p <= B5 for p in new_pitches(m)) for m in job["melodies"])
    source = store(client, make_melody(5, 4))
    job = run_job(client, "/api/infill", {"melody_id": source, "start_bar": 0, "end_bar": 2, "range": "C5-C6",
                                          **FAST})
    assert job["status"] == "done" and all(72 <= p <= 84 for p in new_pitches(job["melodies"][0]))
    kept = [n for n in job["melodies"][0]["notes"] if n["start"] >= 2 * STEPS_PER_BAR]
    original = client.get(f"/api/melodies/{source}").json()["notes"]
    assert kept == [n for n in original if n["start"] >= 2 * STEPS_PER_BAR]  # the range moves only new notes


BAD_GENERATE = [
    ({"key": "H"}, "unknown key 'H'"),
    ({"key": "E dorian"}, "unknown key"),
    ({"range": "D4"}, "range 'D4': write LOW-HIGH"),
    ({"range": "Q4-B5"}, "unknown pitch 'Q4'"),
    ({"range": "60-64"}, "it must span at least a fifth"),
    ({"range": "20-80"}, "outside MIDI"),
    ({"range": "x" * 65}, "range: String should have at most 64 characters"),
    ({"density": 0}, "density: Input should be greater than or equal to 1"),
    ({"density": 17}, "density: Input should be less than or equal to 16"),
    ({"density": "lots"}, "density: Input should be a valid number"),
    ({"style": "jazz"}, "unknown style 'jazz': this model knows a, b"),
]


@pytest.mark.parametrize(("fields", "message"), BAD_GENERATE)
def test_bad_controls_are_one_line_422s(context_client: TestClient, fields: dict, message: str, spy) -> None:
    seen = spy(context_client)
    response = context_client.post("/api/generate", json={"bars": 2, **fields, **FAST})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail, detail
    assert "generate" not in seen  # refused before a job was queued


def test_a_key_is_refused_where_the_melody_keeps_its_own(context_client: TestClient, make_melody: MakeMelody) -> None:
    source, other = store(context_client, make_melody(6, 4)), store(context_client, make_melody(7, 2))
    for path, payload in (("/api/infill", {"melody_id": source, "start_bar": 0, "end_bar": 2}),
                          ("/api/continue", {"melody_id": source}),
                          ("/api/bridge", {"first_id": source, "second_id": other})):
        response = context_client.post(path, json={**payload, "key": "Em", "range": "D4-B5"})
        assert response.status_code == 422, response.text
        assert response.json()["detail"] == ("key: infill, continue and bridge keep the given melody's key "
                                             "(transpose the melody instead)")
    response = context_client.post("/api/infill", json={"melody_id": source, "start_bar": 0, "end_bar": 2,
                                                        "style": "zz"})
    assert response.status_code == 422 and response.json()["detail"] == "unknown style 'zz': this model knows a, b"


@pytest.mark.parametrize("fields", [{"density": 4}, {"style": "a"}, {"key": "C", "style": "a"}])
def test_a_model_without_contexts_refuses_its_missing_controls(client: TestClient, make_melody: MakeMelody,
                                                               fields: dict) -> None:
    response = client.post("/api/generate", json={"bars": 2, "range": "D4-B5", **fields})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("this model takes no ") and detail.endswith("its controls: key, range"), detail
    if "key" not in fields:
        source = store(client, make_melody(8, 2))
        response = client.post("/api/continue", json={"melody_id": source, "bars": 2, **fields})
        assert response.status_code == 422 and "this model takes no" in response.json()["detail"]


def test_controls_keep_seeds_reproducible(context_client: TestClient, run_job: RunJob) -> None:
    payload = {"bars": 4, "num_samples": 2, "seed": 9, "key": "G", "density": 3, "range": "D4-B5", **FAST}
    first, again = (run_job(context_client, "/api/generate", payload) for _ in range(2))
    assert [m["notes"] for m in first["melodies"]] == [m["notes"] for m in again["melodies"]]


def test_a_guided_model_takes_density_style_and_the_guidance_scale(run_job: RunJob, spy) -> None:
    """A model with a guide (diffusion/guide.py) says so, takes density and style, and the guidance scale reaches
    the sampler; a scale out of 0..20 is a 422 before any job is queued."""
    with TestClient(create_app(guided_pipeline())) as guided:
        assert guided.get("/api/model").json() == {"window_bars": 16, "controls": ["key", "range", "density", "style"],
                                                   "styles": ["music21:a", "music21:b"], "guided": True,
                                                   "meters": ["4/4"]}
        calls = []
        pipeline = pipeline_of(guided)
        original = pipeline.sample_latents

        def sample_latents(*args, **kwargs):
            calls.append((args[2].guidance, kwargs.get("controls")))
            return original(*args, **kwargs)

        pipeline.sample_latents = sample_latents
        job = run_job(guided, "/api/generate", {"bars": 4, "num_samples": 2, "seed": 1, "density": 3, "style": "b",
                                                 "guidance": 2.5, **FAST})
        assert job["status"] == "done" and len(job["melodies"]) == 2
        assert calls == [(2.5, Controls(density=3.0, style="b"))]
        for field, value in (("guidance", 25), ("cadence", 999)):
            response = guided.post("/api/generate", json={"bars": 4, field: value, **FAST})
            assert response.status_code == 422 and field in response.text
