"""Typed access to the remote-sensing dataset cards in `datasets/remote_sensing/`."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

import numpy as np

from core.resources import dataset_card


@cache
def card(name: str) -> dict[str, Any]:
    """A remote-sensing dataset card by short name (``"sentinel2"``, ``"dynamic_world"``, ...)."""
    return dataset_card(f"remote_sensing/{name}")


def s2_bands(level: str | None = None) -> list[str]:
    """Sentinel-2 band names in file order for a processing level (default: L1C, 13 bands)."""
    s2 = card("sentinel2")
    return list(s2["levels"][level or s2["default_level"]])


def s1_bands() -> list[str]:
    """Sentinel-1 band names in file order (VV, VH)."""
    return list(card("sentinel1")["band_order"])


def land_cover_classes() -> list[str]:
    """The 9 Dynamic World classes, in product order."""
    return list(card("dynamic_world")["classes"])


def fraction_columns() -> list[str]:
    """Metadata columns holding the area fraction of each land-cover class (``frac_<class>``)."""
    return [f"frac_{c.replace(' ', '_')}" for c in land_cover_classes()]


def crisis_tags() -> list[str]:
    """The crisis tags (flooded area, burned area, earthquake damage)."""
    return list(card("crisis")["tags"])


def label_vocabulary() -> list[str]:
    """The multi-hot label order: 9 Dynamic World classes, then the 3 crisis tags."""
    return land_cover_classes() + crisis_tags()


def normalisation(sensor: str, bands: list[str] | None = None,
                  level: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-band (mean, std) used to standardise a sensor's values.

    S2 statistics apply to reflectance ((DN + offset) / 10000, what the readers return),
    one set per processing level (SSL4EO-S12's L1C and L2A statistics, see the card);
    S1 statistics to σ0 in dB.

    Args:
        sensor: ``"s2"`` or ``"s1"``.
        bands: Band subset (default: all bands of the sensor).
        level: Sentinel-2 processing level, ``"L1C"`` or ``"L2A"`` (default: the card's
            ``default_level``); ignored for S1.

    Returns:
        Two float32 arrays of length ``len(bands)``.
    """
    if sensor == "s2":
        s2 = card("sentinel2")
        level = level or s2["default_level"]
        if level not in s2["levels"]:
            raise ValueError(f"unknown Sentinel-2 level {level!r}; known: {list(s2['levels'])}")
        all_bands, stats = s2_bands("L1C"), s2["normalisation"][level]
    elif sensor == "s1":
        all_bands, stats = s1_bands(), card("sentinel1")["normalisation"]
    else:
        raise ValueError(f"unknown sensor {sensor!r}; known: s1, s2")
    bands = bands or all_bands
    unknown = [b for b in bands if b not in all_bands]
    if unknown:
        raise ValueError(f"unknown {sensor} bands {unknown}; known: {all_bands}")
    index = [all_bands.index(b) for b in bands]
    mean = np.asarray(stats["mean"], dtype=np.float32)[index]
    std = np.asarray(stats["std"], dtype=np.float32)[index]
    return mean, std


def min_label_fraction() -> float:
    """Smallest area fraction for a land-cover class to be named in a scene's labels."""
    return float(card("captions").get("min_label_fraction", 0.05))


def _key(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").replace("/", " ").replace("-", " ")
                    .split())


@cache
def _label_lookup() -> dict[str, str]:
    lookup = {_key(k): v for k, v in card("corine_to_dynamic_world")["corine_level3_names"].items()}
    lookup |= {_key(k): v for k, v in card("dynamic_world").get("aliases", {}).items()}
    lookup |= {_key(k): v for k, v in card("corine_to_dynamic_world")["bigearthnet19"].items()}
    lookup |= {_key(name): name for name in label_vocabulary()}
    return lookup


def canonical_label(name: str) -> str | None:
    """The vocabulary name of a label spelled as a real archive spells it, or ``None``.

    Accepts the vocabulary itself in any case ("Trees", "snow_and_ice"), Dynamic World's short
    names ("built", "bare"), CORINE level-3 names and the BigEarthNet 19-class names (mapped
    to Dynamic World by ``corine_to_dynamic_world.yaml``).

    Args:
        name: A label as found in an archive.

    Returns:
        The label in :func:`label_vocabulary`, or ``None`` if it has no counterpart.
    """
    return _label_lookup().get(_key(name))


def canonical_labels(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Map archive labels to the vocabulary: (known labels in first-seen order, unknown ones)."""
    known: list[str] = []
    unknown: list[str] = []
    for name in names:
        label = canonical_label(name)
        if label is None:
            unknown.append(str(name))
        elif label not in known:
            known.append(label)
    return known, unknown


def labels_from_fractions(fractions: np.ndarray, tags: Iterable[str] = ()) -> list[str]:
    """Land-cover labels covering at least :func:`min_label_fraction`, largest first, then tags.

    Args:
        fractions: (9,) area fraction of each Dynamic World class.
        tags: Crisis tags of the scene.

    Returns:
        The ordered label list (at least the largest class when any area is known).
    """
    classes = land_cover_classes()
    order = np.argsort(-np.asarray(fractions), kind="stable")
    labels = [classes[i] for i in order if fractions[i] >= min_label_fraction()]
    if not labels and np.nansum(fractions) > 0:
        labels = [classes[int(order[0])]]
    return labels + [t for t in tags if t not in labels]


def caption_for(labels: list[str]) -> str:
    """Caption of a label list (already ordered): lower-cased, joined with ". "."""
    return card("captions")["separator"].join(label.lower() for label in labels)


def zero_shot_templates() -> list[str]:
    """Default prompt templates for zero-shot land-cover classification (see
    :func:`domains.remote_sensing.captions.default_zero_shot`)."""
    return list(card("captions")["zero_shot_templates"])


def class_synonyms() -> dict[str, list[str]]:
    """The other training names of each Dynamic World class (captions card ``class_names``).

    Training text only: the held-out names (``held_out_phrasings.yaml``) are never here.
    """
    names = card("captions").get("class_names", {})
    return {c: [n for n in names.get(c, []) if n != c] for c in land_cover_classes()}


def s2_bands_for_count(count: int) -> list[str] | None:
    """The Sentinel-2 band order of a file with ``count`` bands: L1C (13), L2A (12), or None."""
    for level, bands in card("sentinel2")["levels"].items():
        if len(bands) == count:
            return s2_bands(level)
    return None


def corine_code_label(code: int) -> str | None:
    """The Dynamic World class of a CORINE Land Cover level-3 code (e.g. 112), or ``None``.

    Uses the longest prefix of the code found in ``corine43_prefix`` of the
    ``corine_to_dynamic_world`` card.
    """
    prefixes = card("corine_to_dynamic_world")["corine43_prefix"]
    text = str(int(code))
    for length in range(len(text), 0, -1):
        if text[:length] in prefixes:
            return str(prefixes[text[:length]])
    return None


def class_fractions(class_map: np.ndarray, code_labels: dict[int, str | None]) -> np.ndarray:
    """Area fraction of each Dynamic World class in a map of archive class codes.

    Args:
        class_map: (H, W) integer codes (CORINE, IGBP, ...).
        code_labels: Code -> Dynamic World class (codes mapped to ``None`` or absent count
            as unlabelled area and are left out of the denominator).

    Returns:
        (9,) float32 fractions summing to 1 over the labelled area (all NaN if none).
    """
    classes = land_cover_classes()
    codes, counts = np.unique(np.asarray(class_map), return_counts=True)
    area = np.zeros(len(classes), dtype=np.float64)
    for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
        label = code_labels.get(int(code))
        if label in classes:
            area[classes.index(label)] += count
    total = area.sum()
    if total == 0:
        return np.full(len(classes), np.nan, dtype=np.float32)
    return (area / total).astype(np.float32)


def order_by_area(labels: list[str], fractions: np.ndarray | None) -> list[str]:
    """Land-cover labels largest area first (stable where unknown), crisis tags last."""
    classes = land_cover_classes()
    cover = [label for label in labels if label in classes]
    if fractions is not None and np.isfinite(fractions).all():
        cover.sort(key=lambda label: -float(fractions[classes.index(label)]))
    return cover + [label for label in labels if label not in classes]
