"""`melodiff prepare` at Lakh-like scale: throughput and peak memory on the first 5,000 and on all 20,000 files of
the synthetic corpus (benchmarks/synthetic_midi.py, made here if missing), each run from scratch in a process of
its own. Memory must not grow with the number of files (docs/SCALING.md).

Printed per run: files/s, melodies/s, and peak resident memory three ways: the main process's own peak (getrusage),
the largest parser worker's peak, and the peak of the whole process tree's sum, sampled every 0.1 s from /proc
(Linux).

usage: python benchmarks/prepare_memory.py [--corpus DIR] [--sizes 5000 20000] [--workers 2]"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic_midi import PER_FOLDER, write_corpus

RUN = """
import json, resource, sys, time
from melodiff.data.prepare import prepare
sources, out, workers = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t0 = time.perf_counter()
report = prepare(sources, out, workers=workers, quiet=True)
seconds = time.perf_counter() - t0
print(json.dumps({"seconds": seconds, "units": report["work_units"], "melodies": report["melodies"],
                  "self_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "children_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
"""


def tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and all its descendants now (KiB), from /proc."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        parents[int(entry)] = int(fields.get("PPid", "0").strip() or 0)
        rss[int(entry)] = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    members, grew = {root}, True
    while grew:
        new = {pid for pid, parent in parents.items() if parent in members} - members
        members |= new
        grew = bool(new)
    return sum(rss.get(pid, 0) for pid in members)


def measured_run(command: list[str]) -> dict:
    """Run ``command`` (which prints one JSON line), sampling its process tree's resident memory."""
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    peak = [0]

    def sample() -> None:
        while proc.poll() is None:
            peak[0] = max(peak[0], tree_rss_kib(proc.pid))
            time.sleep(0.1)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    out, _ = proc.communicate()
    thread.join()
    if proc.returncode:
        raise SystemExit(f"{command} failed with exit code {proc.returncode}")
    return {**json.loads(out.strip().splitlines()[-1]), "tree_kib": peak[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "melodiff-synthetic-midi")
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if any(size % PER_FOLDER for size in args.sizes):
        parser.error(f"sizes must be multiples of {PER_FOLDER}")
    files = max(args.sizes)
    if len(list(args.corpus.glob("*/*.mid"))) < files:
        t0 = time.perf_counter()
        size = write_corpus(args.corpus, files)
        print(f"made {files} synthetic MIDI files ({size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.0f} s")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {args.workers} workers")
    print("\n| files | melodies | time | files/s | melodies/s | main process peak | largest worker peak | "
          "process tree peak (sum) |\n|---|---|---|---|---|---|---|---|")
    for size in args.sizes:
        sources = [str(args.corpus / f"{i:03d}") for i in range(size // PER_FOLDER)]
        with tempfile.TemporaryDirectory() as tmp:
            r = measured_run([sys.executable, "-c", RUN, json.dumps(sources), str(Path(tmp) / "data"),
                              str(args.workers)])
        print(f"| {r['units']} | {r['melodies']} | {r['seconds']:.0f} s | {r['units'] / r['seconds']:.0f} | "
              f"{r['melodies'] / r['seconds']:.0f} | {r['self_kib'] / 1024:.0f} MiB | "
              f"{r['children_kib'] / 1024:.0f} MiB | {r['tree_kib'] / 1024:.0f} MiB |")


if __name__ == "__main__":
    main()
