"""Choosing the slide-pooling K on validation slides (domains.pathology.evaluation)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domains.pathology.evaluation import choose_top_k, slide_scores


def test_best_validation_k_wins_over_the_prior() -> None:
    assert choose_top_k({1: 0.5, 3: 0.75, 5: 0.5, 10: 0.5, 20: 0.5}, default=5) == 3


def test_ties_go_to_the_prior_not_to_an_end_of_the_list() -> None:
    every_k_ties = {1: 0.5, 3: 0.5, 5: 0.5, 10: 0.5, 20: 0.5}
    assert choose_top_k(every_k_ties, default=5) == 5
    assert choose_top_k({1: 1.0, 10: 1.0, 20: 1.0}, default=5) == 1  # nearest to 5
    assert choose_top_k({3: 1.0, 7: 1.0, 20: 0.5}, default=5) == 3  # as near: the smaller


def test_nothing_measured_gives_the_prior() -> None:
    assert choose_top_k({}, default=5) == 5
    assert choose_top_k({1: math.nan, 5: math.nan}, default=10) == 10
    assert choose_top_k({1: math.nan, 20: 0.5}, default=5) == 20
    with pytest.raises(ValueError, match="K must be >= 1"):
        choose_top_k({1: 0.5}, default=0)


def test_a_small_tumour_region_needs_a_small_k() -> None:
    """Why ties lean small: 3 tumour tiles among 30 are averaged away by a large K."""
    classes = ["normal colon mucosa", "colorectal adenocarcinoma epithelium"]
    logits = np.zeros((30, 2))  # (T, C)
    logits[:, 0] = 10.0
    logits[:, 1] = 8.0
    logits[:3] = [8.0, 14.0]  # the tumour region: three tiles
    by_k = {k: float(slide_scores(logits, classes, classes, k)[1] > 0.5) for k in (1, 3, 5, 20)}
    assert by_k == {1: 1.0, 3: 1.0, 5: 1.0, 20: 0.0}
    assert choose_top_k(by_k, default=5) == 5
