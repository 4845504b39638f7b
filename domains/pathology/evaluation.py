"""Pathology metrics on embeddings: tile zero-shot (CONCH), slide zero-shot (MI-Zero), retrieval.

Built on :class:`core.zero_shot.PromptClassifier` (cached prompt embeddings),
:mod:`core.classification` (accuracy, balanced accuracy, per-class F1, confusion),
:mod:`core.baselines` (chance, majority class) and :mod:`core.metrics` (Recall@k and
its random-ranking expectation). What is about pathology:

- tile zero-shot with three prompt sets from the knowledge card, side by side:
  ``single`` (the class name in the first template), ``ensemble`` (CONCH: class names x
  synonyms x templates, averaged) and ``descriptions`` (the card's morphology
  descriptions, averaged); a class outside the card is prompted by its name;
- slide zero-shot as MI-Zero: every tile of a slide is scored against each class's
  prompts, a class's slide logit is the mean of its K highest tile logits (top-K
  pooling), and the softmax over the slide classes gives slide probabilities — so a
  slide with a small tumour region is still called tumour; :func:`choose_top_k` picks K
  on validation slides, ties going to the configured K rather than an end of the list;
- caption <-> tile Recall@k, a hit being a tile of the same class (and, stricter, the
  tile's own caption), with the random-ranking expectation beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from core.baselines import chance_classification, majority_classification
from core.classification import classification_report
from core.metrics import random_recall_at_k, recall_at_k
from core.zero_shot import PromptClassifier
from domains.pathology import cards

PROMPT_KINDS = ("single", "ensemble", "descriptions")
RECALL_KS = (1, 5, 10)


def class_prompts(cls: str, kind: str = "ensemble", max_templates: int | None = None
                  ) -> list[str]:
    """The prompts of one tissue class.

    Args:
        cls: A card class (by name, code or synonym) or any other class name.
        kind: ``"single"``, ``"ensemble"`` or ``"descriptions"`` (see the module doc).
        max_templates: Use only the card's first N templates (``None``: all; a quick
            evaluation).

    Returns:
        The prompts whose mean embedding stands for the class.
    """
    if kind not in PROMPT_KINDS:
        raise ValueError(f"prompt kind must be one of {PROMPT_KINDS}, got {kind!r}")
    templates = cards.prompt_templates()[:max_templates]
    known = cards.code_to_class(cls)
    name = known or cls.strip()
    if kind == "single":
        return [templates[0].format(name)]
    if kind == "descriptions" and known is not None and cards.descriptions(known):
        return list(cards.descriptions(known))
    aliases = [name, *(cards.synonyms(known) if known is not None else [])]
    return [template.format(alias) for alias in dict.fromkeys(aliases) for template in templates]


def zero_shot_logits(classifier: PromptClassifier, features: torch.Tensor,
                     classes: Sequence[str], kind: str = "ensemble",
                     prompts: dict[str, list[str]] | None = None,
                     max_templates: int | None = None) -> torch.Tensor:
    """Scaled cosine similarities of tiles to each class's prompt set.

    Args:
        classifier: The run's prompt classifier (prompt embeddings are cached).
        features: (N, D) normalised tile embeddings on the CPU.
        classes: The C class names (distinct).
        kind: Prompt kind (see :func:`class_prompts`).
        prompts: Explicit prompts per class, overriding the card's.
        max_templates: Use only the card's first N templates (``None``: all).

    Returns:
        (N, C) logits; their softmax over C is the class probability.
    """
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names, at least one; got {list(classes)}")
    sets = [(prompts or {}).get(c) or class_prompts(c, kind, max_templates) for c in classes]
    embeddings = classifier.prompt_set_embeddings(sets)  # (D, C)
    scale = float(classifier.model.scale().detach())
    return scale * features.float() @ embeddings  # (N, C)


def tile_zero_shot(logits: torch.Tensor | np.ndarray, target: np.ndarray,
                   classes: Sequence[str]) -> dict[str, Any]:
    """Accuracy, balanced accuracy, per-class F1 and confusion of tiles with a known class.

    Args:
        logits: (N, C) scores.
        target: (N,) class indices, -1 for tiles of unknown class (left out).
        classes: The C class names.
    """
    target = np.asarray(target)
    keep = target >= 0
    scores = np.asarray(logits)[keep]
    return classification_report(scores, target[keep], list(classes))


def tile_baselines(target: np.ndarray, num_classes: int,
                   reference: np.ndarray | None = None) -> dict[str, Any]:
    """Chance and majority-class figures of the tiles with a known class.

    Args:
        target: (N,) class indices (-1 unknown, left out).
        num_classes: C.
        reference: (M,) class indices the majority is taken from (default, or when it
            holds no known class: ``target``).
    """
    target = np.asarray(target)
    if reference is not None:
        reference = np.asarray(reference)
        reference = reference[reference >= 0]
        if len(reference) == 0:  # e.g. an evaluation folder that is all test tiles
            reference = None
    return {"chance": chance_classification(num_classes),
            "majority": majority_classification(target[target >= 0], num_classes, reference)}


def top_k_pool(scores: torch.Tensor | np.ndarray, k: int) -> np.ndarray:
    """MI-Zero's top-K pooling: per class, the mean of its K highest tile scores.

    Args:
        scores: (T, C) tile scores of one slide.
        k: Tiles pooled per class (clipped to T).

    Returns:
        (C,) slide scores.
    """
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0:
        raise ValueError(f"top-K pooling needs (tiles, classes) scores of at least one tile, "
                         f"got shape {array.shape}")
    if k < 1:
        raise ValueError(f"K must be >= 1, got {k}")
    k = min(k, array.shape[0])
    top = -np.sort(-array, axis=0)[:k]  # (k, C), highest first
    return top.mean(0)


def choose_top_k(by_k: Mapping[int, float], default: int) -> int:
    """The slide-pooling K the validation slides support best, ties settled by a prior.

    Balanced accuracy on a handful of validation slides is coarse: several K often score
    the same, and "the largest of the tied K" (or the smallest) then picks an end of the
    candidate list by accident. A tie means the validation cannot tell those K apart, so
    it is settled by the prior instead: the tied K nearest to ``default`` (the run
    config's K), and of two equally near the smaller one — a small K keeps a small tumour
    region from being averaged away with the slide's normal tiles, which is what top-K
    pooling is for (MI-Zero).

    Args:
        by_k: Validation balanced accuracy per candidate K (NaN: not measured).
        default: The prior K (also returned when nothing was measured).

    Returns:
        The chosen K.
    """
    if default < 1:
        raise ValueError(f"the default K must be >= 1, got {default}")
    measured = {int(k): float(v) for k, v in by_k.items() if not np.isnan(v)}
    if not measured:
        return default
    best = max(measured.values())
    tied = [k for k, v in measured.items() if v == best]
    return min(tied, key=lambda k: (abs(k - default), k))


def slide_scores(tile_logits: torch.Tensor | np.ndarray, classes: Sequence[str],
                 slide_classes: Sequence[str], k: int) -> np.ndarray:
    """Slide probabilities over ``slide_classes``, as MI-Zero: top-K pooled logits, softmax.

    A tile's logit for a class is its scaled cosine similarity to the class's prompts
    (independent of the other classes), so pooling the slide classes' columns of a
    larger vocabulary gives the same slide scores as scoring those classes alone.

    Args:
        tile_logits: (T, C) per-tile logits over ``classes``.
        classes: The C tile classes.
        slide_classes: The S slide-level classes, each one of ``classes``.
        k: Tiles pooled per class.

    Returns:
        (S,) slide probabilities (softmax of the pooled logits).
    """
    missing = [c for c in slide_classes if c not in classes]
    if missing:
        raise ValueError(f"slide classes {missing} are not among the tile classes {list(classes)}")
    pooled = top_k_pool(tile_logits, k)[[list(classes).index(c) for c in slide_classes]]  # (S,)
    return torch.from_numpy(pooled).softmax(0).numpy()


def slide_zero_shot(slide_probabilities: np.ndarray, target: np.ndarray,
                    slide_classes: Sequence[str]) -> dict[str, Any]:
    """Slide-level figures with chance and majority baselines.

    Args:
        slide_probabilities: (S_n, S) probabilities per slide.
        target: (S_n,) slide class indices.
        slide_classes: The S slide classes.
    """
    target = np.asarray(target, dtype=np.int64)
    report = classification_report(np.asarray(slide_probabilities), target, list(slide_classes))
    return {**report, "chance": chance_classification(len(slide_classes)),
            "majority": majority_classification(target, len(slide_classes))}


def retrieval_metrics(tile_features: torch.Tensor, caption_features: torch.Tensor,
                      target: np.ndarray, ks: Sequence[int] = RECALL_KS) -> dict[str, Any]:
    """Caption <-> tile Recall@k on one split, with the random-ranking expectation.

    A hit is a tile (caption) of the same class; a tile of unknown class only hits its
    own caption. ``own_*`` figures count only the tile's own caption (instance retrieval).

    Args:
        tile_features: (N, D) normalised tile embeddings.
        caption_features: (N, D) normalised caption embeddings of the same tiles.
        target: (N,) class indices (-1 unknown).
        ks: Cut-offs.

    Returns:
        ``caption_to_tile_recall@k``, ``tile_to_caption_recall@k``, ``random_recall@k``,
        ``own_caption_to_tile_recall@k``, ``own_random_recall@k``, ``tiles``.
    """
    target = np.asarray(target)
    same = (target[:, None] == target[None, :]) & (target[:, None] >= 0)  # (N, N)
    own = np.eye(len(target), dtype=bool)
    relevance = same | own
    similarity = (caption_features.float() @ tile_features.float().T).numpy()  # (N captions, N)
    result: dict[str, Any] = {"tiles": int(len(target))}
    for k in ks:
        result[f"caption_to_tile_recall@{k}"] = recall_at_k(similarity, relevance, k)
        result[f"tile_to_caption_recall@{k}"] = recall_at_k(similarity.T, relevance, k)
        result[f"random_recall@{k}"] = random_recall_at_k(relevance, k)
        result[f"own_caption_to_tile_recall@{k}"] = recall_at_k(similarity, own, k)
        result[f"own_random_recall@{k}"] = random_recall_at_k(own, k)
    return result
