"""The 2-bar melody VAE (MusicVAE "cat-mel_2bar" design, docs/PAPER.md §2), in the exact maths of Magenta's model.

Shapes: B = batch, T = 32 steps, C = 90 classes, Z = z_size. Tokens are event ids (melody.py).
- Encoder: one bidirectional LSTM layer over one-hot tokens; h = concat(h_fw[T-1], h_bw[0]); mu = Dense(h);
  sigma = softplus(Dense(h)); z = mu + sigma * eps.
- Decoder: stacked LSTM; initial (c, h) of every layer = tanh(Dense(z)) split as [c0, h0, c1, h1, ...]; the input at
  step t is [one-hot(token[t-1]) (zeros at t = 0), z]; logits = Dense(h_top).
The LSTM forget-gate bias starts at 1.0 (Magenta adds forget_bias=1.0 at run time; we keep it inside bias_ih).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from melodiff.device import multinomial, randn
from melodiff.vae.config import VAEConfig


class MelodyVAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        self.encoder = nn.LSTM(c.num_classes, c.encoder_units, batch_first=True, bidirectional=True)
        self.mu = nn.Linear(2 * c.encoder_units, c.z_size)
        self.sigma = nn.Linear(2 * c.encoder_units, c.z_size)
        self.z_to_initial_state = nn.Linear(c.z_size, 2 * c.decoder_layers * c.decoder_units)
        self.decoder = nn.LSTM(c.num_classes + c.z_size, c.decoder_units, num_layers=c.decoder_layers,
                               batch_first=True)
        self.output_projection = nn.Linear(c.decoder_units, c.num_classes)
        with torch.no_grad():
            for lstm in (self.encoder, self.decoder):
                for name, p in lstm.named_parameters():
                    if name.startswith("bias_ih"):
                        units = p.shape[0] // 4
                        p.zero_()
                        p[units:2 * units] = 1.0  # forget gate (PyTorch gate order i, f, g, o)
                    elif name.startswith("bias_hh"):
                        p.zero_()

    # ---- encoder -----------------------------------------------------------------------------------------------
    def encode(self, tokens: torch.Tensor, generator: torch.Generator | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """tokens (B, T) int -> (z, mu, sigma), each (B, Z); z = mu + sigma * N(0, 1) drawn with ``generator``."""
        x = F.one_hot(tokens.long(), self.config.num_classes).float()
        _, (h_n, _) = self.encoder(x)  # h_n (2, B, H): forward direction's last step, backward direction's first
        h = torch.cat([h_n[0], h_n[1]], dim=-1)
        mu = self.mu(h)
        sigma = F.softplus(self.sigma(h))
        eps = randn(mu.shape, generator, mu)
        return mu + sigma * eps, mu, sigma

    # ---- decoder -----------------------------------------------------------------------------------------------
    def initial_state(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (B, Z) -> (h0, c0), each (layers, B, H), from tanh(Dense(z)) split as [c0, h0, c1, h1, ...]."""
        layers, units = self.config.decoder_layers, self.config.decoder_units
        s = torch.tanh(self.z_to_initial_state(z)).view(-1, layers, 2, units)
        c0 = s[:, :, 0].transpose(0, 1).contiguous()
        h0 = s[:, :, 1].transpose(0, 1).contiguous()
        return h0, c0

    def _step_inputs(self, z: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
        """previous (B, T') one-hot float, z (B, Z) -> decoder inputs (B, T', C + Z)."""
        return torch.cat([previous, z.unsqueeze(1).expand(-1, previous.shape[1], -1)], dim=-1)

    def decoder_logits(self, z: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (B, T, C): position t sees tokens[:, :t] (the input is shifted right by one)."""
        prev = F.one_hot(tokens.long(), self.config.num_classes).float()
        prev = torch.cat([torch.zeros_like(prev[:, :1]), prev[:, :-1]], dim=1)
        out, _ = self.decoder(self._step_inputs(z, prev), self.initial_state(z))
        return self.output_projection(out)

    def log_likelihood(self, z: torch.Tensor, tokens: torch.Tensor, steps: int | None = None) -> torch.Tensor:
        """(B,) log p(tokens | z) under the decoder (teacher-forced), over the first ``steps`` tokens (all: None)."""
        logp = torch.log_softmax(self.decoder_logits(z, tokens), dim=-1)
        return logp.gather(-1, tokens.long().unsqueeze(-1)).squeeze(-1)[:, :steps].sum(1)

    @torch.no_grad()
    def decode(self, z: torch.Tensor, temperature: float = 0.0, generator: torch.Generator | None = None,
               steps: int | None = None, prefix: torch.Tensor | None = None) -> torch.Tensor:
        """z (B, Z) -> tokens (B, T) int64, autoregressively; greedy (argmax) at temperature 0. ``prefix`` (B, P):
        the first P tokens, given (the decoder reads them, then goes on from there)."""
        given = 0 if prefix is None else prefix.shape[1]
        state, previous = self.read(z, prefix)
        made, _ = self.decode_from(z, state, previous, (steps or self.config.steps) - given, temperature, generator)
        return made if prefix is None else torch.cat([prefix.long(), made], dim=1)

    @torch.no_grad()
    def read(self, z: torch.Tensor, prefix: torch.Tensor | None = None
             ) -> tuple[tuple[torch.Tensor, torch.Tensor], torch.Tensor]:
        """The decoder's state (h, c) after reading the tokens ``prefix`` (B, P) from z's initial state, and its next
        step's token input (B, 1, C) (None or P = 0: the initial state and the start input)."""
        state = self.initial_state(z)
        previous = torch.zeros(z.shape[0], 1, self.config.num_classes, device=z.device, dtype=z.dtype)
        if prefix is not None and prefix.shape[1]:
            given = F.one_hot(prefix.long(), self.config.num_classes).to(z.dtype)
            _, state = self.decoder(self._step_inputs(z, torch.cat([previous, given[:, :-1]], 1)), state)
            previous = given[:, -1:]
        return state, previous

    @torch.no_grad()
    def decode_from(self, z: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], previous: torch.Tensor,
                    steps: int, temperature: float = 0.0, generator: torch.Generator | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``steps`` tokens (B, steps) int64 decoded on from ``state`` and ``previous`` (what :meth:`read` returns),
        greedy at temperature 0, and the log-probability (B, steps) of each under the decoder (untempered)."""
        out, logp = [], []
        for _ in range(steps):
            h, state = self.decoder(self._step_inputs(z, previous), state)
            logits = self.output_projection(h[:, 0])
            if temperature <= 0:
                token = logits.argmax(-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                token = multinomial(probs, generator).squeeze(1)
            out.append(token)
            logp.append(torch.log_softmax(logits, dim=-1).gather(-1, token.unsqueeze(-1)).squeeze(-1))
            previous = F.one_hot(token, self.config.num_classes).to(z.dtype).unsqueeze(1)
        if not out:
            empty = torch.zeros(z.shape[0], 0, device=z.device)
            return empty.long(), empty.to(z.dtype)
        return torch.stack(out, dim=1), torch.stack(logp, dim=1)
