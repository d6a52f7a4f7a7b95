"""melodiff: symbolic music generation with diffusion models in the latent space of a melody VAE."""

__version__ = "0.1.0"
