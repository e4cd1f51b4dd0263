"""learnability: the shared package of the gated-learnability book, one module per idea (README, "Layout").

Part I, gates as effective learning rates: :mod:`cells`, :mod:`symbolic`, :mod:`transport`, :mod:`effective_lr`, and
the subpackage :mod:`gates` (time scales, gates next to optimizers, anisotropy).
Part II, the learnability window: :mod:`stable`, :mod:`window`, :mod:`spectra`, :mod:`diagnostics`,
:mod:`window_analysis`.
Part III, learning to integrate: :mod:`linear_dynamics` and the subpackage :mod:`integrate` (reduced models, SymPy
derivations, sampled-noise paths).
Shared: :mod:`tasks`, :mod:`training`, :mod:`errata`, :mod:`extension`, :mod:`experiments` (one module per experiment),
:mod:`fastpaths` (isolated fast kernels), :mod:`plots`, :mod:`cli`; the book's machinery is in :mod:`support`.
"""

__version__ = "0.1.0"
