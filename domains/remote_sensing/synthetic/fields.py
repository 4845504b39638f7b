"""Spatial random fields: smooth Gaussian noise and land-cover maps drawn from it."""

from __future__ import annotations

import numpy as np


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], corr_px: float) -> np.ndarray:
    """Gaussian random fields with a Gaussian correlation of ``corr_px`` pixels, unit variance.

    Args:
        rng: Random generator.
        shape: (..., H, W) output shape; the last two axes are spatial.
        corr_px: Correlation length in pixels.

    Returns:
        float32 fields of ``shape``, each standardised to zero mean and unit std.
    """
    height, width = shape[-2:]
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    kernel = np.exp(-2 * (np.pi * corr_px) ** 2 * (fx**2 + fy**2))  # (H, W//2+1)
    field = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=(height, width))
    field -= field.mean(axis=(-2, -1), keepdims=True)
    field /= field.std(axis=(-2, -1), keepdims=True) + 1e-8
    return field.astype(np.float32)


def land_cover_map(
    rng: np.random.Generator, class_logits: np.ndarray, size: int, corr_px: float
) -> np.ndarray:
    """Draw a land-cover map: per pixel, the class with the largest noisy logit.

    Each class gets its own smooth field; adding the class's log-weight makes
    likely classes cover more ground, in patches of about ``corr_px`` pixels.

    Args:
        rng: Random generator.
        class_logits: (K,) log-weights; ``-inf`` for absent classes.
        size: Scene side in pixels.
        corr_px: Patch scale in pixels.

    Returns:
        (size, size) int64 class indices.
    """
    present = np.flatnonzero(np.isfinite(class_logits))
    fields = smooth_noise(rng, (len(present), size, size), corr_px)  # (P, H, W)
    scores = fields + class_logits[present][:, None, None]
    return present[np.argmax(scores, axis=0)]
