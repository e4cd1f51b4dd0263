"""Trajectories recorded by the Part III experiments (book/p3_*.md), as frozen dataclasses.

The solvers in :mod:`learnability.linear_dynamics`, :mod:`learnability.integrate.reduced` and
:mod:`learnability.integrate.sampled_noise` return plain dicts of arrays (their public contract); the experiments wrap
what they keep of them in these classes with :meth:`from_record`. Throughout, T is the number of records and ``time``
is gradient-flow time (learning rate times step for descent).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


class _FromRecord:
    @classmethod
    def from_record(cls, record: dict):
        """The fields of this class taken from a solver's dict (extra keys, such as the final weights, dropped)."""
        missing = [f.name for f in fields(cls) if f.name not in record]
        if missing:
            raise ValueError(f"the record lacks {missing} for {cls.__name__}; it has {sorted(record)}")
        return cls(**{f.name: record[f.name] for f in fields(cls)})


@dataclass(frozen=True)
class LossCurve(_FromRecord):
    """A loss over time.

    * ``time``: (T,) times;
    * ``loss``: (T,) the population loss (eq-population-loss) or a model of it.
    """

    time: np.ndarray
    loss: np.ndarray


@dataclass(frozen=True)
class Descent(_FromRecord):
    """Full-batch gradient descent on (u, v, W) (:func:`learnability.linear_dynamics.gradient_descent`).

    * ``time``: (T,) gradient-flow time, learning rate times step;
    * ``loss``: (T,) the population loss (eq-population-loss);
    * ``eigenvalues``: (T, N) complex eigenvalues of W;
    * ``uv``: (T,) u . v, the full network's counterpart of the residue p (eq-outlier-ode);
    * ``u_norm``, ``v_norm``: (T,) |u| and |v|;
    * ``drift``: (T,) the largest entry of |C(t) - C(0)| for the conserved matrix C (eq-conserved-matrix), nonzero
      only by the O(step) error of descent.
    """

    time: np.ndarray
    loss: np.ndarray
    eigenvalues: np.ndarray
    uv: np.ndarray
    u_norm: np.ndarray
    v_norm: np.ndarray
    drift: np.ndarray


@dataclass(frozen=True)
class SampledDescent(_FromRecord):
    """SGD by backpropagation through sampled Euler-Maruyama trials
    (:func:`learnability.integrate.sampled_noise.bptt_descent`).

    * ``time``: (T,) gradient-flow time, learning rate times step;
    * ``sampled``: (T,) the minibatch loss the step descended (an estimate of eq-em-loss);
    * ``loss``: (T,) the exact population loss (eq-population-loss) at the same parameters;
    * ``eigenvalues``: (T, N) complex eigenvalues of W.
    """

    time: np.ndarray
    sampled: np.ndarray
    loss: np.ndarray
    eigenvalues: np.ndarray


@dataclass(frozen=True)
class OutlierTrajectory:
    """The 2-D outlier ODE (eq-outlier-ode) from :func:`learnability.integrate.reduced.outlier_ode`.

    * ``time``: (T,) times;
    * ``residue``: (T,) the residue p;
    * ``outlier``: (T,) the outlier eigenvalue lambda;
    * ``loss``: (T,) the aligned loss (eq-aligned-loss) along the solution.
    """

    time: np.ndarray
    residue: np.ndarray
    outlier: np.ndarray
    loss: np.ndarray

    @classmethod
    def from_record(cls, record: dict) -> OutlierTrajectory:
        """From the dict of ``outlier_ode`` (keys time, p, lambda, loss)."""
        return cls(record["time"], record["p"], record["lambda"], record["loss"])


@dataclass(frozen=True)
class PairTrajectory(_FromRecord):
    """The five-variable pair flow (eq-pair-flow) from :func:`learnability.integrate.reduced.pair_ode`.

    * ``time``: (T,) times;
    * ``x``, ``y``, ``alpha``, ``beta``, ``gamma``: (T,) the coordinates of the pair manifold (eq-pair-manifold);
    * ``loss``: (T,) the loss on the manifold (eq-pair-loss);
    * ``eigenvalues``: (T, 2) complex eigenvalues alpha +- sqrt(gamma^2 - beta^2) of W restricted to the plane;
    * ``conserved``: (T,) x y + 2 beta gamma, constant under the flow (eq-pair-conservation).
    """

    time: np.ndarray
    x: np.ndarray
    y: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    gamma: np.ndarray
    loss: np.ndarray
    eigenvalues: np.ndarray
    conserved: np.ndarray
