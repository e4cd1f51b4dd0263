"""Shared test helpers: float64 everywhere, deterministic random inputs."""

import torch
from hypothesis import settings

torch.set_default_dtype(torch.float64)
# property-based tests draw the same examples on every run: the suite is deterministic, as the book is
settings.register_profile("deterministic", derandomize=True, database=None)
settings.load_profile("deterministic")


def random_point(cell, batch: int, seed: int, scale: float = 1.0):
    """A random input x_t (B, m) and a random state (flat state of size d) for ``cell``."""
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(batch, cell.input_size, generator=gen)
    flat = scale * torch.randn(batch, cell.state_size, generator=gen)
    return x, cell.unflatten_state(flat)


def randomise_layer_norm(cell, seed: int) -> None:
    """LayerNorm starts at gamma = 1, beta = 0; move it off that point so tests see the general case."""
    if cell.layer_norm:
        gen = torch.Generator().manual_seed(seed + 7)
        with torch.no_grad():
            cell.ln_weight.copy_(0.5 + torch.rand(cell.hidden_size, generator=gen))
            cell.ln_bias.copy_(0.6 * torch.rand(cell.hidden_size, generator=gen) - 0.3)
