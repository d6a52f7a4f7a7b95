"""Load smoke test of melodiff studio on loopback: N concurrent generate requests (default 50), each polled until
its job is done. Prints latency percentiles, errors and the server's resident memory (idle and peak); exits 1 on
any error (or when --max-rss-mib is exceeded).

It starts its own server in a child process (the untrained tiny model, or --model) on 127.0.0.1 unless --url points
at one already running (then memory is reported only with --pid). Not run in CI: a minute or two on 2 cores.

usage: python benchmarks/studio_load.py [--model tiny|default|FOLDER] [--requests 50] [--bars 8]"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx


def serve(model: str, port: int, max_concurrent: int) -> None:
    """The child process: the studio over the tiny model or a model folder, until killed."""
    import uvicorn

    from melodiff.pipeline import Pipeline
    from melodiff.server import create_app
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the tiny model is a test fixture
    from tiny_model import untrained_pipeline

    pipeline = untrained_pipeline() if model == "tiny" else Pipeline.from_pretrained(model)
    app = create_app(pipeline, max_concurrent=max_concurrent)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def rss_mib(pid: int, field: str = "VmRSS") -> float | None:
    """Resident memory of a process from /proc (VmRSS: now; VmHWM: peak), in MiB; None where unreadable."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


async def one_request(client: httpx.AsyncClient, payload: dict, timeout: float) -> float:
    """POST a generate job and poll it to the end; returns seconds taken, raises on any failure."""
    start = time.perf_counter()
    response = await client.post("/api/generate", json=payload)
    if response.status_code != 202:
        raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
    job = response.json()
    while job["status"] in ("queued", "running"):
        if time.perf_counter() - start > timeout:
            raise TimeoutError(f"job {job['id']} not done after {timeout:.0f} s")
        response = await client.get(f"/api/jobs/{job['id']}", params={"wait": 5})
        response.raise_for_status()
        job = response.json()
    if job["status"] != "done" or len(job["melodies"]) != payload["num_samples"]:
        raise RuntimeError(f"job {job['id']} {job['status']}: {job.get('error')}")
    return time.perf_counter() - start


async def load(url: str, args: argparse.Namespace, pid: int | None) -> int:
    peak = [0.0]

    async def watch_memory() -> None:
        while pid is not None:
            peak[0] = max(peak[0], rss_mib(pid) or 0.0)
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(base_url=url, timeout=60.0, limits=httpx.Limits(max_connections=args.requests)) as c:
        health = (await c.get("/api/health")).json()
        idle = rss_mib(pid) if pid else None
        print(f"server {url}: model window {health['window_bars']} bars, {health['limits']['max_concurrent']} "
              f"worker(s), queue {health['limits']['max_queued']}" + (f", idle RSS {idle:.0f} MiB" if idle else ""))
        watcher = asyncio.create_task(watch_memory())
        payloads = [{"bars": args.bars, "num_samples": 1, "seed": i, "sampler": args.sampler} for i in
                    range(args.requests)]
        wall = time.perf_counter()
        results = await asyncio.gather(*(one_request(c, p, args.timeout) for p in payloads), return_exceptions=True)
        wall = time.perf_counter() - wall
        watcher.cancel()
    latencies = sorted(r for r in results if isinstance(r, float))
    errors = [r for r in results if not isinstance(r, float)]
    print(f"{args.requests} concurrent generate requests ({args.bars} bars, {args.sampler}): {len(latencies)} ok, "
          f"{len(errors)} errors, {wall:.1f} s wall, {len(latencies) / wall:.1f} requests/s")
    if latencies:
        p95 = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
        print(f"latency: min {latencies[0]:.2f} s, median {statistics.median(latencies):.2f} s, p95 {p95:.2f} s, "
              f"max {latencies[-1]:.2f} s (queued behind each other: one worker)")
    for error in errors[:5]:
        print(f"error: {type(error).__name__}: {error}")
    failed = bool(errors)
    if pid is not None:
        hwm = rss_mib(pid, "VmHWM")
        print(f"server RSS: idle {idle:.0f} MiB, peak during the burst {peak[0]:.0f} MiB"
              + (f" (high-water mark {hwm:.0f} MiB)" if hwm else ""))
        if args.max_rss_mib and peak[0] > args.max_rss_mib:
            print(f"error: peak RSS over --max-rss-mib {args.max_rss_mib}")
            failed = True
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="tiny (untrained, built in memory; default), default, or a "
                        "model folder")
    parser.add_argument("--url", default=None, help="an already running server (default: start one on loopback)")
    parser.add_argument("--pid", type=int, default=None, help="with --url: the server's process id, for memory")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--bars", type=int, default=8)
    parser.add_argument("--sampler", default="dpm-solver", choices=["ddpm", "ddim", "dpm-solver"])
    parser.add_argument("--max-concurrent", type=int, default=1, help="server workers (own server only)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds one request may take, queue included")
    parser.add_argument("--max-rss-mib", type=float, default=None, help="fail when the server's peak RSS exceeds this")
    parser.add_argument("--serve-port", type=int, default=None, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.serve_port is not None:
        serve(args.model, args.serve_port, args.max_concurrent)
        return 0
    if args.url:
        return asyncio.run(load(args.url.rstrip("/"), args, args.pid))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    child = subprocess.Popen([sys.executable, __file__, "--model", args.model, "--max-concurrent",
                              str(args.max_concurrent), "--serve-port", str(port)], env={**os.environ})
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{url}/api/health", timeout=2).raise_for_status()
                break
            except httpx.HTTPError:
                if child.poll() is not None or time.monotonic() > deadline:
                    print("error: the server did not start", file=sys.stderr)
                    return 1
                time.sleep(0.2)
        return asyncio.run(load(url, args, child.pid))
    finally:
        child.terminate()
        child.wait(10)


if __name__ == "__main__":
    sys.exit(main())
