"""Captions people would write, and the held-out phrasings evaluation alone uses.

The training captions card (``datasets/remote_sensing/captions.yaml``) holds every name,
template and word of the training text; this module only assembles them. A scene gets one
of several styles:

* ``label_list``: CLOSP's caption, the labels joined with ". " (largest area first, then
  crisis tags) — :func:`training_query` is this phrasing;
* ``area_sentence``: the labels in a sentence with area words from the class fractions
  ("an aerial view of mostly forest with some farmland and a little water");
* ``place_sentence``: the same with the region, biome or season where the scene's metadata
  has them ("a summer scene in Central Europe: mostly crops with some trees"); the season
  comes from the month and the hemisphere.

Crisis tags get varied names in the sentence styles ("flooded fields", "areas under flood
water"). A style whose metadata is missing falls back (place -> area -> label list), so
real archives with only lon/lat/date still get sentences.

The held-out card (``held_out_phrasings.yaml``) holds templates and names that never occur
in training text (tests/test_rs_captions.py checks it against everything the generator can
write): :func:`held_out_zero_shot` and :func:`held_out_query` measure what the model does
with words it never saw. :func:`default_zero_shot` gives the training-vocabulary prompts
of the run's own evaluation and of :class:`~domains.remote_sensing.classifier.
LandCoverClassifier`'s defaults (chosen on the validation split, see docs/zero_shot.md).

Randomness comes from a ``torch.Generator`` the caller owns (the training transform
reseeds it per sample, :class:`~domains.remote_sensing.transforms.SceneCaptions`).
"""

from __future__ import annotations

import datetime as dt
import math
import zlib
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any

import numpy as np
import torch

from domains.remote_sensing import cards

#: The caption styles, in fallback order (each falls back to the one before).
STYLES = ("label_list", "area_sentence", "place_sentence")


def training_card() -> dict[str, Any]:
    """The training captions card (``captions.yaml``)."""
    return cards.card("captions")


def held_out_card() -> dict[str, Any]:
    """The held-out phrasings card (``held_out_phrasings.yaml``): evaluation only."""
    return cards.card("held_out_phrasings")


def training_names() -> dict[str, list[str]]:
    """Label -> its training names (the vocabulary name first), for all 12 labels."""
    names = training_card()["class_names"]
    return {label: list(names.get(label, [label])) for label in cards.label_vocabulary()}


def held_out_names() -> dict[str, list[str]]:
    """Label -> its held-out names (never in training), for all 12 labels."""
    names = held_out_card()["class_names"]
    missing = [label for label in cards.label_vocabulary() if not names.get(label)]
    if missing:
        raise ValueError(f"held_out_phrasings.yaml: no held-out name for {missing}")
    return {label: list(names[label]) for label in cards.label_vocabulary()}


def default_zero_shot() -> tuple[list[str], list[str], dict[str, list[str]]]:
    """The training-vocabulary zero-shot prompts: (classes, templates, synonyms).

    The 9 Dynamic World classes in product order, the captions card's
    ``zero_shot_templates`` and, when its ``zero_shot_synonyms`` is true, each class's
    other training names. The run's own zero-shot evaluation and the classifier's
    defaults both use these, so the two agree.
    """
    card = training_card()
    classes = cards.land_cover_classes()
    synonyms: dict[str, list[str]] = {}
    if card.get("zero_shot_synonyms", False):
        names = training_names()
        synonyms = {c: [n for n in names[c] if n != c] for c in classes}
    return classes, list(card["zero_shot_templates"]), synonyms


def held_out_zero_shot() -> tuple[list[str], list[str], dict[str, list[str]]]:
    """Held-out zero-shot prompts: (classes, templates, synonyms), never seen in training.

    Class i is the first held-out name of Dynamic World class i (product order), the
    templates are the held-out card's, the other held-out names are its synonyms.
    """
    names = held_out_names()
    classes = [names[c][0] for c in cards.land_cover_classes()]
    synonyms = {names[c][0]: names[c][1:] for c in cards.land_cover_classes()}
    return classes, list(held_out_card()["templates"]), synonyms


def _join(parts: Sequence[str], list_joiner: str, last_joiner: str) -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    if len(parts) <= 1:
        return "".join(parts)
    return list_joiner.join(parts[:-1]) + last_joiner + parts[-1]


def training_query(label_names: Sequence[str]) -> str:
    """The training phrasing of a label set: CLOSP's label-list caption."""
    return cards.caption_for(list(label_names))


def held_out_query(label_names: Sequence[str]) -> str:
    """A held-out phrasing of a label set (deterministic: same labels, same text).

    Each label by its first held-out name, joined as "a, b and c", in a held-out template
    chosen by a checksum of the label set.

    Args:
        label_names: Vocabulary labels (any order is kept).

    Returns:
        The query text.
    """
    labels = list(label_names)
    if not labels:
        raise ValueError("held_out_query needs at least one label")
    card, names = held_out_card(), held_out_names()
    unknown = [label for label in labels if label not in names]
    if unknown:
        raise ValueError(f"held_out_query: unknown labels {unknown}; known: {list(names)}")
    phrase = _join([names[label][0] for label in labels], card["list_joiner"],
                   card["last_joiner"])
    templates = card["templates"]
    return templates[zlib.crc32("; ".join(labels).encode()) % len(templates)].format(phrase)


def season(date: str | None, lat: float | None) -> str | None:
    """The season of an acquisition from its month and hemisphere (``None`` if unknown).

    Within the card's ``tropics_lat`` of the equator no season is named.
    """
    card = training_card()
    if not date or lat is None or not math.isfinite(lat) or abs(lat) < card["tropics_lat"]:
        return None
    try:
        month = dt.date.fromisoformat(str(date)[:10]).month
    except ValueError:
        return None
    if lat < 0:
        month = (month + 5) % 12 + 1  # six months on
    return str(card["seasons"][month])


def style_weights(weights: Mapping[str, float] | None = None) -> dict[str, float]:
    """Caption style -> weight (the card's, or ``weights``), checked.

    Raises:
        ValueError: An unknown style, a negative weight or no positive weight.
    """
    weights = dict(training_card()["styles"] if weights is None else weights)
    unknown = [s for s in weights if s not in STYLES]
    if unknown:
        raise ValueError(f"unknown caption styles {unknown}; known: {list(STYLES)}")
    if any(float(w) < 0 for w in weights.values()) or sum(map(float, weights.values())) <= 0:
        raise ValueError(f"caption style weights must be >= 0 with a positive sum: {weights}")
    return {s: float(w) for s, w in weights.items()}


def _pick(options: Sequence[Any], generator: torch.Generator) -> Any:
    """One element of ``options``, uniformly."""
    return options[int(torch.randint(len(options), (1,), generator=generator))]


@cache
def _area_rows() -> tuple[tuple[float, tuple[str, ...]], ...]:
    rows = sorted(training_card()["area_words"], key=lambda r: -float(r["min"]))
    return tuple((float(r["min"]), tuple(r["words"])) for r in rows)


class CaptionGenerator:
    """Writes one caption of a scene in a style, from the training captions card.

    Args:
        weights: Style -> weight (default: the card's ``styles``).
    """

    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self.card = training_card()
        self.weights = style_weights(weights)
        self.names = training_names()
        self.classes = cards.land_cover_classes()

    def draw_style(self, generator: torch.Generator, sentences_only: bool = False) -> str:
        """A style drawn by weight (among the sentence styles alone if ``sentences_only``)."""
        styles = [s for s in self.weights
                  if self.weights[s] > 0 and not (sentences_only and s == "label_list")]
        if not styles:
            return "label_list"
        p = torch.tensor([self.weights[s] for s in styles])
        return styles[int(torch.multinomial(p, 1, generator=generator))]

    def area_word(self, fraction: float, generator: torch.Generator) -> str:
        """An area word for a class covering ``fraction`` of the scene."""
        for minimum, words in _area_rows():
            if fraction >= minimum:
                return _pick(words, generator)
        return _pick(_area_rows()[-1][1], generator)

    def cover_phrase(self, labels: Sequence[str], fractions: np.ndarray | None,
                     generator: torch.Generator) -> str:
        """The labels in words: "mostly forest with some farmland and flooded fields"."""
        card = self.card
        cover = [label for label in labels if label in self.classes]
        crisis = [label for label in labels if label not in self.classes]
        known = fractions is not None and bool(np.isfinite(fractions).all())
        parts = []
        for label in cover:
            name = _pick(self.names[label], generator)
            if known:
                name = f"{self.area_word(float(fractions[self.classes.index(label)]), generator)}" \
                       f" {name}"
            parts.append(name)
        if len(parts) > 1 and known:
            phrase = parts[0] + card["first_joiner"] + _join(parts[1:], card["list_joiner"],
                                                             card["last_joiner"])
        else:
            phrase = _join(parts, card["list_joiner"], card["last_joiner"])
        if crisis:
            damage = _join([_pick(self.names[t], generator) for t in crisis],
                           card["list_joiner"], card["last_joiner"])
            phrase = phrase + _pick(card["crisis_joiners"], generator) + damage if phrase \
                else damage
        return phrase

    def place_fields(self, meta: Mapping[str, Any], generator: torch.Generator
                     ) -> dict[str, str]:
        """The place words the metadata allows: ``region``, ``biome``, ``season``."""
        fields: dict[str, str] = {}
        region = str(meta.get("region") or "").strip()
        if region:
            fields["region"] = region
        biome = str(meta.get("biome") or "").strip()
        if biome:
            fields["biome"] = _pick(self.card["biome_words"].get(biome, [biome]), generator)
        lat = meta.get("lat")
        when = season(meta.get("date"), None if lat is None else float(lat))
        if when:
            fields["season"] = when
        return fields

    def caption(self, labels: Sequence[str], fractions: np.ndarray | None = None,
                meta: Mapping[str, Any] | None = None, generator: torch.Generator | None = None,
                style: str | None = None) -> tuple[str, str]:
        """One caption of a scene: (caption, the style actually written).

        Args:
            labels: The labels to name (land cover by area, then crisis tags).
            fractions: (9,) class fractions (NaN / ``None``: no area words).
            meta: ``region``, ``biome``, ``date``, ``lat`` where known.
            generator: The random stream (default: a fresh one seeded 0).
            style: The style (default: drawn by weight).

        Returns:
            The caption and its style after fallbacks.
        """
        generator = generator or torch.Generator().manual_seed(0)
        style = style or self.draw_style(generator)
        if style not in STYLES:
            raise ValueError(f"unknown caption style {style!r}; known: {list(STYLES)}")
        labels = list(labels)
        if style == "label_list" or not labels:
            return training_query(labels), "label_list"
        cover = self.cover_phrase(labels, fractions, generator)
        if style == "place_sentence":
            fields = self.place_fields(meta or {}, generator)
            usable = [t for t in self.card["place_templates"]
                      if all(f"{{{k}}}" not in t or k in fields
                             for k in ("region", "biome", "season"))
                      and any(f"{{{k}}}" in t for k in fields)]
            if usable:
                return _pick(usable, generator).format(cover=cover, **fields), style
        return _pick(self.card["sentence_templates"], generator).format(cover), "area_sentence"
