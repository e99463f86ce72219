"""Inception Score (Salimans et al. 2016), from a classifier's logits or probabilities.

    IS = exp( E_x KL( p(y|x) ‖ p(y) ) ),   p(y) = E_x p(y|x)

computed on each of ``splits`` (10, the standard) contiguous, equal chunks of the samples; the
score is the mean over chunks and the spread their standard deviation. Contiguous chunks are
only right when the samples are in random order: class-sorted logits give each chunk few
classes and a much lower score (12.15 instead of 34.33 on one test). ``shuffle_seed=s``
permutes the samples first with ``numpy.random.RandomState(s).permutation`` — the protocol of
torch-fidelity, whose default is ``s = 2020``; ``inception_score(logits, shuffle_seed=2020)``
reproduces its number on the same logits.

Which logits: torch-fidelity's IS uses the Inception ``fc`` layer *without* its bias
("logits_unbiased"); otgen's Inception ``logits`` include the bias, as pytorch-fid and the
original TF code do. To match torch-fidelity, pass ``pool3 @ fc.weight.T`` (docs/metrics.md).

A classifier that is certain about every sample (one-hot p(y|x)) and spreads the samples
uniformly over K classes attains the maximum, IS = K; a classifier that outputs the same
distribution for every sample gives IS = 1. As with FID, the number depends on the classifier:
otgen labels it by extractor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from otgen.errors import OTGenError
from otgen.metrics._inputs import as_features
from otgen.utils.checks import ArrayLike, check_int

N_SPLITS = 10
_PROB_TOL = 1e-4  # rows of user-given probabilities must sum to 1 within this


@dataclass(frozen=True)
class InceptionScore:
    mean: float  # mean over splits of exp(E KL(p(y|x) || p(y)))
    std: float  # standard deviation over splits
    split_scores: tuple[float, ...]


def inception_score(
    logits: ArrayLike | None = None,
    *,
    probs: ArrayLike | None = None,
    splits: int = N_SPLITS,
    shuffle_seed: int | None = None,
) -> InceptionScore:
    """IS from ``logits`` (n, K) or ``probs`` (n, K) (exactly one), over ``splits`` chunks
    (samples permuted first when ``shuffle_seed`` is given; see the module docstring)."""
    if (logits is None) == (probs is None):
        raise OTGenError("inception_score needs exactly one of logits or probs")
    splits = check_int(splits, "splits")
    log_p = _log_probs_from_logits(logits) if probs is None else _log_probs_from_probs(probs)
    n = log_p.shape[0]
    if n < splits:
        raise OTGenError(f"inception_score needs at least {splits} samples (one per split)")
    if shuffle_seed is not None:
        log_p = log_p[
            np.random.RandomState(check_int(shuffle_seed, "shuffle_seed", minimum=0)).permutation(n)
        ]
    scores = []
    for i in range(splits):
        part = log_p[i * n // splits : (i + 1) * n // splits]
        scores.append(_split_score(part))
    s = np.asarray(scores)
    return InceptionScore(float(s.mean()), float(s.std()), tuple(float(v) for v in s))


def _split_score(log_p: np.ndarray) -> float:
    """exp(mean_x KL(p(.|x) ‖ p̄)) for one chunk, from log-probabilities (n, K)."""
    p = np.exp(log_p)
    p_bar = p.mean(axis=0)
    # p log p is taken as 0 where p = 0 (exp(-inf) = 0 times a finite log p̄ gives 0).
    log_p_bar = np.log(np.where(p_bar > 0, p_bar, 1.0))
    terms = np.where(p > 0, p * (np.where(p > 0, log_p, 0.0) - log_p_bar), 0.0)
    return float(np.exp(terms.sum(axis=1).mean()))


def _log_probs_from_logits(logits: ArrayLike) -> np.ndarray:
    z = as_features(logits, "logits")
    z = z - z.max(axis=1, keepdims=True)  # log-sum-exp shift: exp never overflows
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _log_probs_from_probs(probs: ArrayLike) -> np.ndarray:
    p = as_features(probs, "probs")
    if (p < 0).any():
        raise OTGenError("probs has negative entries")
    if np.abs(p.sum(axis=1) - 1.0).max() > _PROB_TOL:
        raise OTGenError("probs rows must sum to 1 (pass logits for unnormalised scores)")
    with np.errstate(divide="ignore"):
        return np.log(p / p.sum(axis=1, keepdims=True))
