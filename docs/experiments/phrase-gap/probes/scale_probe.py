import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
import numpy as np, torch
from melodiff.pipeline import Pipeline
from melodiff.options import SamplingOptions
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
from melodiff.music.keys import melody_key
from melodiff.music.melody import Melody, MIN_PITCH, NUM_CLASSES
pipe = Pipeline.from_pretrained("default")
test, _ = load_melodies(DATA, "test", ("4/4",))
vae = pipe.vae
proj = vae.output_projection
BIAS = {"b": None}
class Biased(torch.nn.Module):
    def __init__(s, p): super().__init__(); s.p = p
    def forward(s, h):
        out = s.p(h)
        return out if BIAS["b"] is None else out + BIAS["b"]
vae.output_projection = Biased(proj)
MAJ = {0, 2, 4, 5, 7, 9, 11}; MIN = {0, 2, 3, 5, 7, 8, 10, 11}
pcs = (np.arange(NUM_CLASSES) - 2 + MIN_PITCH) % 12
names = ["key_stability", "tonic_ending", "pitch_range", "interval_distance", "notes_per_bar", "rest_fraction"]
# real out-of-key rate
def out_rate(mels):
    o = t = 0
    for m in mels:
        k = melody_key(m)
        if k is None: continue
        sc = MIN if k[1] else MAJ
        p = np.array([n.pitch for n in m.to_notes()])
        o += np.sum([((q - k[0]) % 12) not in sc for q in p]); t += len(p)
    return o / t
print("real out-of-key note share %.3f" % out_rate(test))
with torch.no_grad():
    opts = SamplingOptions(guidance=0, cadence=0)
    x = pipe.sample_latents(16, 400, opts, torch.Generator().manual_seed(3))
    z = pipe.normalizer.inverse(x, torch.Generator().manual_seed(4))
    flat = z.flatten(0, 1)
    def decode():
        tok = vae.decode(flat)
        return [Melody.from_chunks(t, pipe.meter) for t in tok.view(400, 16, -1).numpy()]
    base = decode()
    keys = [melody_key(m) or (0, False) for m in base]
    for lam in [0.0, 1.0, 2.0, 4.0, 100.0]:
        b = torch.zeros(400, NUM_CLASSES)
        for i, (t, mi) in enumerate(keys):
            sc = MIN if mi else MAJ
            bad = np.array([c >= 2 and ((pcs[c] - t) % 12) not in sc for c in range(NUM_CLASSES)])
            b[i, torch.from_numpy(bad)] = -lam
        BIAS["b"] = b.repeat_interleave(16, 0)
        mels = decode()
        st = S.structure_statistics(mels, test)
        c2 = S.phrase_classifier(test, mels, bars=2); c8 = S.phrase_classifier(test, mels)
        print(f"lambda {lam}: out-of-key {out_rate(mels):.3f} 2-bar {c2['accuracy']:.3f} 8-bar {c8['accuracy']:.3f}", {k: round(float(v[0]), 3) for k, v in st.items() if k in names}, flush=True)
