"""Drift statistics between a reference (training) window and a recent window.

Per feature: the population stability index over the reference's deciles and
a two-sample Kolmogorov-Smirnov test. Large samples make any KS p-value tiny,
so drift needs the p-value under its threshold AND the statistic over a floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

EPS = 1e-4


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float


def psi(reference: np.ndarray, recent: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``recent`` against ``reference``'s quantile bins."""
    reference = np.asarray(reference, dtype=float)
    recent = np.asarray(recent, dtype=float)
    if reference.size == 0 or recent.size == 0:
        raise ValueError("psi: both windows need rows")
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_share = np.bincount(np.searchsorted(edges, reference, side="left"), minlength=edges.size + 1) / reference.size
    new_share = np.bincount(np.searchsorted(edges, recent, side="left"), minlength=edges.size + 1) / recent.size
    ref_share = np.clip(ref_share, EPS, None)
    new_share = np.clip(new_share, EPS, None)
    return float(np.sum((new_share - ref_share) * np.log(new_share / ref_share)))


def feature_drift(feature: str, reference: np.ndarray, recent: np.ndarray) -> FeatureDrift:
    result = stats.ks_2samp(reference, recent)
    return FeatureDrift(feature, psi(reference, recent), float(result.statistic), float(result.pvalue))


def is_drifted(d: FeatureDrift, *, psi_threshold: float, ks_pvalue: float, ks_statistic: float) -> bool:
    return d.psi > psi_threshold or (d.ks_pvalue < ks_pvalue and d.ks_statistic > ks_statistic)
