"""Contrastive losses: hand-computed values, aligned vs shuffled, soft targets vs InfoNCE."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.losses import (
    PairwiseLoss,
    clip_loss,
    idf_weights,
    label_frequencies,
    label_similarity_targets,
    siglip_loss,
    soft_target_loss,
    with_label_frequencies,
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


def _crops_water_flood() -> tuple[torch.Tensor, torch.Tensor]:
    """Labels [crops, water, flooded area] of {crops, water, flooded} and {crops, water},
    and their frequencies in the default archive's training split (46 %, 29 %, 3 %)."""
    labels = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    return labels, torch.tensor([0.46, 0.29, 0.03])


def test_idf_weighting_makes_a_rare_tag_count() -> None:
    labels, frequencies = _crops_water_flood()
    plain = F.normalize(labels, dim=1)
    assert (plain[0] @ plain[1]).item() == pytest.approx(2 / math.sqrt(6), abs=1e-6)  # 0.82
    weights = idf_weights(frequencies)
    assert weights.tolist() == pytest.approx([1 + math.log(1 / p) for p in (0.46, 0.29, 0.03)])
    weighted = F.normalize(labels * weights, dim=1)
    cosine = (weighted[0] @ weighted[1]).item()
    assert 0.5 < cosine < 0.56  # 0.54, not 0.82: sharing the flood is what matters
    # Targets: the flooded scene keeps more of its own mass with IDF than without.
    plain_targets = label_similarity_targets(labels)
    idf_targets = label_similarity_targets(labels, label_weights=weights)
    assert idf_targets[0, 0] > plain_targets[0, 0] + 0.09
    assert idf_targets[0, 1].item() == pytest.approx(cosine / (1 + cosine), abs=1e-6)


def test_idf_and_hard_mix_keep_infonce_for_one_hot_labels() -> None:
    a, b = _features(8, seed=1), _features(8, seed=2)
    labels = torch.eye(8)
    scale = torch.tensor(10.0)
    expected = clip_loss(a, b, scale)
    loss = PairwiseLoss("soft_target", label_weighting="idf",
                        label_frequencies=torch.linspace(0.01, 0.9, 8).tolist(), hard_mix=0.3)
    total, _ = loss({"x": a, "y": b}, [("x", "y")], scale, labels=labels)
    torch.testing.assert_close(total, expected)


def test_hard_mix_interpolates_soft_and_hard_targets() -> None:
    labels = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    soft = label_similarity_targets(labels)
    mixed = label_similarity_targets(labels, hard_mix=0.25)
    torch.testing.assert_close(mixed, 0.75 * soft + 0.25 * torch.eye(3))
    torch.testing.assert_close(mixed.sum(1), torch.ones(3))


def test_idf_uses_training_frequencies_else_the_batch() -> None:
    labels = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    a, b, scale = _features(4, seed=3), _features(4, seed=4), torch.tensor(5.0)
    per_batch = PairwiseLoss("soft_target", label_weighting="idf")
    batch_weights = idf_weights(label_frequencies(labels))
    assert label_frequencies(labels).tolist() == pytest.approx([4 / 5, 4 / 5, 2 / 5])
    expected = soft_target_loss(a, b, scale, labels, label_weights=batch_weights)
    torch.testing.assert_close(per_batch({"x": a, "y": b}, [("x", "y")], scale,
                                         labels=labels)[0], expected)
    spec = with_label_frequencies({"type": "soft_target", "label_weighting": "idf"},
                                  torch.tensor([[1.0, 0.0, 0.0]] * 9 + [[1.0, 0.0, 1.0]]))
    assert spec["label_frequencies"] == pytest.approx([1.0, 1 / 11, 2 / 11])
    split = PairwiseLoss.from_spec(spec)
    torch.testing.assert_close(split.label_weights, idf_weights(spec["label_frequencies"]))
    assert with_label_frequencies({"type": "clip"}, labels) == {"type": "clip"}
    with pytest.raises(ValueError, match="label_frequencies has 3 labels"):
        split({"x": a, "y": b}, [("x", "y")], scale, labels=torch.ones(4, 2))


def test_soft_target_options_are_checked() -> None:
    with pytest.raises(ValueError, match="label_weighting"):
        PairwiseLoss("soft_target", label_weighting="tfidf")
    with pytest.raises(ValueError, match=r"hard_mix must lie in \[0, 1\]"):
        PairwiseLoss("soft_target", hard_mix=1.5)
    clip = PairwiseLoss("clip", label_weighting="idf", hard_mix=0.5)  # --loss clip on a run
    assert clip.label_weighting == "none" and clip.hard_mix == 0.0  # whose soft targets use IDF
