"""Stain optics of the synthetic H&E set: per-site stain vectors and Beer-Lambert rendering.

Tissue is painted as haematoxylin and eosin *concentrations* (optical-density units per
unit stain vector); a site (laboratory) turns them into RGB with its own stain vectors,
stain amounts and illumination, as a scanner records a stained section:
``OD = h * h_strength * h_vector + e * e_strength * e_vector + grey``, then
``RGB = background_rgb * 10 ** -OD``. Sites and their numbers live in the data card
``datasets/pathology/synthetic.yaml``; this module reads and checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from core.resources import dataset_card

CARD_FILE = "datasets/pathology/synthetic.yaml"


@dataclass(frozen=True)
class Site:
    """One laboratory's stain: unit stain vectors (OD of R, G, B), amounts, illumination."""

    name: str
    h_vector: tuple[float, float, float]
    e_vector: tuple[float, float, float]
    h_strength: float
    e_strength: float
    background_rgb: tuple[float, float, float]

    def stain_matrix(self) -> np.ndarray:
        """(2, 3) unit H and E optical-density vectors (rows)."""
        return np.array([self.h_vector, self.e_vector], dtype=np.float64)


def _unit(vector: Any, where: str) -> tuple[float, float, float]:
    array = np.asarray(vector, dtype=np.float64)
    if array.shape != (3,) or not np.all(array > 0):
        raise ValueError(f"{CARD_FILE}: {where} must be three positive numbers, got {vector!r}")
    array /= np.linalg.norm(array)
    return (float(array[0]), float(array[1]), float(array[2]))


@cache
def synthetic_card() -> dict[str, Any]:
    """The synthetic-set card, checked: sizes present, every split's sites defined once.

    Raises:
        ValueError: Naming the card and the key at fault.
    """
    card = dataset_card("pathology/synthetic")
    for key in ("mpp", "tile_size", "tiles_per_class_per_site", "slide_size", "slide_levels",
                "slide_tile", "slides_per_site", "tile_stain_jitter", "splits", "sites"):
        if key not in card:
            raise ValueError(f"{CARD_FILE}: missing key {key!r}")
    named = [s for split in ("train", "val", "test") for s in card["splits"].get(split) or []]
    if len(named) != len(set(named)):
        raise ValueError(f"{CARD_FILE}: a site is in two splits: {named}")
    unknown = sorted(set(named) - set(card["sites"]))
    if unknown or not named:
        raise ValueError(f"{CARD_FILE}: splits name sites without a stain: {unknown}")
    return card


def site(name: str, sites: dict[str, Any] | None = None) -> Site:
    """A site's stain from the card (or from ``sites``, the same mapping given inline).

    Args:
        name: Site name (``site0``...).
        sites: Site definitions overriding the card's.

    Returns:
        The site with unit stain vectors.
    """
    table = sites if sites is not None else synthetic_card()["sites"]
    if name not in table:
        raise KeyError(f"unknown site {name!r}; known: {', '.join(table)}")
    entry = table[name]
    background = tuple(float(v) for v in entry["background_rgb"])
    if len(background) != 3 or not all(100 <= v <= 255 for v in background):
        raise ValueError(f"{CARD_FILE}: site {name!r}: background_rgb must be 3 values in "
                         f"[100, 255], got {entry['background_rgb']!r}")
    return Site(name, _unit(entry["h_vector"], f"site {name!r} h_vector"),
                _unit(entry["e_vector"], f"site {name!r} e_vector"),
                float(entry["h_strength"]), float(entry["e_strength"]),
                background)  # type: ignore[arg-type]


def render(h: np.ndarray, e: np.ndarray, grey: np.ndarray | None, stain: Site,
           rng: np.random.Generator, jitter: float = 0.0, noise: float = 1.5,
           illumination: float | np.ndarray = 1.0) -> np.ndarray:
    """Beer-Lambert: stain concentrations -> RGB as the site's scanner records them.

    Args:
        h: (H, W) haematoxylin concentration (OD units).
        e: (H, W) eosin concentration.
        grey: (H, W) neutral optical density (dust, glass), or None.
        stain: The site.
        rng: Random generator (tile jitter, sensor noise).
        jitter: Relative per-call jitter of the H and E amounts (a tile's own staining).
        noise: Sensor (shot) noise standard deviation in 8-bit levels, shared by R, G, B.
        illumination: Relative lamp brightness, one number or (H, W) (a gradient).

    Returns:
        (H, W, 3) uint8 RGB.
    """
    h_amount = stain.h_strength * (1.0 + jitter * rng.standard_normal())
    e_amount = stain.e_strength * (1.0 + jitter * rng.standard_normal())
    vectors = stain.stain_matrix() * np.array([[h_amount], [e_amount]])  # (2, 3)
    maps = [h, e] if grey is None else [h, e, grey]
    mixing = np.vstack([vectors, np.ones((1, 3))])[:len(maps)].astype(np.float32)
    od = np.stack(maps, -1) @ mixing  # (H, W, 3) optical density
    od *= np.float32(-np.log(10))
    rgb = np.exp(od, out=od)
    rgb *= np.asarray(stain.background_rgb, np.float32)
    if not np.isscalar(illumination) or illumination != 1.0:
        rgb *= np.asarray(illumination, np.float32)[..., None] if np.ndim(illumination) \
            else np.float32(illumination)
    if noise > 0:
        rgb += np.float32(noise) * rng.standard_normal(rgb.shape[:2], dtype=np.float32)[..., None]
    rgb += np.float32(0.5)
    np.clip(rgb, 0, 255, out=rgb)
    return rgb.astype(np.uint8)
