"""Where and when scenes are, which land cover is likely there, and which crises hit them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np


@dataclass
class Placement:
    """A scene's place and time and what that implies.

    Attributes:
        lon: Longitude in degrees.
        lat: Latitude in degrees.
        date: Acquisition date.
        region: Region name.
        biome: Biome name (sets the class priors).
        event: Index of the crisis event covering the scene, or -1.
    """

    lon: float
    lat: float
    date: dt.date
    region: str
    biome: str
    event: int


def _date(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def _in_box(lon: float, lat: float, box: list[float]) -> bool:
    return box[0] <= lon <= box[2] and box[1] <= lat <= box[3]


def place_scene(rng: np.random.Generator, card: dict, event_bias: float = 0.6) -> Placement:
    """Draw a scene's location, date and (if it falls in one) crisis event.

    Scenes in a region that holds an event are drawn inside the event's box and
    window with probability ``event_bias`` so events have enough scenes; the rest
    of the region and the rest of the time stay unaffected.

    Args:
        rng: Random generator.
        card: The `synthetic` dataset card.
        event_bias: Chance that a scene of an event's region is placed in the event.

    Returns:
        The placement.
    """
    regions = card["regions"]
    weights = np.asarray([r["weight"] for r in regions], dtype=float)
    region = regions[rng.choice(len(regions), p=weights / weights.sum())]
    start, end = (_date(d) for d in card["date_range"])
    events = card["events"]
    in_region = [i for i, e in enumerate(events) if _boxes_overlap(e["box"], region["box"])]
    box, first, last = region["box"], start, end
    if in_region and rng.random() < event_bias:
        event = events[in_region[0]]
        box, first, last = event["box"], _date(event["start"]), _date(event["end"])
    lon = float(rng.uniform(box[0], box[2]))
    lat = float(rng.uniform(box[1], box[3]))
    date = first + dt.timedelta(days=int(rng.integers(0, (last - first).days + 1)))
    covering = -1
    for index, event in enumerate(events):
        if _in_box(lon, lat, event["box"]) and _date(event["start"]) <= date <= _date(event["end"]):
            covering = index
    return Placement(lon, lat, date, region["name"], region["biome"], covering)


def _boxes_overlap(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def class_logits(
    rng: np.random.Generator, biome_weights: dict[str, float], classes: list[str],
    required: dict[str, float] | None = None,
) -> np.ndarray:
    """Log-weights of the classes present in one scene.

    Two to four classes are drawn from the biome's weights; the first drawn
    dominates. Classes in ``required`` are always present.

    Args:
        rng: Random generator.
        biome_weights: Class name -> weight for the scene's biome.
        classes: The class vocabulary.
        required: Classes that must be present (name -> minimum log-weight).

    Returns:
        (K,) log-weights, ``-inf`` for absent classes.
    """
    names = list(biome_weights)
    p = np.asarray([biome_weights[n] for n in names], dtype=float)
    count = min(int(rng.integers(2, 5)), len(names))
    chosen = list(rng.choice(len(names), size=count, replace=False, p=p / p.sum()))
    logits = np.full(len(classes), -np.inf, dtype=np.float32)
    for rank, index in enumerate(chosen):
        boost = rng.uniform(1.2, 2.2) if rank == 0 else rng.uniform(-0.4, 0.6)
        logits[classes.index(names[index])] = boost
    for name, minimum in (required or {}).items():
        current = logits[classes.index(name)]
        logits[classes.index(name)] = max(current, minimum) if np.isfinite(current) else minimum
    return logits
