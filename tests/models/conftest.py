from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="session")
def purchases() -> pd.DataFrame:
    """Labelled purchases from the load generator (1% anomalies of every kind), small and seeded."""
    from loadgen.dataset import labelled_purchases

    return labelled_purchases(6000, 7)


@pytest.fixture(scope="session")
def held_out() -> pd.DataFrame:
    from loadgen.dataset import labelled_purchases

    return labelled_purchases(8000, 1007)


@pytest.fixture
def plain_rows() -> pd.DataFrame:
    """Workshop-shaped rows made here with numpy: tax, shipping, value only, no labels."""
    rng = np.random.default_rng(3)
    value = rng.lognormal(3.5, 0.7, 600).round(2)
    return pd.DataFrame({"tax": (value * 0.2).round(2), "shipping": rng.choice([0.0, 4.9, 5.9], 600), "value": value})
