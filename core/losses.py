"""Contrastive losses over L2-normalised features (open_clip conventions).

Every loss takes features already normalised and the logit scale exp(s) (a
tensor), and returns a scalar. The ``*_local`` variants compute one process's rows
against the features gathered from every process (open_clip's ``local_loss``).
:class:`PairwiseLoss` sums a loss over a model's aligned pairs, gathering features
across processes (with gradient) for distributed training.

What this adds to open_clip's losses: soft targets from label similarity (multi-label
scenes and reports share captions, so plain InfoNCE would push true matches apart), with
labels weighted by rarity (``label_weighting: idf``, :func:`idf_weights` of the training
split's label frequencies) and an optional mix with hard targets (``hard_mix``).
"""

from __future__ import annotations

from collections.abc import Sequence
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


LABEL_WEIGHTINGS = ("none", "idf")


def idf_weights(frequencies: torch.Tensor | Sequence[float]) -> torch.Tensor:
    """IDF weight of each label from the fraction of samples carrying it: ``1 + ln(1 / p)``.

    The smoothed form (as scikit-learn's ``smooth_idf``) keeps every weight >= 1, so a label
    every sample carries still counts, and a label in 1 % of the samples counts 5.6 times.

    Args:
        frequencies: (C,) fraction of samples carrying each label, in [0, 1]; labels
            never seen are clamped to 1e-6.

    Returns:
        (C,) float weights.
    """
    p = torch.as_tensor(frequencies, dtype=torch.float32).clamp(1e-6, 1.0)  # (C,)
    return 1.0 + torch.log(1.0 / p)


def label_frequencies(labels: torch.Tensor) -> torch.Tensor:
    """Fraction of samples carrying each label: (N, C) multi-hot -> (C,).

    Counted with add-one smoothing (``(df + 1) / (N + 1)``) so a label absent from the
    rows gets a large, finite weight from :func:`idf_weights`.
    """
    present = (labels != 0).float()  # (N, C)
    return (present.sum(0) + 1.0) / (present.shape[0] + 1.0)


def label_similarity_targets(
    labels: torch.Tensor, all_labels: torch.Tensor | None = None, offset: int = 0,
    label_weights: torch.Tensor | None = None, hard_mix: float = 0.0,
) -> torch.Tensor:
    """Soft targets from label similarity: row-normalised cosine similarity of label sets.

    Samples sharing labels share probability mass instead of being pushed apart; a
    sample with no labels only matches itself. One-hot distinct labels give the
    identity matrix (plain InfoNCE). With ``label_weights`` (e.g. :func:`idf_weights`)
    each label's column is scaled before the cosine, so sharing a rare label counts more
    and a rare label one side lacks costs more: with IDF weights {crops, water, flooded
    area} and {crops, water} are far less alike than their plain cosine of 0.82.
    ``hard_mix`` mixes the targets with the identity (hard InfoNCE targets).

    Args:
        labels: (n, C) multi-hot (or soft) labels of the rows.
        all_labels: (N, C) labels of the columns (default: ``labels``, N = n).
        offset: Column of the first row's own sample (rank * n under ``local_loss``).
        label_weights: (C,) weight of each label (default: all 1).
        hard_mix: Share of the identity in the targets, in [0, 1].

    Returns:
        (n, N) row-stochastic target matrix.
    """
    labels = labels if labels.is_floating_point() else labels.float()
    columns = labels if all_labels is None else all_labels.to(labels.dtype)
    if label_weights is not None:
        weights = label_weights.to(device=labels.device, dtype=labels.dtype)  # (C,)
        labels, columns = labels * weights, columns * weights
    unit = F.normalize(labels, dim=1)  # (n, C); all-zero rows stay zero
    unit_columns = F.normalize(columns, dim=1)  # (N, C)
    similarity = unit @ unit_columns.T  # (n, N)
    n = labels.shape[0]
    eye = torch.zeros_like(similarity)  # (n, N): 1 where a row meets its own column
    eye[torch.arange(n), torch.arange(n) + offset] = 1.0
    empty_rows = labels.abs().sum(1) == 0  # (n,)
    empty_columns = columns.abs().sum(1) == 0  # (N,)
    similarity = torch.where(empty_rows[:, None] | empty_columns[None, :], eye, similarity)
    targets = similarity / similarity.sum(1, keepdim=True)  # (n, N)
    if hard_mix:
        targets = (1.0 - hard_mix) * targets + hard_mix * eye
    return targets


def soft_target_loss(
    a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor, labels: torch.Tensor,
    label_weights: torch.Tensor | None = None, hard_mix: float = 0.0,
) -> torch.Tensor:
    """Symmetric cross-entropy against label-similarity soft targets.

    Args:
        a: (N, D) normalised features.
        b: (N, D) normalised features.
        logit_scale: Scalar exp(s).
        labels: (N, C) multi-hot labels of the N samples.
        label_weights: (C,) weight per label (see :func:`label_similarity_targets`).
        hard_mix: Share of hard (identity) targets.

    Returns:
        The mean of the a->b and b->a soft cross-entropies.
    """
    return soft_target_loss_local(a, b, a, b, logit_scale, labels, labels, offset=0,
                                  label_weights=label_weights, hard_mix=hard_mix)


def soft_target_loss_local(
    a: torch.Tensor,
    b: torch.Tensor,
    all_a: torch.Tensor,
    all_b: torch.Tensor,
    logit_scale: torch.Tensor,
    labels: torch.Tensor,
    all_labels: torch.Tensor,
    offset: int,
    label_weights: torch.Tensor | None = None,
    hard_mix: float = 0.0,
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
        label_weights: (C,) weight per label (see :func:`label_similarity_targets`).
        hard_mix: Share of hard (identity) targets.

    Returns:
        The mean of the a->all_b and b->all_a soft cross-entropies over the n local rows.
    """
    logits_ab = logit_scale * a @ all_b.T  # (n, N)
    logits_ba = logit_scale * b @ all_a.T  # (n, N)
    targets = label_similarity_targets(labels, all_labels, offset, label_weights,
                                       hard_mix)  # (n, N)
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

    Soft targets (``soft_target``) can weight labels by rarity: ``label_weighting: idf``
    scales each label by :func:`idf_weights` of its frequency before the label cosine —
    the frequencies of the training split when ``label_frequencies`` is given (a domain's
    training command fills it in, see :func:`with_label_frequencies`), else those of each
    (gathered) batch. ``hard_mix`` mixes the soft targets with hard (identity) ones.

    Args:
        type: ``"clip"``, ``"siglip"`` or ``"soft_target"``.
        weights: Optional weight per pair, keyed ``"a-b"`` (default 1.0).
        gather: Gather features across processes before the loss (DDP).
        local_loss: Compute only this process's rows of the gathered logits (see above).
        label_weighting: ``"none"`` (plain label cosine) or ``"idf"``.
        label_frequencies: (C,) fraction of training samples carrying each label (IDF).
        hard_mix: Share of hard targets mixed into the soft ones, in [0, 1].
            These three shape soft targets; the other losses ignore them (so a run config
            with ``label_weighting: idf`` can switch to ``--loss clip``).
    """

    def __init__(
        self,
        type: str = "clip",
        weights: dict[str, float] | None = None,
        gather: bool = True,
        local_loss: bool = False,
        label_weighting: str = "none",
        label_frequencies: Sequence[float] | None = None,
        hard_mix: float = 0.0,
    ) -> None:
        super().__init__()
        if type not in LOSS_TYPES:
            raise ValueError(f"unknown loss type {type!r}; known: {', '.join(LOSS_TYPES)}")
        if label_weighting not in LABEL_WEIGHTINGS:
            raise ValueError(f"unknown label_weighting {label_weighting!r}; known: "
                             f"{', '.join(LABEL_WEIGHTINGS)}")
        if not 0.0 <= float(hard_mix) <= 1.0:
            raise ValueError(f"hard_mix must lie in [0, 1], got {hard_mix}")
        if type != "soft_target":  # the soft-target options of a run config (--loss clip)
            label_weighting, label_frequencies, hard_mix = "none", None, 0.0
        self.kind = type
        self.weights = dict(weights or {})
        self.gather = gather
        self.local_loss = local_loss
        self.label_weighting = label_weighting
        self.hard_mix = float(hard_mix)
        self.label_weights = (idf_weights(label_frequencies)
                              if label_weighting == "idf" and label_frequencies is not None
                              else None)  # (C,) from the training split; None: per batch

    def _label_weights(self, all_labels: torch.Tensor) -> torch.Tensor | None:
        """The (C,) label weights of this step (``None``: plain cosine)."""
        if self.label_weighting == "none":
            return None
        if self.label_weights is not None:
            if self.label_weights.shape[0] != all_labels.shape[1]:
                raise ValueError(f"label_frequencies has {self.label_weights.shape[0]} labels, "
                                 f"the batch's labels have {all_labels.shape[1]}")
            return self.label_weights
        return idf_weights(label_frequencies(all_labels))

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
                                      offset, self._label_weights(all_labels), self.hard_mix)

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


def with_label_frequencies(spec: dict[str, Any], labels: torch.Tensor) -> dict[str, Any]:
    """A loss spec with ``label_frequencies`` of the training split filled in, when it asks
    for IDF label weighting without them (other specs come back unchanged).

    Args:
        spec: The loss spec (e.g. ``{"type": "soft_target", "label_weighting": "idf"}``).
        labels: (N, C) multi-hot labels of the training samples.

    Returns:
        The spec, with ``label_frequencies`` (a list of C floats) where needed.
    """
    if spec.get("label_weighting", "none") != "idf" or spec.get("label_frequencies"):
        return spec
    return {**spec, "label_frequencies": label_frequencies(labels).tolist()}
