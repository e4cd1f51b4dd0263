"""Part I beyond the contract modules: gates next to optimizers, anisotropy, gate-induced time scales."""
