import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
import time, numpy as np, torch
import melodiff.vae.cadence as C
from melodiff.pipeline import Pipeline
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
pipe = Pipeline.from_pretrained("default")
test, _ = load_melodies(DATA, "test", ("4/4",))
orig = C.cadenced
T = {"t": 0.0}
def timed(*a, **k):
    t = time.perf_counter(); r = orig(*a, **k); T["t"] += time.perf_counter() - t; return r
import melodiff.pipeline
melodiff.pipeline.cadenced = timed
for r in [64, 16, 8, 64, 16, 8]:
    C.ROUND = r; T["t"] = 0.0
    t0 = time.perf_counter()
    mels = [m for s in range(10) for m in pipe.generate(32, 40, seed=100 + s, form="auto")]
    total = time.perf_counter() - t0
    st = S.structure_statistics(mels, test)
    print(f"ROUND {r}: tonic {st['tonic_ending'][0]:.3f} key {st['key_stability'][0]:.3f} cadence {T['t']:.1f} s of {total:.1f} s", flush=True)
