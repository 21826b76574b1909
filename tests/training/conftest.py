"""Fixtures of the training tests: constant-predictor baselines the trained models must beat."""
from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def movielens_mean_rmse(datasets_dir) -> float:
    """Test RMSE on MovieLens-100K u1.test of always predicting the mean training rating (the
    constant predictor a rating model must beat; about 1.15)."""
    from graphplat.datasets import load_dataset

    feats = load_dataset("movielens", datasets_dir).graph.edge_features
    train = np.asarray(feats[("user", "rates", "item")]["rating"], np.float64)
    test = np.asarray(feats[("user", "rates-test", "item")]["rating"], np.float64)
    return float(np.sqrt(((test - train.mean()) ** 2).mean()))
