"""Zero-shot classification from text prompts (open_clip's [D, C] classifier)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

from core.model import ContrastiveModel


def _check_template(template: str) -> None:
    if "{}" not in template:
        raise ValueError(f"prompt template {template!r} has no '{{}}' placeholder for the class")


@torch.no_grad()
def build_zero_shot_classifier(
    model: ContrastiveModel,
    classnames: Sequence[str],
    templates: Sequence[str],
    synonyms: Mapping[str, Sequence[str]] | None = None,
    modality: str = "text",
    batch_size: int = 256,
) -> torch.Tensor:
    """Embed every class as the mean over its names x templates, re-normalised.

    Args:
        model: The contrastive model.
        classnames: The C class names.
        templates: Prompt templates with one ``{}`` placeholder (``"an image of {}."``).
        synonyms: Optional extra names per class (CONCH-style ensembles).
        modality: The text tower's name.
        batch_size: Prompts embedded per forward pass.

    Returns:
        (D, C) classifier: ``image_features @ classifier`` gives cosine similarities.
    """
    if not classnames:
        raise ValueError("build_zero_shot_classifier needs at least one class name")
    if not templates:
        raise ValueError("build_zero_shot_classifier needs at least one template")
    for template in templates:
        _check_template(template)
    synonyms = synonyms or {}
    prompts: list[str] = []
    owners: list[int] = []
    for index, name in enumerate(classnames):
        for alias in [name, *synonyms.get(name, [])]:
            for template in templates:
                prompts.append(template.format(alias))
                owners.append(index)
    chunks = [model.encode(modality, prompts[i : i + batch_size])
              for i in range(0, len(prompts), batch_size)]
    embeddings = torch.cat(chunks)  # (P, D), normalised
    owner = torch.tensor(owners, device=embeddings.device)  # (P,)
    classifier = torch.zeros(len(classnames), embeddings.shape[1], device=embeddings.device)
    classifier.index_add_(0, owner, embeddings)  # (C, D) sums
    return F.normalize(classifier, dim=1).T.contiguous()  # (D, C)


class PromptClassifier:
    """Zero-shot classes from prompts, for any vocabulary: what every domain's classifier uses.

    Class embeddings (:func:`build_zero_shot_classifier`) are cached per (classes,
    templates, synonyms), so asking again with the same vocabulary embeds no prompt.

    Args:
        model: The contrastive model (its text tower embeds the prompts).
        modality: The text tower's name.
    """

    def __init__(self, model: ContrastiveModel, modality: str = "text") -> None:
        self.model = model
        self.modality = modality
        self._classifiers: dict[tuple, torch.Tensor] = {}

    def class_embeddings(self, classes: Sequence[str], templates: Sequence[str],
                         synonyms: Mapping[str, Sequence[str]] | None = None) -> torch.Tensor:
        """(D, C) normalised class embeddings on the CPU (cached)."""
        synonyms = synonyms or {}
        key = (tuple(classes), tuple(templates),
               tuple(tuple(synonyms.get(c, ())) for c in classes))
        if key not in self._classifiers:
            self._classifiers[key] = build_zero_shot_classifier(
                self.model, list(classes), list(templates), synonyms,
                modality=self.modality).float().cpu()  # (D, C)
        return self._classifiers[key]

    def prompt_set_embeddings(self, prompt_sets: Sequence[Sequence[str]]) -> torch.Tensor:
        """(D, C) normalised embeddings of classes given by explicit prompts (cached).

        Each class is the re-normalised mean of its own prompts, used as they are (no
        template): e.g. knowledge-card descriptions, or a CheXzero positive prompt set.

        Args:
            prompt_sets: Per class, its prompts (at least one each).
        """
        columns = []
        for prompts in prompt_sets:
            prompts = list(prompts)
            if not prompts:
                raise ValueError("every class needs at least one prompt")
            # the "{}" template keeps each prompt as it is; the rest ride as synonyms
            columns.append(self.class_embeddings([prompts[0]], ["{}"],
                                                 {prompts[0]: prompts[1:]}))  # (D, 1)
        return torch.cat(columns, dim=1)  # (D, C)

    @torch.no_grad()
    def scores(self, features: torch.Tensor, classes: Sequence[str], templates: Sequence[str],
               synonyms: Mapping[str, Sequence[str]] | None = None,
               multi_label: bool = False) -> torch.Tensor:
        """Class probabilities (softmax of ``logit_scale x cosine``) or cosine scores.

        Args:
            features: (N, D) normalised embeddings on the CPU.
            classes: The C class names (distinct).
            templates: Prompt templates with one ``{}``.
            synonyms: Extra names per class.
            multi_label: Independent per-class cosine similarities instead of probabilities.

        Returns:
            (N, C) scores; probabilities sum to one per row.
        """
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct names, at least one; got {list(classes)}")
        cosine = features @ self.class_embeddings(classes, templates, synonyms)  # (N, C)
        if multi_label:
            return cosine
        return (float(self.model.scale().detach()) * cosine).softmax(dim=1)  # (N, C)


def zero_shot_logits(
    features: torch.Tensor, classifier: torch.Tensor, logit_scale: torch.Tensor | float = 100.0
) -> torch.Tensor:
    """Scaled cosine similarities of normalised features (N, D) to a classifier (D, C): (N, C)."""
    return logit_scale * features @ classifier


@torch.no_grad()
def positive_negative_scores(
    model: ContrastiveModel,
    features: torch.Tensor,
    classnames: Sequence[str],
    positive_template: str = "{}",
    negative_template: str = "no {}",
    modality: str = "text",
) -> torch.Tensor:
    """Per class, the softmax probability of a positive prompt over a negative one (CheXzero).

    Args:
        model: The contrastive model.
        features: (N, D) normalised image features.
        classnames: The C findings/classes.
        positive_template: Prompt for presence, with ``{}`` for the class.
        negative_template: Prompt for absence, with ``{}`` for the class.
        modality: The text tower's name.

    Returns:
        (N, C) probabilities that each class is present.
    """
    _check_template(positive_template)
    _check_template(negative_template)
    positive = build_zero_shot_classifier(model, classnames, [positive_template], modality=modality)
    negative = build_zero_shot_classifier(model, classnames, [negative_template], modality=modality)
    scale = model.scale()
    logits = torch.stack([features @ positive, features @ negative], dim=-1) * scale  # (N, C, 2)
    return logits.softmax(dim=-1)[..., 0]  # (N, C)
