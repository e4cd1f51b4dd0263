"""Part III: the reduced models, the SymPy derivations and the sampled-noise (torch) paths."""
