"""Studio test fixtures: an untrained tiny Pipeline (built in memory), apps over it, and a job runner."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

pytest.importorskip("fastapi", reason="the studio tests need the studio extra: pip install -e '.[test]'")

from fastapi.testclient import TestClient

from melodiff.pipeline import Pipeline
from melodiff.server import create_app
from tiny_model import untrained_pipeline


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    return untrained_pipeline()


@pytest.fixture(scope="module")
def client(pipeline: Pipeline) -> Iterator[TestClient]:
    with TestClient(create_app(pipeline)) as c:
        yield c


@pytest.fixture(scope="session")
def run_job() -> Callable[..., dict]:
    """``run_job(client, path, payload)`` -> the finished job's JSON (asserts the request was accepted)."""

    def run(client: TestClient, path: str, payload: dict) -> dict:
        response = client.post(path, json=payload)
        assert response.status_code == 202, response.text
        job = response.json()
        for _ in range(100):
            if job["status"] in ("done", "failed"):
                return job
            job = client.get(f"/api/jobs/{job['id']}", params={"wait": 5}).json()
        raise AssertionError(f"job {job['id']} did not finish: {job}")

    return run
