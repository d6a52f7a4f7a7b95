import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
"""Is the issue's reference fair to 32-bar pieces? Real tunes of at least 32 bars (cut to 32) against the test
melodies (mostly shorter, scored whole), and generated 32-bar pieces against those long real tunes."""
import numpy as np
from melodiff.pipeline import Pipeline
from melodiff.options import SamplingOptions
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
test, _ = load_melodies(DATA, "test", ("4/4",))
train, _ = load_melodies(DATA, "train", ("4/4",))
long_train = [m.with_ids(m.ids[:32 * 16]) for m in train if len(m) >= 32 * 16]
long_test = [m.with_ids(m.ids[:32 * 16]) for m in test if len(m) >= 32 * 16]
print(len(long_train), "training tunes of 32+ bars;", len(long_test), "test tunes of 32+ bars")
def show(label, real, gen):
    c8, c2 = S.phrase_classifier(real, gen), S.phrase_classifier(real, gen, bars=2)
    print(f"{label:60s} 8 bars {c8['accuracy']:.3f} ± {c8['accuracy_se']:.3f}  2 bars {c2['accuracy']:.3f} ± {c2['accuracy_se']:.3f}", flush=True)
show("real 32+-bar training tunes vs test melodies", test, long_train)
show("real 32+-bar test tunes vs 32+-bar training tunes", long_train, long_test)
pipe = Pipeline.from_pretrained("default")
gen = pipe.generate(32, 400, seed=3, form="auto")
free = pipe.generate(32, 400, seed=3, form="none", options=SamplingOptions(guidance=0, cadence=0))
show("defaults vs test melodies", test, gen)
show("defaults vs 32+-bar training tunes", long_train, gen)
show("free unguided vs 32+-bar training tunes", long_train, free)
