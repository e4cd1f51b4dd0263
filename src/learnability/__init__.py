"""learnability: the shared package of the gated-learnability book.

Modules, one idea each: :mod:`cells` (recurrent cells and exact Jacobians), :mod:`symbolic` (SymPy models of the
cells), :mod:`timescales` (gate-induced time scales), :mod:`plots` (figure style).
"""

__version__ = "0.1.0"
