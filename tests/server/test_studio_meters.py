"""The studio in several meters: a model folder's other meters load on first use, generate takes a meter, a
melody keeps its meter through infill and continue, /api/model describes each meter's model."""

from __future__ import annotations

import functools

from fastapi.testclient import TestClient

from melodiff.server import create_app
from tiny_model import triple_pipeline, untrained_pipeline

FAST = {"sampler": "ddim", "steps": 4}


def studio() -> TestClient:
    meters = {m: functools.partial(triple_pipeline, 0, m) for m in ("3/4", "6/8")}
    return TestClient(create_app(untrained_pipeline(), meters=meters))


def test_generate_infill_and_continue_in_each_meter(run_job) -> None:
    with studio() as client:
        assert client.get("/api/model").json()["meters"] == ["4/4", "3/4", "6/8"]
        assert client.get("/api/model", params={"meter": "6/8"}).json()["meters"] == ["4/4", "3/4", "6/8"]
        for meter, steps in (("4/4", 16), ("3/4", 12), ("6/8", 12)):
            job = run_job(client, "/api/generate", {"bars": 4, "num_samples": 1, "seed": 1, "meter": meter, **FAST})
            (melody,) = job["melodies"]
            assert (melody["meter"], melody["steps_per_bar"], melody["num_steps"]) == (meter, steps, 4 * steps)
        jig = job["melodies"][0]
        filled = run_job(client, "/api/infill", {"melody_id": jig["id"], "start_bar": 2, "end_bar": 4, "seed": 2,
                                                 "num_samples": 1, **FAST})["melodies"][0]
        assert filled["meter"] == "6/8" and filled["regenerated"] == [24, 48]
        longer = run_job(client, "/api/continue", {"melody_id": jig["id"], "bars": 2, "seed": 2, "num_samples": 1,
                                                   **FAST})["melodies"][0]
        assert longer["meter"] == "6/8" and longer["num_steps"] == 72
        abc = client.get(f"/api/melodies/{longer['id']}/abc")
        assert "M:6/8" in abc.text.splitlines()
        response = client.post("/api/generate", json={"bars": 4, "meter": "9/8", **FAST})
        assert response.status_code == 422 and "meter" in response.json()["detail"]


def test_a_meter_the_model_does_not_make_is_a_422() -> None:
    with TestClient(create_app(untrained_pipeline())) as client:
        response = client.post("/api/generate", json={"bars": 4, "meter": "3/4", **FAST})
        assert response.status_code == 422
        assert response.json()["detail"] == "meter '3/4' is outside the model: it makes 4/4"
        assert client.get("/api/model", params={"meter": "6/8"}).status_code == 422
