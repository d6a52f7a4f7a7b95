"""The studio under hostile input: bomb files and cross-site form posts (the hardening issue)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hostile_files import midi_bytes
from melodiff.music.melody import STEPS_PER_BAR

TESTS = Path(__file__).resolve().parents[1]

# Runs in a process of its own, so that its peak memory is the studio's alone.
UPLOAD_ALL = """
import json, resource, sys, tempfile, time
from pathlib import Path
from fastapi.testclient import TestClient
from hostile_files import MIDI_INPUTS, SCORE_INPUTS
from melodiff.server import create_app
from tiny_model import untrained_pipeline

folder = Path(tempfile.mkdtemp())
results = {}
with TestClient(create_app(untrained_pipeline(), max_upload_bytes=20 * 2**20)) as client:
    for name, make in {**MIDI_INPUTS, **SCORE_INPUTS}.items():
        path = make(folder)
        start = time.perf_counter()
        response = client.post("/api/melodies", files={"file": (path.name, path.read_bytes())})
        body = response.json()
        results[name] = {"status": response.status_code, "seconds": time.perf_counter() - start,
                         "detail": body.get("detail") or body.get("message"),
                         "steps": [m["num_steps"] for m in body.get("melodies", [])]}
results["max_rss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps(results))
"""


def test_hostile_uploads_answer_4xx_or_cut_in_bounded_memory() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, "-c", UPLOAD_ALL], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr
    results = json.loads(run.stdout.splitlines()[-1])
    assert results.pop("max_rss") < 2**30
    for name, result in results.items():
        assert result["seconds"] < 10, (name, result)
        if name in ("bomb", "late_note", "late_event", "long_note"):  # cut to 128 bars before the melody is built
            assert result["status"] == 200 and "cut to the first 128 bars" in result["detail"], (name, result)
            assert max(result["steps"]) <= 128 * STEPS_PER_BAR
        else:
            assert 400 <= result["status"] < 500, (name, result)
    assert "0 ticks per quarter note" in results["zero_division"]["detail"]
    assert "in 5/8" in results["five_eight"]["detail"] and "in 7/8" in results["seven_eight"]["detail"]
    assert "200,001 notes" in results["many_notes"]["detail"]
    assert "melodiff reads at most 4096 bars" in results["abc_long_note"]["detail"]


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://testserver.evil.example",
                                    "https://testserver"])
def test_cross_site_posts_are_refused(client: TestClient, origin: str) -> None:
    """A page on another site can POST a plain form to the studio; its browser names the page in Origin."""
    headers = {"origin": origin}
    form = client.post("/api/melodies", files={"file": ("a.mid", b"MThd")}, headers=headers)
    assert form.status_code == 403 and "cross-site" in form.json()["detail"]
    assert client.post("/api/generate", json={"bars": 2}, headers=headers).status_code == 403
    assert client.get("/api/health", headers=headers).status_code == 200  # reading is harmless


def test_same_origin_and_scripts_may_post(client: TestClient, run_job) -> None:
    assert run_job(client, "/api/generate", {"bars": 2})["status"] == "done"  # no Origin: curl, scripts, tests
    response = client.post("/api/generate", json={"bars": 2}, headers={"origin": "http://testserver"})
    assert response.status_code == 202


def test_serve_on_a_port_in_use_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    """The machine refused (README: exit 1), in one line; uvicorn alone would exit 3 after its own log lines."""
    import socket

    from melodiff.cli import main

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert main(["-q", "serve", "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"melodiff: error: cannot listen on 127.0.0.1 port {port} ("), err


def test_an_upload_with_no_notes_in_its_first_128_bars_is_refused(client: TestClient) -> None:
    late = midi_bytes([(200 * 4 * 480, bytes([0x90, 60, 100])), (480, bytes([0x80, 60, 0]))])  # bar 201
    response = client.post("/api/melodies", files={"file": ("late.mid", late)})
    assert response.status_code == 422 and "no notes in the first 128 bars" in response.json()["detail"]
