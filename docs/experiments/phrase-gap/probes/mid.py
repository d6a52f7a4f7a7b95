import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
import numpy as np, torch
from melodiff.pipeline import Pipeline
from melodiff.options import SamplingOptions
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
from melodiff.music.melody import Melody
pipe = Pipeline.from_pretrained("default")
test, _ = load_melodies(DATA, "test", ("4/4",))
train, _ = load_melodies(DATA, "train", ("4/4",))
gen = pipe.generate(32, 400, seed=5, form="auto")
def clf(a, b):
    n = min(len(a), len(b), 2000); rng = np.random.default_rng(0)
    a = [a[i] for i in rng.choice(len(a), n, replace=False)]; b = [b[i] for i in rng.choice(len(b), n, replace=False)]
    x = np.stack([S.phrase_features(p) for p in a + b]); y = np.r_[np.zeros(n), np.ones(n)]
    fold = np.concatenate([rng.permutation(n) % 5]*2); r=[]
    for k in range(5):
        tr, te = fold!=k, fold==k; m, s = x[tr].mean(0), x[tr].std(0)+1e-6
        w = S._fit_logistic((x[tr]-m)/s, y[tr]); sc = np.hstack([(x[te]-m)/s, np.ones((te.sum(),1))])@w
        r.append(((sc>0)==(y[te]==1)).mean())
    return f"{np.mean(r):.3f} (n={n})"
def mid(mels, bars):
    return [p for m in mels for p in S.phrases([m], bars)[1:-1]]
def ends(mels, bars, which):
    return [S.phrases([m], bars)[which] for m in mels if len(S.phrases([m], bars)) >= 2]
real = test + train  # more real middle phrases
for bars in (2, 8):
    print(bars, "all: test vs gen", clf(S.phrases(test, bars), S.phrases(gen, bars)))
    print(bars, "middle vs middle (real: test+train)", clf(mid(real, bars), mid(gen, bars)))
    print(bars, "first vs first", clf(ends(real, bars, 0), ends(gen, bars, 0)))
    print(bars, "last vs last", clf(ends(real, bars, -1), ends(gen, bars, -1)))
# real 32+ bar tunes' middle phrases vs test phrases
