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


@pytest.mark.parametrize("shift", [0.0, 0.05, 0.1, 0.3])
@pytest.mark.parametrize("ties", [False, True])
def test_ks_matches_scipy_at_the_sensors_window_sizes(shift, ties):
    """The numpy KS test: scipy's statistic exactly, its p-value within a factor 1.5 (exact vs asymptotic)."""
    from scipy import stats  # the reference; the orchestrator itself no longer imports it

    rng = np.random.default_rng(int(shift * 100) + ties)
    for _ in range(10):
        reference, recent = rng.lognormal(3.5, 0.4, 2000), rng.lognormal(3.5 + shift, 0.4, 500)
        if ties:
            reference, recent = np.round(reference), np.round(recent)
        want = stats.ks_2samp(reference, recent)
        statistic, pvalue = drift.ks_2samp(reference, recent)
        assert statistic == pytest.approx(want.statistic, abs=1e-12)
        if want.pvalue > 1e-12:
            assert 1 / 1.5 < pvalue / want.pvalue < 1.5, (pvalue, want.pvalue)
        else:
            assert pvalue < 1e-10


def test_ks_needs_rows_in_both_windows():
    with pytest.raises(ValueError, match="both windows"):
        drift.ks_2samp(np.array([1.0]), np.array([]))


def test_serving_the_orchestrator_does_not_import_scipy():
    """scipy.stats was 59 MiB of the orchestrator's RSS for one function."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys, services.orchestrator.api; print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    root = Path(__file__).parents[3]
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True, cwd=root
    )
    assert out.stdout.strip() == "[]"
