"""Radiology metrics on embeddings: zero-shot findings (CheXzero), AUROC with intervals, retrieval.

Built on :mod:`core.metrics` (AUROC with tied ranks, Recall@k) and
:class:`core.zero_shot.PromptClassifier` (cached prompt embeddings). What is about
radiology:

- zero-shot per finding as in CheXzero: the softmax of ``scale x cosine`` over a
  positive and a negative prompt (each the mean over its prompts), so any finding, in any
  vocabulary, gets a probability of presence. Prompts come from the knowledge card:
  names only (``"pleural effusion"`` / ``"no pleural effusion"``) or its visual
  descriptions; a finding the card lacks is prompted by its name;
- AUROC per finding over studies labelled 1 or 0 (uncertain and unmentioned left out),
  with a percentile bootstrap 95 % interval, and the mean over findings;
- image <-> report Recall@k where a hit is a study with the same finding set (positive or
  uncertain findings), with a random-ranking baseline (exact expectation) and a
  label-prior baseline (every query ranks studies by how common their finding set is).
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any

import numpy as np
import torch

from core.metrics import auroc, recall_at_k
from core.zero_shot import PromptClassifier
from domains.radiology import cards
from domains.radiology.transforms import finding_sets

PROMPT_KINDS = ("names", "descriptions")
RECALL_KS = (1, 5, 10)


def finding_prompts(finding: str, kind: str = "names") -> dict[str, list[str]]:
    """Positive and negative prompts of a finding.

    Args:
        finding: A CheXpert name (card prompts) or any other finding (prompted by name).
        kind: ``"names"`` (CheXzero's "{}" / "no {}") or ``"descriptions"`` (the card's
            visual descriptions; names for a finding the card lacks).

    Returns:
        ``{"positive": [...], "negative": [...]}``.
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt kind must be one of {PROMPT_KINDS}, got {kind!r}")
    if finding in cards.findings():
        return cards.description_prompts(finding) if kind == "descriptions" \
            else cards.name_prompts(finding)
    templates = cards.prompt_templates()
    name = finding.strip().lower()
    return {side: [t.format(name) for t in templates[side]] for side in ("positive", "negative")}


def zero_shot_probabilities(classifier: PromptClassifier, features: torch.Tensor,
                            findings: Sequence[str], kind: str = "names",
                            prompts: dict[str, dict[str, list[str]]] | None = None
                            ) -> torch.Tensor:
    """Probability that each finding is present (CheXzero's positive/negative softmax).

    Args:
        classifier: The run's prompt classifier (its class embeddings are cached).
        features: (N, D) normalised image embeddings on the CPU.
        findings: The F findings.
        kind: Prompt kind (see :func:`finding_prompts`).
        prompts: Explicit prompts per finding (``{"positive": [...], "negative": [...]}``),
            overriding the card's.

    Returns:
        (N, F) probabilities.
    """
    if not findings or len(set(findings)) != len(findings):
        raise ValueError(f"findings must be distinct names, at least one; got {list(findings)}")
    scale = float(classifier.model.scale().detach())
    columns = []
    for finding in findings:
        pair = (prompts or {}).get(finding) or finding_prompts(finding, kind)
        positive, negative = list(pair["positive"]), list(pair["negative"])
        if not positive or not negative:
            raise ValueError(f"{finding}: needs at least one positive and one negative prompt")
        embeddings = torch.cat([  # (D, 2): the mean positive and the mean negative prompt
            classifier.class_embeddings([positive[0]], ["{}"], {positive[0]: positive[1:]}),
            classifier.class_embeddings([negative[0]], ["{}"], {negative[0]: negative[1:]})],
            dim=1)
        logits = scale * features.float() @ embeddings  # (N, 2)
        columns.append(logits.softmax(dim=1)[:, 0])
    return torch.stack(columns, dim=1)  # (N, F)


def bootstrap_auroc(scores: np.ndarray, labels: np.ndarray, resamples: int = 1000,
                    seed: int = 0) -> dict[str, float | int]:
    """AUROC of one finding with a percentile-bootstrap 95 % interval.

    Args:
        scores: (N,) scores.
        labels: (N,) 1 / 0 (other values — uncertain -1, NaN — are left out).
        resamples: Bootstrap resamples (0: no interval).
        seed: Seed of the resampling.

    Returns:
        ``auroc``, ``low``, ``high`` (NaN without both classes), ``positives``, ``negatives``.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    keep = (labels == 1) | (labels == 0)
    scores, positive = scores[keep], labels[keep] == 1
    result: dict[str, float | int] = {"positives": int(positive.sum()),
                                      "negatives": int((~positive).sum())}
    if positive.all() or not positive.any():
        return {**result, "auroc": float("nan"), "low": float("nan"), "high": float("nan")}
    value = auroc(scores, positive)
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        index = rng.integers(0, len(scores), len(scores))
        if positive[index].all() or not positive[index].any():
            continue
        draws.append(auroc(scores[index], positive[index]))
    low, high = (np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"),) * 2)
    return {**result, "auroc": float(value), "low": float(low), "high": float(high)}


def scored_findings(labels: np.ndarray, findings: Sequence[str], min_cases: int = 5) -> list[str]:
    """The findings with at least ``min_cases`` positives and negatives (1 / 0) in ``labels``."""
    labels = np.asarray(labels, dtype=np.float64)
    return [f for i, f in enumerate(findings)
            if (labels[:, i] == 1).sum() >= min_cases and (labels[:, i] == 0).sum() >= min_cases]


def auroc_table(probabilities: np.ndarray, labels: np.ndarray, findings: Sequence[str],
                scored: Sequence[str], resamples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Per-finding AUROC with intervals, and their mean.

    Args:
        probabilities: (N, F) scores in ``findings`` order.
        labels: (N, F) 1 / 0 / -1 / NaN in ``findings`` order.
        findings: The F findings.
        scored: The findings to score (see :func:`scored_findings`).
        resamples: Bootstrap resamples.
        seed: Seed of the resampling.

    Returns:
        ``{"per_finding": {finding: {...}}, "mean_auroc": float}``.
    """
    per = {f: bootstrap_auroc(probabilities[:, findings.index(f)], labels[:, findings.index(f)],
                              resamples, seed) for f in scored}
    values = [v["auroc"] for v in per.values() if not np.isnan(v["auroc"])]
    return {"per_finding": per, "mean_auroc": float(np.mean(values)) if values else float("nan")}


def same_finding_set(query_labels: np.ndarray, item_labels: np.ndarray) -> np.ndarray:
    """(Q, N) bool: whether two studies have the same finding set (positive or uncertain)."""
    a, b = finding_sets(query_labels), finding_sets(item_labels)
    return (a[:, None, :] == b[None, :, :]).all(-1)


def random_recall(relevance: np.ndarray, k: int) -> float:
    """Expected Recall@k (hit rate) of a random ranking: 1 - C(N-m, k) / C(N, k) per query."""
    n = relevance.shape[1]
    k = min(k, n)
    counts = relevance.sum(1)
    values = [1.0 - comb(n - int(m), k) / comb(n, k) for m in counts if m > 0]
    return float(np.mean(values)) if values else float("nan")


def retrieval_metrics(image_features: torch.Tensor, report_features: torch.Tensor,
                      labels: np.ndarray) -> dict[str, Any]:
    """Image <-> report Recall@1/5/10 on one split, with random and label-prior baselines.

    Args:
        image_features: (N, D) normalised image embeddings.
        report_features: (N, D) normalised report embeddings of the same studies.
        labels: (N, F) labels (1 / 0 / -1 / NaN).

    Returns:
        ``report_to_image`` and ``image_to_report`` Recall@k, and the baselines.
    """
    relevance = same_finding_set(labels, labels)  # (N, N), symmetric
    similarity = (report_features.float() @ image_features.float().T).numpy()  # (N reports, N)
    sets = finding_sets(labels)
    keys = [row.tobytes() for row in sets]
    frequency = np.array([keys.count(key) for key in keys], dtype=np.float64)  # (N,)
    prior = np.broadcast_to(frequency, relevance.shape) + 1e-9 * np.arange(len(keys))[::-1]
    result: dict[str, Any] = {}
    for k in RECALL_KS:
        result[f"report_to_image_recall@{k}"] = recall_at_k(similarity, relevance, k)
        result[f"image_to_report_recall@{k}"] = recall_at_k(similarity.T, relevance, k)
        result[f"random_recall@{k}"] = random_recall(relevance, k)
        result[f"label_prior_recall@{k}"] = recall_at_k(np.ascontiguousarray(prior),
                                                        relevance, k)
    result["studies"] = int(len(keys))
    result["finding_sets"] = int(len(set(keys)))
    return result
