"""Contrastive losses over L2-normalised features (open_clip conventions).

Every loss takes features already normalised and the logit scale exp(s) (a
tensor), and returns a scalar. :class:`PairwiseLoss` sums a loss over a model's
aligned pairs, gathering features across processes for distributed training.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from core.distributed import gather_no_grad, gather_with_grad

LOSS_TYPES = ("clip", "siglip", "soft_target")


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` matches row i of ``b``.

    Args:
        a: (N, D) normalised features.
        b: (N, D) normalised features.
        logit_scale: Scalar exp(s) multiplying cosine similarities.

    Returns:
        The mean of the a->b and b->a cross-entropies.
    """
    logits = logit_scale * a @ b.T  # (N, N)
    target = torch.arange(a.shape[0], device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def siglip_loss(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, logit_bias: torch.Tensor
) -> torch.Tensor:
    """Sigmoid loss (SigLIP): every pair is a binary match / non-match decision.

    Args:
        a: (N, D) normalised features.
        b: (N, D) normalised features.
        logit_scale: Scalar exp(s).
        logit_bias: Scalar bias added to every logit.

    Returns:
        ``-sum(log sigmoid(z_ij * logit_ij)) / N`` with z = +1 on the diagonal, -1 elsewhere.
    """
    logits = logit_scale * a @ b.T + logit_bias  # (N, N)
    signs = 2 * torch.eye(a.shape[0], device=a.device, dtype=logits.dtype) - 1  # (N, N)
    return -F.logsigmoid(signs * logits).sum() / a.shape[0]


def label_similarity_targets(labels: torch.Tensor) -> torch.Tensor:
    """Soft targets from label similarity: row-normalised cosine similarity of label sets.

    Samples sharing labels share probability mass instead of being pushed apart; a
    sample with no labels only matches itself. One-hot distinct labels give the
    identity matrix (plain InfoNCE).

    Args:
        labels: (N, C) multi-hot (or soft) label matrix.

    Returns:
        (N, N) row-stochastic target matrix.
    """
    labels = labels.float()
    unit = F.normalize(labels, dim=1)  # (N, C); all-zero rows stay zero
    similarity = unit @ unit.T  # (N, N)
    empty = labels.abs().sum(1) == 0  # (N,)
    eye = torch.eye(labels.shape[0], device=labels.device)
    similarity = torch.where(empty[:, None] | empty[None, :], eye, similarity)
    return similarity / similarity.sum(1, keepdim=True)


def soft_target_loss(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """Symmetric cross-entropy against label-similarity soft targets.

    Args:
        a: (N, D) normalised features.
        b: (N, D) normalised features.
        logit_scale: Scalar exp(s).
        labels: (N, C) multi-hot labels of the N samples.

    Returns:
        The mean of the a->b and b->a soft cross-entropies.
    """
    logits = logit_scale * a @ b.T  # (N, N)
    targets = label_similarity_targets(labels)  # (N, N), symmetric similarity
    loss_ab = -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_ba = -(targets * F.log_softmax(logits.T, dim=1)).sum(1).mean()
    return 0.5 * (loss_ab + loss_ba)


class PairwiseLoss(nn.Module):
    """A contrastive loss summed over a model's aligned pairs.

    Args:
        type: ``"clip"``, ``"siglip"`` or ``"soft_target"``.
        weights: Optional weight per pair, keyed ``"a-b"`` (default 1.0).
        gather: Gather features across processes before the loss (DDP).
    """

    def __init__(
        self, type: str = "clip", weights: dict[str, float] | None = None, gather: bool = True
    ) -> None:
        super().__init__()
        if type not in LOSS_TYPES:
            raise ValueError(f"unknown loss type {type!r}; known: {', '.join(LOSS_TYPES)}")
        self.kind = type
        self.weights = dict(weights or {})
        self.gather = gather

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | PairwiseLoss) -> PairwiseLoss:
        """Build from a spec dict such as ``{"type": "soft_target"}`` (or pass one through)."""
        return spec if isinstance(spec, PairwiseLoss) else cls(**spec)

    def pair_loss(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        logit_scale: torch.Tensor,
        logit_bias: torch.Tensor | None,
        labels: torch.Tensor | None,
    ) -> torch.Tensor:
        """The configured loss for one pair of feature batches (N, D)."""
        if self.kind == "clip":
            return clip_loss(a, b, logit_scale)
        if self.kind == "siglip":
            if logit_bias is None:
                raise ValueError("siglip loss needs a model built with init_logit_bias")
            return siglip_loss(a, b, logit_scale, logit_bias)
        if labels is None:
            raise ValueError("soft_target loss needs a 'label' tensor in the mini-batch")
        return soft_target_loss(a, b, logit_scale, labels)

    def forward(
        self,
        features: dict[str, torch.Tensor],
        pairs: list[tuple[str, str]],
        logit_scale: torch.Tensor,
        logit_bias: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Sum the loss over every pair whose two modalities are in ``features``.

        Args:
            features: Modality -> (N, D) normalised features of one mini-batch.
            pairs: The model's aligned pairs.
            logit_scale: Scalar exp(s).
            logit_bias: Scalar bias (sigmoid loss only).
            labels: (N, C) multi-hot labels (soft-target loss only).

        Returns:
            The weighted total and the loss of each pair, keyed ``"a-b"``.
        """
        if self.gather:
            features = {k: gather_with_grad(v) for k, v in features.items()}
            labels = gather_no_grad(labels) if labels is not None else None
        parts: dict[str, torch.Tensor] = {}
        for a, b in pairs:
            if a in features and b in features:
                key = f"{a}-{b}"
                parts[key] = self.pair_loss(features[a], features[b], logit_scale, logit_bias,
                                            labels)
        if not parts:
            raise ValueError(f"no aligned pair {pairs} has both modalities in the batch "
                             f"(present: {sorted(features)})")
        total = sum(self.weights.get(k, 1.0) * v for k, v in parts.items())
        return total, parts  # type: ignore[return-value]
