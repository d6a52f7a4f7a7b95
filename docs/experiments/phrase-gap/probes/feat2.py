import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
import numpy as np, torch
from melodiff.pipeline import Pipeline
from melodiff.options import SamplingOptions
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
pipe = Pipeline.from_pretrained("default")
test, _ = load_melodies(DATA, "test", ("4/4",))
gen = pipe.generate(32, 200, seed=5, form="none", options=SamplingOptions(guidance=0, cadence=0))
a = np.stack([S.phrase_features(p) for p in S.phrases(test, 2)]); b = np.stack([S.phrase_features(p) for p in S.phrases(gen, 2)])
d = (b.mean(0) - a.mean(0)) / (np.concatenate([a, b]).std(0) + 1e-9)
labels = [f"int{i-12:+d}" for i in range(25)] + [f"dur{i+1}" for i in range(16)] + [f"pc{i}" for i in range(12)] + [f"pos{i}" for i in range(16)] + ["range", "rest", "density"]
for i in np.argsort(-np.abs(d))[:16]:
    print(f"{labels[i]:>8} {d[i]:+.2f}  test {a[:, i].mean():.3f} gen {b[:, i].mean():.3f}")
# per-feature-group classifier
def acc(cols):
    x = np.concatenate([a[:3000, cols], b[:3000, cols]]); n = min(len(a), len(b), 3000)
    x = np.concatenate([a[:n][:, cols], b[:n][:, cols]]); y = np.r_[np.zeros(n), np.ones(n)]
    rng = np.random.default_rng(0); fold = np.concatenate([rng.permutation(n) % 5]*2); r=[]
    for k in range(5):
        tr, te = fold!=k, fold==k; m, s = x[tr].mean(0), x[tr].std(0)+1e-6
        w = S._fit_logistic((x[tr]-m)/s, y[tr]); sc = np.hstack([(x[te]-m)/s, np.ones((te.sum(),1))])@w
        r.append(((sc>0)==(y[te]==1)).mean())
    return np.mean(r)
groups = {"intervals": range(0,25), "durations": range(25,41), "pitch classes": range(41,53), "onsets": range(53,69), "range/rest/density": range(69,72)}
for g, cols in groups.items(): print(g, round(acc(list(cols)), 3))
