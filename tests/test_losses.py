"""Contrastive losses: hand-computed values, aligned vs shuffled, soft targets vs InfoNCE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.losses import (
    PairwiseLoss,
    clip_loss,
    label_similarity_targets,
    siglip_loss,
    soft_target_loss,
)


def _features(n: int = 16, d: int = 32, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(n, d, generator=generator), dim=1)


def test_clip_loss_matches_hand_computed_3x3() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [math.sqrt(0.5), math.sqrt(0.5)]])
    b = torch.tensor([[1.0, 0.0], [math.sqrt(0.5), math.sqrt(0.5)], [0.0, 1.0]])
    scale = torch.tensor(2.0)
    sims = [[sum(x * y for x, y in zip(ra, rb, strict=True)) for rb in b.tolist()]
            for ra in a.tolist()]
    def ce(rows: list[list[float]]) -> float:
        return sum(-(scale.item() * r[i]) + math.log(sum(math.exp(scale.item() * v) for v in r))
                   for i, r in enumerate(rows)) / 3
    columns = [list(col) for col in zip(*sims, strict=True)]
    expected = 0.5 * (ce(sims) + ce(columns))
    assert clip_loss(a, b, scale).item() == pytest.approx(expected, rel=1e-6)


def test_siglip_loss_matches_hand_computed_3x3() -> None:
    a = torch.eye(3)
    b = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    scale, bias = torch.tensor(3.0), torch.tensor(-1.0)
    total = 0.0
    for i in range(3):
        for j in range(3):
            logit = 3.0 * float(a[i] @ b[j]) - 1.0
            sign = 1.0 if i == j else -1.0
            total += -math.log(1 / (1 + math.exp(-sign * logit)))
    assert siglip_loss(a, b, scale, bias).item() == pytest.approx(total / 3, rel=1e-6)


@pytest.mark.parametrize("kind", ["clip", "siglip", "soft_target"])
def test_losses_are_low_for_aligned_and_high_for_shuffled(kind: str) -> None:
    a = _features()
    noise = 0.05 * torch.randn(a.shape, generator=torch.Generator().manual_seed(1))
    b = F.normalize(a + noise, dim=1)
    shuffled = b[torch.randperm(len(b), generator=torch.Generator().manual_seed(2))]
    labels = torch.eye(len(a))
    scale, bias = torch.tensor(20.0), torch.tensor(-5.0)
    loss = PairwiseLoss(kind, gather=False)
    aligned_value = loss.pair_loss(a, b, scale, bias, labels)
    shuffled_value = loss.pair_loss(a, shuffled, scale, bias, labels)
    assert aligned_value < 0.2 * shuffled_value
    if kind == "clip":
        assert aligned_value < 0.05
        assert shuffled_value > math.log(len(a)) * 0.5


def test_soft_targets_equal_infonce_for_distinct_one_hot_labels() -> None:
    a, b = _features(seed=3), _features(seed=4)
    labels = torch.eye(16)[torch.randperm(16, generator=torch.Generator().manual_seed(5))]
    scale = torch.tensor(10.0)
    torch.testing.assert_close(soft_target_loss(a, b, scale, labels), clip_loss(a, b, scale))


def test_soft_targets_do_not_push_apart_samples_sharing_labels() -> None:
    labels = torch.tensor([[1.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    targets = label_similarity_targets(labels)
    torch.testing.assert_close(targets.sum(1), torch.ones(4))
    assert targets[0, 1] == pytest.approx(0.5)  # identical label sets share mass equally
    assert targets[0, 2] == 0.0  # disjoint labels are negatives
    torch.testing.assert_close(targets[3], torch.tensor([0.0, 0.0, 0.0, 1.0]))
    # Two samples with the same labels whose features are swapped cost no more than aligned.
    a = F.normalize(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    swapped = a[[1, 0, 2, 3]]
    scale = torch.tensor(10.0)
    assert soft_target_loss(a, swapped, scale, labels) == pytest.approx(
        soft_target_loss(a, a, scale, labels).item(), rel=0.5
    )
    assert clip_loss(a, swapped, scale) > 2 * clip_loss(a, a, scale)


def test_pairwise_loss_sums_present_pairs_and_rejects_none() -> None:
    feats = {"x": _features(seed=1), "y": _features(seed=2), "z": _features(seed=3)}
    scale = torch.tensor(10.0)
    loss = PairwiseLoss("clip", weights={"x-z": 2.0}, gather=False)
    total, parts = loss(feats, [("x", "y"), ("x", "z"), ("y", "w")], scale)
    assert sorted(parts) == ["x-y", "x-z"]
    torch.testing.assert_close(total, parts["x-y"] + 2.0 * parts["x-z"])
    with pytest.raises(ValueError, match="no aligned pair"):
        loss({"x": feats["x"]}, [("x", "y")], scale)
    with pytest.raises(ValueError, match="unknown loss type"):
        PairwiseLoss("triplet")
