"""Sentinel-1/2 dictionary transforms: band standardisation and caption augmentation.

The generic transforms (per-channel standardisation, resizing, flips) are in
:mod:`core.transforms`; this module adds the sensors' statistics (from the dataset
cards), the area-weighted caption rewriting and the caption styles of training
(:class:`SceneCaptions`, written by :mod:`~domains.remote_sensing.captions`). Training
(the data module) and inference (:class:`~domains.remote_sensing.run_model.SceneRun`)
both normalise through :func:`normaliser`, so a model sees scenes exactly as in training.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import Any

import torch

from core.data import multi_hot
from core.transforms import NormalizeChannels, RandomTransform, derive_seed
from domains.remote_sensing import cards
from domains.remote_sensing.captions import CaptionGenerator


class SensorNormalizer:
    """Standardise ``sample["image"]`` with its sensor's (and S2 processing level's) statistics.

    Sentinel-2 scenes arrive as reflectance, Sentinel-1 as dB (the readers' contract, see
    :mod:`~domains.remote_sensing.inputs`). An S2 sample carrying ``"level"`` (what its
    reader found: "L1C" or "L2A") is standardised with that level's statistics, so a
    scene of either level lands in the same standardised range; a sample without one uses
    ``level``. NaN (nodata) becomes 0, the band mean.

    Args:
        sensor: ``"s2"`` or ``"s1"``.
        bands: The bands, in the model's order.
        level: The S2 level for samples that do not say (default: the card's).

    Attributes:
        level: The default S2 level (``None`` for S1).
    """

    def __init__(self, sensor: str, bands: Sequence[str], level: str | None = None) -> None:
        self.sensor, self.bands = sensor, list(bands)
        self.level = (level or cards.card("sentinel2")["default_level"]) if sensor == "s2" \
            else None
        levels = list(cards.card("sentinel2")["levels"]) if sensor == "s2" else [None]
        self.per_level = {lvl: NormalizeChannels(*cards.normalisation(sensor, self.bands, lvl))
                          for lvl in levels}

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image standardised."""
        level = sample.get("level") or self.level
        if level not in self.per_level:
            raise ValueError(f"{sample.get('path', 'sample')}: unknown Sentinel-2 level "
                             f"{level!r}; known: {', '.join(map(str, self.per_level))}")
        return self.per_level[level](sample)


def normaliser(sensor: str, bands: Sequence[str], level: str | None = None) -> SensorNormalizer:
    """The standardisation of a sensor's bands: S2 reflectance per level, S1 dB.

    Args:
        sensor: ``"s2"`` or ``"s1"``.
        bands: The bands, in the model's order.
        level: The S2 level of samples that carry none (default: the card's ``default_level``).

    Returns:
        A dictionary transform of ``sample["image"]``.
    """
    return SensorNormalizer(sensor, bands, level)


def sensor_bands(extra: dict[str, Any]) -> dict[str, list[str]]:
    """Band order per sensor from a model config's ``extra.sensors`` (card order if absent).

    Args:
        extra: The model config's ``extra`` mapping.

    Returns:
        ``{"s2": [...], "s1": [...]}``.
    """
    sensors = extra.get("sensors", {})
    return {"s2": list(sensors.get("s2", {}).get("bands") or cards.s2_bands("L1C")),
            "s1": list(sensors.get("s1", {}).get("bands") or cards.s1_bands())}


class AreaWeightedCaptions(RandomTransform):
    """Caption augmentation: sometimes describe only the classes covering enough area.

    With probability ``p`` a threshold t ~ U(min_fraction, max_fraction) is drawn and the
    caption (and the multi-hot ``label``) keep only the land-cover classes covering at
    least t of the scene — the largest class always stays, crisis tags always stay. A
    class covering most of a scene is thus named in nearly every caption, a sliver rarely,
    which teaches the image embedding what dominates the scene. Samples without area
    fractions keep their caption. Every call draws two uniforms (rewrite?, threshold)
    from the transform's generator, which a training loader reseeds per sample (see
    :class:`~core.transforms.RandomTransform`).

    Args:
        p: Probability of rewriting a caption.
        min_fraction: Lower bound of the threshold.
        max_fraction: Upper bound of the threshold.
        seed: Seed of the transform's generator.
    """

    def __init__(self, p: float = 0.5, min_fraction: float = 0.05, max_fraction: float = 0.5,
                 seed: int = 0) -> None:
        super().__init__(seed)
        self.p, self.low, self.high = p, min_fraction, max_fraction
        self.classes = cards.land_cover_classes()
        self.vocabulary = cards.label_vocabulary()
        self.caption_for = cards.caption_for

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample, possibly with a shorter caption and matching labels."""
        return self.drop(sample, self.generator)

    def drop(self, sample: dict[str, Any], generator: torch.Generator) -> dict[str, Any]:
        """:meth:`__call__` with the draws from ``generator``."""
        fractions = sample.get("fractions")
        names = [n for n in sample.get("label_names", "").split("; ") if n]
        draw = torch.rand(2, generator=generator)
        if fractions is None or torch.isnan(fractions).any() or not names or draw[0] >= self.p:
            return sample
        threshold = self.low + float(draw[1]) * (self.high - self.low)
        largest = self.classes[int(fractions.argmax())]
        kept = [n for n in names if n not in self.classes or n == largest
                or fractions[self.classes.index(n)] >= threshold]
        return {**sample, "caption": self.caption_for(kept),
                "label": multi_hot(kept, self.vocabulary),
                "label_names": "; ".join(kept)}


class SceneCaptions(AreaWeightedCaptions):
    """Training captions: area-weighted dropping, then one caption style per sample and step.

    First :class:`AreaWeightedCaptions` (with probability ``p`` only the classes covering
    enough area stay); then a style drawn by weight (:class:`~domains.remote_sensing.
    captions.CaptionGenerator`: CLOSP's label list, a sentence with area words, a sentence
    with the place) writes the caption of the labels kept, so ``label`` / ``label_names``
    always name the classes the caption names. The place comes from the sample's
    ``region``, ``biome``, ``date`` and ``coords`` (latitude) where the archive has them;
    a style without its metadata falls back. A label-list caption of the full label set
    keeps the sample's own caption (an archive's text).

    The style is drawn per step from the transform's generator (which a training loader
    reseeds per sample), and so is a label list's dropping: label lists of label subsets
    are few distinct texts. A sentence is one of ``variants`` fixed sentences of the scene
    (the captions card's ``sentence_variants_per_scene``): variant k's sentence style,
    dropping and words are drawn from a stream seeded by the scene's id and k alone. A
    frozen text tower thus encodes at most ``variants`` sentences per scene over a whole
    run, and its on-disk cache serves the companions and other seeds (``variants=None``:
    a new sentence every step).

    Args:
        p: Probability of area-weighted dropping.
        styles: Style -> weight (default: the captions card's ``styles``).
        min_fraction: Lower bound of the dropping threshold (default: the card's).
        max_fraction: Upper bound of the dropping threshold (default: the card's).
        variants: Sentences per scene (default: the card's ``sentence_variants_per_scene``).
        seed: Seed of the transform's generator.
    """

    def __init__(self, p: float = 0.5, styles: dict[str, float] | None = None,
                 min_fraction: float | None = None, max_fraction: float | None = None,
                 variants: int | None = -1, seed: int = 0) -> None:
        card = cards.card("captions")
        drop = card.get("area_drop", {})
        super().__init__(p, drop.get("min_fraction", 0.05) if min_fraction is None
                         else min_fraction,
                         drop.get("max_fraction", 0.5) if max_fraction is None
                         else max_fraction, seed)
        self.writer = CaptionGenerator(styles)
        self.variants = card.get("sentence_variants_per_scene") if variants == -1 \
            else variants
        if self.variants is not None and int(self.variants) < 1:
            raise ValueError(f"sentence variants per scene must be >= 1, got {self.variants}")

    def _stream(self, sample: dict[str, Any], style: str) -> torch.Generator:
        """The generator of this sample's caption: a sentence variant of its scene, or the
        transform's own (label lists, or ``variants=None``)."""
        if self.variants is None or style == "label_list":
            return self.generator
        k = int(torch.randint(int(self.variants), (1,), generator=self.generator))
        scene = zlib.crc32(str(sample.get("id", sample.get("path", ""))).encode())
        return torch.Generator().manual_seed(derive_seed(scene, k, _VARIANT_SALT))

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with a caption in a drawn style and labels to match."""
        style = self.writer.draw_style(self.generator)
        generator = self._stream(sample, style)
        if generator is not self.generator:  # a sentence variant: its style is its own
            style = self.writer.draw_style(generator, sentences_only=True)
        names_before = sample.get("label_names", "")
        sample = self.drop(sample, generator)
        names = [n for n in sample.get("label_names", "").split("; ") if n]
        fractions = sample.get("fractions")
        fractions = None if fractions is None else fractions.numpy()  # (9,)
        coords = sample.get("coords")
        meta = {"region": sample.get("region"), "biome": sample.get("biome"),
                "date": sample.get("date"),
                "lat": None if coords is None else float(coords[1])}
        caption, style = self.writer.caption(names, fractions, meta, generator, style)
        if style == "label_list" and sample.get("label_names", "") == names_before \
                and sample.get("caption"):
            return sample  # the archive's own caption of the full label set
        return {**sample, "caption": caption}


_VARIANT_SALT = zlib.crc32(b"caption variant")
