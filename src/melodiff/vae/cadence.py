"""Cadence decoding (docs/DEVIATIONS.md, "Controls by guidance"; not in the paper): a generated piece whose last note
is not its Krumhansl-Kessler tonic has its last bar decoded again from its chunk's latent, several times, and takes
the likeliest candidate that ends on the tonic; a piece none of them mends has its whole last chunk (two bars)
decoded again the same way (a piece that keeps only one bar of its last chunk: that bar, in one pass)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from melodiff.music.keys import last_pitch_class, last_pitch_classes, melody_key
from melodiff.music.melody import Melody
from melodiff.vae.model import MelodyVAE

TEMPERATURE = 1.0  # the decoder's temperature for the candidate endings (its own distribution: 0.7 mended fewer)
BATCH = 4096  # candidate chunks decoded at once


def heard(melody: Melody, end_steps: int) -> Melody:
    """The part of ``melody`` that is heard when its last chunk keeps only ``end_steps`` steps."""
    return melody.with_ids(melody.ids[:len(melody) - melody.chunk_steps + end_steps])


@torch.no_grad()
def cadenced(vae: MelodyVAE, melodies: Sequence[Melody], z_last: torch.Tensor, candidates: int,
             generator: torch.Generator | None = None, end_steps: int | None = None,
             sources: np.ndarray | None = None) -> list[Melody]:
    """``melodies`` whose last note is not their tonic, each with its last bar decoded again from ``z_last`` (B, Z),
    the latent its last chunk was decoded from, ``candidates`` times at TEMPERATURE (the decoder reads the chunk's
    bar before, as decoded, and goes on): the candidate the decoder finds likeliest (over the steps heard) whose
    last note is the tonic and which leaves the piece's tonic where it was takes the last chunk's place, and the
    place of every chunk that repeats the same music (``sources`` (B, chunks): the chunk each one repeats, so that a
    form's equal sections stay equal). A piece none of them mends has its whole last chunk decoded again, as many
    times, the same way; one none of those mends keeps its ending. ``end_steps``: the steps of the last chunk the
    piece keeps (it may end mid-chunk; None: all of it). The melodies share one meter."""
    if not melodies:
        return []
    chunk, bar = melodies[0].chunk_steps, melodies[0].steps_per_bar
    end_steps = chunk if end_steps is None else end_steps
    keys = [melody_key(heard(m, end_steps)) for m in melodies]
    out = list(melodies)
    for kept in sorted({max(end_steps - bar, 0), 0}, reverse=True):  # steps of the last chunk kept as decoded
        wrong = [i for i, (m, key) in enumerate(zip(out, keys, strict=True))
                 if key is not None and last_pitch_class(heard(m, end_steps).ids) != key[0]]
        if not wrong or candidates < 1:
            break
        tokens, logp = _endings(vae, [out[i] for i in wrong], z_last[wrong], kept, end_steps, candidates, generator)
        ends = last_pitch_classes(tokens[..., :end_steps])  # (wrong, candidates), -1 without a note
        for row, i in enumerate(wrong):
            good = np.flatnonzero(ends[row] == keys[i][0])
            same = [-1] if sources is None else np.flatnonzero(sources[i] == sources[i][-1])
            for k in good[np.argsort(-logp[row][good], kind="stable")]:
                chunks = out[i].chunks().copy()
                chunks[same] = tokens[row, k]
                candidate = Melody.from_chunks(chunks, out[i].meter)
                key = melody_key(heard(candidate, end_steps))
                if key is not None and key[0] == keys[i][0]:
                    out[i] = candidate
                    break
    return out


def _endings(vae: MelodyVAE, melodies: Sequence[Melody], z_last: torch.Tensor, kept: int, end_steps: int,
             candidates: int, generator: torch.Generator | None) -> tuple[np.ndarray, np.ndarray]:
    """``candidates`` last chunks for each melody, decoded at TEMPERATURE from its ``z_last`` after its last chunk's
    first ``kept`` steps as they are, (melodies, candidates, chunk steps), and their log-probabilities over the
    steps heard after those (melodies, candidates; the kept steps' are one number per melody, left out)."""
    device = next(vae.parameters()).device
    chunk = melodies[0].chunk_steps
    prefix = torch.as_tensor(np.stack([m.chunks()[-1, :kept] for m in melodies])).to(device)
    z = z_last.to(device)
    (h, c), previous = vae.read(z, prefix)  # once per piece, then shared by its candidates
    made, logp = [], []
    for rows in torch.arange(len(melodies) * candidates, device=device).split(BATCH):
        piece = rows // candidates  # each candidate's piece: its state is expanded one batch at a time
        tokens, scores = vae.decode_from(z[piece], (h[:, piece], c[:, piece]), previous[piece], chunk - kept,
                                         TEMPERATURE, generator)
        made.append(tokens.cpu())
        logp.append(scores[:, :end_steps - kept].sum(1).cpu())  # over the steps heard (the prefix: one per piece)
    prefix = prefix.cpu().long().repeat_interleave(candidates, 0)
    tokens = torch.cat([prefix, torch.cat(made)], 1).numpy().reshape(len(melodies), candidates, chunk)
    return tokens, torch.cat(logp).view(len(melodies), candidates).numpy()
