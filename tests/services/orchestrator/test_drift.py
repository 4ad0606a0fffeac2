import numpy as np
import pytest

from services.orchestrator import drift


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    rng = np.random.default_rng(1)
    reference = rng.lognormal(3.5, 0.4, 5000)
    same = rng.lognormal(3.5, 0.4, 2000)
    shifted = same * 1.6
    assert drift.psi(reference, same) < 0.05
    assert drift.psi(reference, shifted) > 0.5


def test_feature_drift_flags_a_shift_by_psi_and_ks():
    rng = np.random.default_rng(2)
    reference = rng.normal(0, 1, 3000)
    kw = {"psi_threshold": 0.25, "ks_pvalue": 0.001, "ks_statistic": 0.15}
    calm = drift.feature_drift("value", reference, rng.normal(0, 1, 1000))
    moved = drift.feature_drift("value", reference, rng.normal(1.0, 1, 1000))
    assert not drift.is_drifted(calm, **kw)
    assert drift.is_drifted(moved, **kw)
    assert moved.ks_pvalue < 1e-10 and moved.ks_statistic > 0.3


def test_psi_needs_rows_in_both_windows():
    with pytest.raises(ValueError, match="both windows"):
        drift.psi(np.array([]), np.array([1.0]))


def test_psi_copes_with_a_constant_reference():
    assert drift.psi(np.zeros(100), np.zeros(50)) == pytest.approx(0.0)
    assert drift.psi(np.zeros(100), np.ones(50)) > 1
