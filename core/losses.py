"""Contrastive losses over L2-normalised features (open_clip conventions).

Every loss takes features already normalised and the logit scale exp(s) (a
tensor), and returns a scalar. The ``*_local`` variants compute one process's rows
against the features gathered from every process (open_clip's ``local_loss``).
:class:`PairwiseLoss` sums a loss over a model's aligned pairs, gathering features
across processes (with gradient) for distributed training.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from core.distributed import gather_no_grad, gather_with_grad, is_distributed

LOSS_TYPES = ("clip", "siglip", "soft_target")
_SIGLIP_NEEDS_BIAS = ("siglip loss needs a logit bias: build the model from a config whose "
                      "loss is {'type': 'siglip'} (or that sets init_logit_bias)")


def clip_loss(a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE: row i of ``a`` matches row i of ``b``.

    Args:
        a: (N, D) normalised features.
        b: (N, D) normalised features.
        logit_scale: Scalar exp(s) multiplying cosine similarities.

    Returns:
        The mean of the a->b and b->a cross-entropies.
    """
    return clip_loss_local(a, b, a, b, logit_scale, offset=0)


def clip_loss_local(
    a: torch.Tensor,
    b: torch.Tensor,
    all_a: torch.Tensor,
    all_b: torch.Tensor,
    logit_scale: torch.Tensor,
    offset: int,
) -> torch.Tensor:
    """InfoNCE of this process's rows against every process's columns (open_clip ``local_loss``).

    Row i of ``a`` matches row ``offset + i`` of ``all_b`` (and ``b`` of ``all_a``). The
    mean of this loss over processes holding equal shares of a batch is
    :func:`clip_loss` of the whole batch.

    Args:
        a: (n, D) this process's normalised features of one modality.
        b: (n, D) this process's normalised features of the other modality.
        all_a: (N, D) features of ``a``'s modality from every process, in rank order.
        all_b: (N, D) features of ``b``'s modality from every process, in rank order.
        logit_scale: Scalar exp(s).
        offset: Index of this process's first row in the gathered batch (rank * n).

    Returns:
        The mean of the a->all_b and b->all_a cross-entropies over the n local rows.
    """
    logits_ab = logit_scale * a @ all_b.T  # (n, N)
    logits_ba = logit_scale * b @ all_a.T  # (n, N)
    target = torch.arange(a.shape[0], device=a.device) + offset  # (n,)
    return 0.5 * (F.cross_entropy(logits_ab, target) + F.cross_entropy(logits_ba, target))


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
    return siglip_loss_local(a, b, logit_scale, logit_bias, offset=0)


def siglip_loss_local(
    a: torch.Tensor,
    all_b: torch.Tensor,
    logit_scale: torch.Tensor,
    logit_bias: torch.Tensor,
    offset: int,
) -> torch.Tensor:
    """Sigmoid loss of this process's rows of ``a`` against every process's ``b``.

    Every (a, b) pair of the batch is counted once, by the process holding its ``a``;
    the mean over processes holding equal shares is :func:`siglip_loss` of the batch.

    Args:
        a: (n, D) this process's normalised features.
        all_b: (N, D) the other modality's features from every process, in rank order.
        logit_scale: Scalar exp(s).
        logit_bias: Scalar bias added to every logit.
        offset: Index of this process's first row in the gathered batch (rank * n).

    Returns:
        ``-sum(log sigmoid(z_ij * logit_ij)) / n`` over the (n, N) local block.
    """
    logits = logit_scale * a @ all_b.T + logit_bias  # (n, N)
    n = a.shape[0]
    rows = torch.arange(n, device=a.device)  # (n,)
    signs = -torch.ones_like(logits)  # (n, N)
    signs[rows, rows + offset] = 1.0
    return -F.logsigmoid(signs * logits).sum() / n


def label_similarity_targets(
    labels: torch.Tensor, all_labels: torch.Tensor | None = None, offset: int = 0
) -> torch.Tensor:
    """Soft targets from label similarity: row-normalised cosine similarity of label sets.

    Samples sharing labels share probability mass instead of being pushed apart; a
    sample with no labels only matches itself. One-hot distinct labels give the
    identity matrix (plain InfoNCE).

    Args:
        labels: (n, C) multi-hot (or soft) labels of the rows.
        all_labels: (N, C) labels of the columns (default: ``labels``, N = n).
        offset: Column of the first row's own sample (rank * n under ``local_loss``).

    Returns:
        (n, N) row-stochastic target matrix.
    """
    labels = labels if labels.is_floating_point() else labels.float()
    columns = labels if all_labels is None else all_labels.to(labels.dtype)
    unit = F.normalize(labels, dim=1)  # (n, C); all-zero rows stay zero
    unit_columns = F.normalize(columns, dim=1)  # (N, C)
    similarity = unit @ unit_columns.T  # (n, N)
    n = labels.shape[0]
    eye = torch.zeros_like(similarity)  # (n, N): 1 where a row meets its own column
    eye[torch.arange(n), torch.arange(n) + offset] = 1.0
    empty_rows = labels.abs().sum(1) == 0  # (n,)
    empty_columns = columns.abs().sum(1) == 0  # (N,)
    similarity = torch.where(empty_rows[:, None] | empty_columns[None, :], eye, similarity)
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
    return soft_target_loss_local(a, b, a, b, logit_scale, labels, labels, offset=0)


def soft_target_loss_local(
    a: torch.Tensor,
    b: torch.Tensor,
    all_a: torch.Tensor,
    all_b: torch.Tensor,
    logit_scale: torch.Tensor,
    labels: torch.Tensor,
    all_labels: torch.Tensor,
    offset: int,
) -> torch.Tensor:
    """Soft-target cross-entropy of this process's rows against every process's columns.

    The targets of a local row are its label similarity to every gathered label row;
    the mean over processes holding equal shares is :func:`soft_target_loss` of the batch.

    Args:
        a: (n, D) this process's normalised features of one modality.
        b: (n, D) this process's normalised features of the other modality.
        all_a: (N, D) features of ``a``'s modality from every process, in rank order.
        all_b: (N, D) features of ``b``'s modality from every process, in rank order.
        logit_scale: Scalar exp(s).
        labels: (n, C) multi-hot labels of the local samples.
        all_labels: (N, C) labels from every process, in rank order.
        offset: Index of this process's first row in the gathered batch (rank * n).

    Returns:
        The mean of the a->all_b and b->all_a soft cross-entropies over the n local rows.
    """
    logits_ab = logit_scale * a @ all_b.T  # (n, N)
    logits_ba = logit_scale * b @ all_a.T  # (n, N)
    targets = label_similarity_targets(labels, all_labels, offset)  # (n, N)
    loss_ab = -(targets * F.log_softmax(logits_ab, dim=1)).sum(1).mean()
    loss_ba = -(targets * F.log_softmax(logits_ba, dim=1)).sum(1).mean()
    return 0.5 * (loss_ab + loss_ba)


class PairwiseLoss(nn.Module):
    """A contrastive loss summed over a model's aligned pairs.

    Under DDP the features of every process are gathered with their gradient
    (``core.distributed.gather_with_grad``) before the loss, so that every process sees
    the whole global batch as negatives:

    - ``local_loss=False`` (default): every process computes the full loss on the
      gathered (N, N) logits; all processes get the same value.
    - ``local_loss=True`` (open_clip's option): each process computes only its own rows
      against all gathered columns, an (n, N) block, with targets offset by
      ``rank * n``; the mean over processes equals the full loss, at 1 / world_size of
      the logit memory and compute.

    Either way, after DDP averages the parameter gradients over processes they equal
    those of one process computing the loss on the concatenated batch.

    Args:
        type: ``"clip"``, ``"siglip"`` or ``"soft_target"``.
        weights: Optional weight per pair, keyed ``"a-b"`` (default 1.0).
        gather: Gather features across processes before the loss (DDP).
        local_loss: Compute only this process's rows of the gathered logits (see above).
    """

    def __init__(
        self,
        type: str = "clip",
        weights: dict[str, float] | None = None,
        gather: bool = True,
        local_loss: bool = False,
    ) -> None:
        super().__init__()
        if type not in LOSS_TYPES:
            raise ValueError(f"unknown loss type {type!r}; known: {', '.join(LOSS_TYPES)}")
        self.kind = type
        self.weights = dict(weights or {})
        self.gather = gather
        self.local_loss = local_loss

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
        """The configured loss for one pair of feature batches (N, D), on this process only."""
        return self.local_pair_loss(a, b, a, b, logit_scale, logit_bias, labels, labels, 0)

    def local_pair_loss(
        self,
        a: torch.Tensor,
        b: torch.Tensor,
        all_a: torch.Tensor,
        all_b: torch.Tensor,
        logit_scale: torch.Tensor,
        logit_bias: torch.Tensor | None,
        labels: torch.Tensor | None,
        all_labels: torch.Tensor | None,
        offset: int,
    ) -> torch.Tensor:
        """The configured loss of local rows (n, D) against gathered columns (N, D).

        With ``all_a is a``, ``all_b is b`` and ``offset=0`` this is the full loss.
        """
        if self.kind == "clip":
            return clip_loss_local(a, b, all_a, all_b, logit_scale, offset)
        if self.kind == "siglip":
            if logit_bias is None:
                raise ValueError(_SIGLIP_NEEDS_BIAS)
            return siglip_loss_local(a, all_b, logit_scale, logit_bias, offset)
        if labels is None or all_labels is None:
            raise ValueError("soft_target loss needs a 'label' tensor in the mini-batch")
        return soft_target_loss_local(a, b, all_a, all_b, logit_scale, labels, all_labels,
                                      offset)

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
            features: Modality -> (n, D) normalised features of this process's mini-batch.
            pairs: The model's aligned pairs.
            logit_scale: Scalar exp(s).
            logit_bias: Scalar bias (sigmoid loss only).
            labels: (n, C) multi-hot labels (soft-target loss only).

        Returns:
            The weighted total and the loss of each pair, keyed ``"a-b"``.
        """
        present = [(a, b) for a, b in pairs if a in features and b in features]
        if not present:
            raise ValueError(f"no aligned pair {pairs} has both modalities in the batch "
                             f"(present: {sorted(features)})")
        gathered, all_labels, offset = features, labels, 0
        if self.gather and is_distributed():
            # Same modalities in the same order on every process (collectives must match).
            used = [m for m in features if any(m in pair for pair in present)]
            gathered = {m: gather_with_grad(features[m]) for m in used}  # (N, D) each
            all_labels = gather_no_grad(labels) if labels is not None else None  # (N, C)
            # Processes hold equal shares (DistributedSampler pads), so rows start at rank * n.
            offset = dist.get_rank() * features[used[0]].shape[0]
        parts: dict[str, torch.Tensor] = {}
        for a, b in present:
            if self.local_loss:
                loss = self.local_pair_loss(features[a], features[b], gathered[a], gathered[b],
                                            logit_scale, logit_bias, labels, all_labels, offset)
            else:
                loss = self.pair_loss(gathered[a], gathered[b], logit_scale, logit_bias,
                                      all_labels)
            parts[f"{a}-{b}"] = loss
        total = sum(self.weights.get(k, 1.0) * v for k, v in parts.items())
        return total, parts  # type: ignore[return-value]
