import sys
DATA = sys.argv[1] if len(sys.argv) > 1 else "data/folk"  # the prepared 4/4 dataset
import numpy as np
from melodiff.data.prepare import load_melodies
from melodiff.metrics import structure as S
test, _ = load_melodies(DATA, "test", ("4/4",))
lens = np.array([len(m)//16 for m in test]); print("bars: quantiles", np.percentile(lens, [10,25,50,75,90]), "n", len(test))
def rest_share(ph): return np.mean([S.phrase_features(p)[-2] for p in ph])
first = [S.phrases([m], 2)[0] for m in test if S.phrases([m], 2)]
last = [S.phrases([m], 2)[-1] for m in test if len(S.phrases([m], 2)) > 2]
mid = [p for m in test for p in S.phrases([m], 2)[1:-1]]
print("rest share 2-bar: first %.3f mid %.3f last %.3f" % (rest_share(first), rest_share(mid), rest_share(last)))
print("num 8-bar phrases per tune:", np.bincount([len(S.phrases([m])) for m in test]))
