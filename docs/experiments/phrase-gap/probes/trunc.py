import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
import sys, numpy as np, torch
import melodiff.pipeline as P
from melodiff.pipeline import Pipeline
from melodiff.options import SamplingOptions
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
pipe = Pipeline.from_pretrained("default")
test, _ = load_melodies(DATA, "test", ("4/4",))
orig = P.randn
names = ["key_stability", "tonic_ending", "pitch_range", "rest_fraction", "interval_distance", "notes_per_bar"]
for scale in [1.0, 0.9, 0.8, 0.7]:
    P.randn = lambda *a, s=scale, **k: orig(*a, **k) * s
    gen = pipe.generate(32, 400, seed=3, form="none", options=SamplingOptions(guidance=0, cadence=0))
    st = S.structure_statistics(gen, test)
    c2 = S.phrase_classifier(test, gen, bars=2); c8 = S.phrase_classifier(test, gen)
    print(f"x_T scale {scale}: 2-bar {c2['accuracy']:.3f} 8-bar {c8['accuracy']:.3f}", {k: round(float(v[0]), 3) for k, v in st.items() if k in names}, flush=True)
