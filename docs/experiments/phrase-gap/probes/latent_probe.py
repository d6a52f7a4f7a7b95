import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
LATENTS = sys.argv[2] if len(sys.argv) > 2 else "runs/latents.npz"  # the shipped model's latents (melodiff encode)
import numpy as np, torch
from melodiff.pipeline import Pipeline
from melodiff.options import SamplingOptions
from melodiff.metrics import structure as S
pipe = Pipeline.from_pretrained("default")
d = np.load(LATENTS, allow_pickle=True)
off, split = d["offsets"], d["split"]
x = d["x"]
idx = np.concatenate([np.arange(off[i], off[i+1]) for i in range(len(split)) if split[i] == 0])
real = x[idx]
with torch.no_grad():
    for name, opt in [("dpm50", SamplingOptions(guidance=0, cadence=0)), ("ddpm", SamplingOptions(sampler="ddpm", guidance=0, cadence=0))]:
        g = pipe.sample_latents(16, 300 if name=="dpm50" else 100, opt, torch.Generator().manual_seed(1)).reshape(-1, x.shape[1]).numpy()
        print(name, "per-dim std ratio gen/real: mean %.3f min %.3f max %.3f" % tuple((lambda r: (r.mean(), r.min(), r.max()))(g.std(0)/real.std(0))))
        print("  mean abs diff of means (in real std)", np.abs((g.mean(0)-real.mean(0))/real.std(0)).mean())
        print("  norm real %.2f gen %.2f" % (np.linalg.norm(real,axis=1).mean(), np.linalg.norm(g,axis=1).mean()))
        # latent classifier (logistic on x plus squares)
        n = min(len(g), 4000); rng = np.random.default_rng(0)
        a = real[rng.choice(len(real), n, replace=False)]; b = g[rng.choice(len(g), n, replace=False)]
        X = np.concatenate([a, b]); X = np.hstack([X, X**2]); y = np.r_[np.zeros(n), np.ones(n)]
        fold = np.concatenate([rng.permutation(n) % 5]*2); acc=[]
        for k in range(5):
            tr, te = fold!=k, fold==k; m, s = X[tr].mean(0), X[tr].std(0)+1e-6
            w = S._fit_logistic((X[tr]-m)/s, y[tr]); sc = np.hstack([(X[te]-m)/s, np.ones((te.sum(),1))])@w
            acc.append(((sc>0)==(y[te]==1)).mean())
        print("  latent chunk classifier (quadratic logistic)", np.mean(acc))
