"""Turn scenes into pictures: Sentinel-2 false colour, Sentinel-1 VV / VH / ratio composite."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch


def _stretch(channel: np.ndarray) -> np.ndarray:
    finite = channel[np.isfinite(channel)]
    if finite.size == 0:
        return np.zeros_like(channel)
    low, high = np.percentile(finite, [2, 98])
    return np.clip((np.nan_to_num(channel, nan=low) - low) / max(high - low, 1e-6), 0, 1)


def render_scene(image: torch.Tensor | np.ndarray, sensor: str, bands: Sequence[str]) -> np.ndarray:
    """An RGB picture (H, W, 3) in [0, 1] of a scene (raw or normalised values).

    S2: false colour (B08, B04, B03), or true colour (B04, B03, B02) when NIR is absent.
    S1: red = VV, green = VH, blue = VV - VH (dB ratio).

    Args:
        image: (C, H, W) scene.
        sensor: ``"s2"`` or ``"s1"``.
        bands: Band names of the channels.

    Returns:
        (H, W, 3) float array.
    """
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else image
    bands = list(bands)
    if sensor == "s1":
        vv, vh = array[bands.index("VV")], array[bands.index("VH")]
        channels = [vv, vh, vv - vh]
    else:
        order = ["B08", "B04", "B03"] if "B08" in bands else ["B04", "B03", "B02"]
        channels = [array[bands.index(b)] for b in order]
    return np.stack([_stretch(c) for c in channels], axis=-1)
