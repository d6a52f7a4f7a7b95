"""The studio's JSON API on an untrained tiny model: happy paths (generate, upload, infill, continue, bridge,
MIDI and WAV out), kept bars kept exactly, and every kind of bad input answered with a 4xx and a readable message."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from fastapi.testclient import TestClient

from melodiff.cli import main
from melodiff.music.melody import CHUNK_STEPS, STEPS_PER_BAR, Melody
from melodiff.music.midi_io import melody_to_score, read_midi_melody
from melodiff.server import create_app, media
from tiny_model import untrained_pipeline

FAST = {"sampler": "ddim", "steps": 4}
RunJob = Callable[..., dict]
MakeMelody = Callable[[int, int], Melody]


def stored(client: TestClient, melody_id: str) -> Melody:
    return client.app.state.studio.melodies.get(melody_id).melody


def upload(client: TestClient, melody: Melody, name: str = "tune.mid") -> dict:
    data = melody_to_score(melody).dumps_midi()
    response = client.post("/api/melodies", files={"file": (name, data, "audio/midi")})
    assert response.status_code == 200, response.text
    return response.json()


def test_health_page_and_openapi(client: TestClient) -> None:
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model_loaded"] and health["window_bars"] == 16
    assert health["limits"]["max_steps"] == 100 and health["samplers"] == ["ddpm", "ddim", "dpm-solver"]
    page = client.get("/")
    assert page.status_code == 200 and "melodiff studio" in page.text
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/generate", "/api/infill", "/api/continue", "/api/bridge", "/api/health",
                 "/api/melodies", "/api/jobs/{job_id}", "/api/melodies/{melody_id}/wav"):
        assert path in paths


def test_generate_lengths_and_seeds(client: TestClient, run_job: RunJob) -> None:
    job = run_job(client, "/api/generate", {"bars": 5, "num_samples": 2, "seed": 7, **FAST})
    assert job["status"] == "done" and job["progress"] == 1.0 and job["kind"] == "generate"
    assert [m["num_steps"] for m in job["melodies"]] == [80, 80]
    again = run_job(client, "/api/generate", {"bars": 5, "num_samples": 2, "seed": 7, **FAST})
    assert [m["notes"] for m in again["melodies"]] == [m["notes"] for m in job["melodies"]]
    assert {m["id"] for m in again["melodies"]}.isdisjoint(m["id"] for m in job["melodies"])
    default = run_job(client, "/api/generate", {"sampler": "dpm-solver", "steps": 3})
    assert default["melodies"][0]["num_bars"] == 16  # the model's window
    one = client.get(f"/api/melodies/{job['melodies'][0]['id']}").json()
    assert one == job["melodies"][0]


def test_upload_midi_round_trip(client: TestClient, make_melody: MakeMelody) -> None:
    melody = make_melody(1, 6)
    out = upload(client, melody, "../../etc/My tune.mid")
    (item,) = out["melodies"]
    assert item["label"] == "My tune.mid" and "read 1 melody" in out["message"]
    assert stored(client, item["id"]) == melody
    midi = client.get(f"/api/melodies/{item['id']}/midi", params={"tempo": 90, "program": 40})
    assert midi.status_code == 200 and midi.content.startswith(b"MThd")
    assert midi.headers["content-type"] == "audio/midi" and "attachment" in midi.headers["content-disposition"]


def test_upload_abc(client: TestClient) -> None:
    abc = b"X:1\nT:scale\nM:4/4\nL:1/8\nK:C\nCDEF GABc|cBAG FEDC|CDEF GABc|c8|\n"
    response = client.post("/api/melodies", files={"file": ("scale.abc", abc, "text/plain")})
    assert response.status_code == 200, response.text
    (item,) = response.json()["melodies"]
    assert item["num_bars"] == 4 and [n["pitch"] for n in item["notes"]][:3] == [60, 62, 64]


def test_infill_keeps_the_other_bars(client: TestClient, run_job: RunJob, make_melody: MakeMelody) -> None:
    source = make_melody(2, 8)
    source_id = upload(client, source)["melodies"][0]["id"]
    job = run_job(client, "/api/infill", {"melody_id": source_id, "start_bar": 3, "end_bar": 5, "num_samples": 2,
                                          "temperature": 1.0, **FAST})
    assert job["status"] == "done", job
    for item in job["melodies"]:
        assert item["regenerated"] == [2 * 16, 6 * 16] and item["parents"] == [source_id]  # whole 2-bar chunks
        result = stored(client, item["id"])
        assert len(result) == len(source)
        keep = np.r_[0:32, 96:128]
        assert np.array_equal(result.ids[keep], source.ids[keep])


def test_continue_and_bridge(client: TestClient, run_job: RunJob, make_melody: MakeMelody) -> None:
    first, second = make_melody(3, 3), make_melody(4, 4)
    first_id, second_id = upload(client, first)["melodies"][0]["id"], upload(client, second)["melodies"][0]["id"]
    job = run_job(client, "/api/continue", {"melody_id": first_id, "bars": 3, **FAST})
    (item,) = job["melodies"]
    assert item["regenerated"] == [64, 128] and item["num_bars"] == 8  # 3 bars padded to 4, then 2 new chunks
    assert stored(client, item["id"]).ids[:64].tolist() == first.padded().ids.tolist()

    job = run_job(client, "/api/bridge", {"first_id": first_id, "second_id": second_id, "bars": 2, **FAST})
    (item,) = job["melodies"]
    assert item["regenerated"] == [64, 96] and item["parents"] == [first_id, second_id]
    result = stored(client, item["id"])
    assert result.ids[:64].tolist() == first.padded().ids.tolist()
    assert result.ids[96:].tolist() == second.padded().ids.tolist()


def test_wav_from_fluidsynth_or_builtin(client: TestClient, run_job: RunJob, monkeypatch: pytest.MonkeyPatch,
                                        make_melody: MakeMelody) -> None:
    melody_id = upload(client, make_melody(5, 2))["melodies"][0]["id"]
    wav = client.get(f"/api/melodies/{melody_id}/wav", params={"tempo": 200})
    assert wav.status_code == 200 and wav.content[:4] == b"RIFF" and wav.headers["content-type"] == "audio/wav"
    monkeypatch.setattr(media, "fluidsynth_available", lambda: False)
    builtin = client.get(f"/api/melodies/{melody_id}/wav")
    assert builtin.status_code == 200 and builtin.content[8:12] == b"WAVE"


def test_progress_counts_every_sampler_step(client: TestClient, run_job: RunJob) -> None:
    """The planned denoiser calls (for the progress bar) match the calls made, over several windows too."""
    jobs = client.app.state.studio.jobs
    for payload in ({"bars": 40, "sampler": "ddim", "steps": 5}, {"bars": 4, "sampler": "dpm-solver"},
                    {"bars": 4, "sampler": "ddim"}, {"bars": 4}, {"bars": 2, "sampler": "ddpm"},
                    {"bars": 3, "sampler": "ddim", "steps": 7}):
        job = jobs.get(run_job(client, "/api/generate", payload)["id"])
        assert job.calls == job.planned_calls > 0, payload


@pytest.mark.parametrize(("payload", "message"), [
    ({"bars": 0}, "bars: Input should be greater than or equal to 1"),
    ({"bars": 100_000}, "bars: Input should be less than or equal to 64"),
    ({"bars": 4, "num_samples": 1000}, "num_samples: Input should be less than or equal to 8"),
    ({"bars": 4, "steps": 101}, "steps: at most 100 for this model"),
    ({"bars": 4, "sampler": "euler"}, "sampler: Input should be 'ddpm', 'ddim' or 'dpm-solver'"),
    ({"bars": 4, "seed": -1}, "seed: Input should be greater than or equal to 0"),
    ({"bars": "many"}, "bars: Input should be a valid integer"),
    ({"bars": 4, "path": "/etc/passwd"}, "path: Extra inputs are not permitted"),
])
def test_generate_rejects_bad_requests(client: TestClient, payload: dict, message: str) -> None:
    response = client.post("/api/generate", json=payload)
    assert response.status_code == 422 and message in response.json()["detail"], response.text


def test_edit_requests_rejected(client: TestClient, make_melody: MakeMelody) -> None:
    melody_id = upload(client, make_melody(6, 4))["melodies"][0]["id"]
    missing = "0" * 32
    cases = [
        ("/api/infill", {"melody_id": melody_id, "start_bar": 2, "end_bar": 2}, 422, "must be greater than start_bar"),
        ("/api/infill", {"melody_id": melody_id, "start_bar": 2, "end_bar": 6}, 422, "the melody has 4 bars"),
        ("/api/infill", {"melody_id": missing, "start_bar": 0, "end_bar": 1}, 404, "no melody 0000"),
        ("/api/infill", {"melody_id": "../x", "start_bar": 0, "end_bar": 1}, 422, "String should match pattern"),
        ("/api/continue", {"melody_id": melody_id, "bars": 65}, 422, "less than or equal to 64"),
        ("/api/bridge", {"first_id": melody_id, "second_id": missing}, 404, "no melody"),
    ]
    for path, payload, status, message in cases:
        response = client.post(path, json=payload)
        assert response.status_code == status and message in response.json()["detail"], (path, response.text)
    assert client.get(f"/api/jobs/{missing}").status_code == 404
    assert client.get(f"/api/melodies/{missing}/midi").status_code == 404
    assert client.get(f"/api/melodies/{melody_id}/wav", params={"tempo": 0}).status_code == 422


def test_results_longer_than_the_limit_rejected(client: TestClient, make_melody: MakeMelody) -> None:
    long_id = upload(client, make_melody(7, 100))["melodies"][0]["id"]
    response = client.post("/api/continue", json={"melody_id": long_id, "bars": 64})
    assert response.status_code == 422 and "the limit is 128" in response.json()["detail"]
    too_long = upload(client, make_melody(8, 130))
    assert too_long["melodies"][0]["num_bars"] == 128 and "cut to the first 128 bars" in too_long["message"]


@pytest.mark.parametrize(("name", "data", "status", "message"), [
    ("notes.txt", b"just some text, not music", 415, "notes.txt is not a music file"),
    ("photo.mid", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, 415, "photo.mid is not a MID file"),
    ("broken.mid", b"MThd\x00\x00\x00\x06garbage", 422, "broken.mid: not a readable MIDI file"),
    ("empty.mid", b"", 422, "empty.mid is empty"),
    ("bad.abc", b"X:1\nK:C\n%%%%", 422, "bad.abc"),
])
def test_non_music_uploads_rejected(client: TestClient, name: str, data: bytes, status: int, message: str) -> None:
    response = client.post("/api/melodies", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code == status and message in response.json()["detail"], response.text
    assert "melodiff-upload-" not in response.json()["detail"]  # no server paths in messages


def test_oversize_uploads_rejected(pipeline, make_melody: MakeMelody) -> None:
    with TestClient(create_app(pipeline, max_upload_bytes=1000)) as small:
        big = b"MThd" + b"\0" * 5000
        response = small.post("/api/melodies", files={"file": ("big.mid", big, "audio/midi")})
        assert response.status_code == 413 and "big.mid is larger than 1,000 bytes" in response.json()["detail"]

        def chunks():  # no Content-Length: the limit is enforced while the body streams in
            for _ in range(100):
                yield b"x" * 1000

        streamed = small.post("/api/melodies", content=chunks(), headers={"content-type": "multipart/form-data; "
                                                                          "boundary=b"})
        assert streamed.status_code == 413 and "too large" in streamed.json()["detail"]
        just_under = melody_to_score(make_melody(9, 1)).dumps_midi()
        assert len(just_under) < 1000
        assert small.post("/api/melodies", files={"file": ("a.mid", just_under)}).status_code == 200


def test_burst_queues_with_one_worker_and_refuses_past_the_queue(make_melody: MakeMelody) -> None:
    import threading

    pipeline = untrained_pipeline()
    gate = threading.Event()
    generate = pipeline.generate

    def held_generate(*args, **kwargs):
        gate.wait(10)
        return generate(*args, **kwargs)

    pipeline.generate = held_generate  # the first job holds the only worker until the gate opens
    with TestClient(create_app(pipeline, max_concurrent=1, max_queued=3)) as client:
        jobs = [client.post("/api/generate", json={"bars": 2, **FAST}).json() for _ in range(4)]
        refused = client.post("/api/generate", json={"bars": 2, **FAST})
        assert refused.status_code == 503 and "already waiting" in refused.json()["detail"]
        statuses = [client.get(f"/api/jobs/{j['id']}").json() for j in jobs]
        assert [s["status"] for s in statuses] == ["running", "queued", "queued", "queued"]
        assert [s["queue_position"] for s in statuses] == [0, 0, 1, 2]
        assert client.get("/api/health").json()["queued"] == 3
        gate.set()
        done = [client.get(f"/api/jobs/{j['id']}", params={"wait": 10}).json() for j in jobs]
        assert [d["status"] for d in done] == ["done"] * 4


def test_lazy_loader_and_failed_jobs(make_melody: MakeMelody) -> None:
    calls = []

    def load():
        calls.append(1)
        return untrained_pipeline()

    with TestClient(create_app(load)) as client:
        assert client.get("/api/health").json()["model_loaded"] is False
        response = client.post("/api/generate", json={"bars": 2, **FAST})
        assert response.status_code == 202 and client.get("/api/health").json()["model_loaded"] is True
        studio = client.app.state.studio
        bad = studio.jobs.submit("generate", lambda job: studio.pipeline().generate(0))
        job = client.get(f"/api/jobs/{bad.id}", params={"wait": 10}).json()
        assert job["status"] == "failed" and "number of bars" in job["error"]
    assert calls == [1]


def test_cli_serve_reports_a_bad_model(capsys: pytest.CaptureFixture, tmp_path) -> None:
    assert main(["serve", "--model", str(tmp_path / "nowhere")]) == 2
    assert "not a melodiff model folder" in capsys.readouterr().err
    assert main(["serve", "--port", "70000"]) == 2


def test_midi_download_reads_back(client: TestClient, make_melody: MakeMelody, tmp_path) -> None:
    melody = Melody.from_notes(make_melody(10, 2).to_notes(), 2 * CHUNK_STEPS // 2)
    melody_id = upload(client, melody)["melodies"][0]["id"]
    path = tmp_path / "out.mid"
    path.write_bytes(client.get(f"/api/melodies/{melody_id}/midi").content)
    assert read_midi_melody(path) == melody


def test_stopping_the_server_stops_running_jobs() -> None:
    import threading

    pipeline = untrained_pipeline()
    gate = threading.Event()
    generate = pipeline.generate

    def held_generate(*args, **kwargs):
        gate.wait(10)
        return generate(*args, **kwargs)

    pipeline.generate = held_generate
    with TestClient(create_app(pipeline)) as client:
        job_id = client.post("/api/generate", json={"bars": 2, **FAST}).json()["id"]
        queued_id = client.post("/api/generate", json={"bars": 2, **FAST}).json()["id"]
        jobs = client.app.state.studio.jobs
    gate.set()  # the app has shut down: the running job stops at its first sampler step, the queued one never runs
    running = jobs.get(job_id)
    assert running.done.wait(10) and running.error == "the server is stopping"
    assert jobs.get(queued_id).status.value == "queued"
    assert not pipeline.denoiser._forward_hooks  # the progress hook is gone with the last job


def test_only_local_host_names_when_asked() -> None:
    app = create_app(untrained_pipeline(), allowed_hosts=["127.0.0.1", "localhost"])
    with TestClient(app, base_url="http://127.0.0.1:8000") as client:
        assert client.get("/api/health").status_code == 200
        assert client.get("/api/health", headers={"host": "rebound.example:8000"}).status_code == 400


def test_missing_studio_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    import melodiff.server
    from melodiff.errors import MelodiffError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "uvicorn" else real(name, *a))
    with pytest.raises(MelodiffError, match=r"needs uvicorn: pip install 'melodiff\[studio\]'"):
        melodiff.server.serve  # noqa: B018


def test_generate_in_a_form(client: TestClient, run_job: RunJob) -> None:
    job = run_job(client, "/api/generate", {"form": "AABB", "section_bars": 2, "temperature": 1.0, **FAST})
    (item,) = job["melodies"]
    melody = stored(client, item["id"])
    assert len(melody) == 8 * STEPS_PER_BAR
    chunks = melody.padded().chunks()
    assert (chunks[0] == chunks[1]).all() and (chunks[2] == chunks[3]).all()
    assert run_job(client, "/api/generate", {"form": "AABB", **FAST})["melodies"][0]["num_bars"] == 32
    for payload, message in (({"form": "ABC", "bars": 16}, "form ABC: 3 sections of 8 bars last 24 bars, not 16"),
                             ({"form": "ABCDEFGHI"}, "form: ABCDEFGHI lasts 72 bars; the limit is 64"),
                             ({"form": "A1"}, "write sections as letters"),
                             ({"form": "auto", "section_bars": 4}, "section bars need a written form")):
        response = client.post("/api/generate", json={**payload, **FAST})
        assert response.status_code == 422 and message in response.json()["detail"], response.text
