"""Pure-PyTorch spectral patch embedding: the test oracle and the fallback.

Same maths as the compiled ``mosaic_vlm::spectral_patch_embed`` (see
``csrc/spectral.h``), written as plain tensor ops so autograd, ``torch.compile`` and
any device work on it unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

#: Values below this are clamped before the dB conversion (10*log10(1e-10) = -100 dB).
LOG_EPS = 1e-10

BandValues = torch.Tensor | Sequence[float] | float
BandFlags = torch.Tensor | Sequence[bool] | None


def compute_dtype(weight: torch.Tensor) -> torch.dtype:
    """Dtype in which raw values are normalised: float64 for float64 weights, else float32."""
    return torch.float64 if weight.dtype == torch.float64 else torch.float32


def band_tensor(values: BandValues, channels: int, device: torch.device) -> torch.Tensor:
    """Turns per-band statistics into a float64 tensor of shape (C,).

    Args:
        values: One number for all bands, or one per band.
        channels: Number of bands C.
        device: Device of the result.

    Returns:
        A (C,) float64 tensor.

    Raises:
        ValueError: The number of values is neither 1 nor C.
    """
    t = torch.as_tensor(values, dtype=torch.float64, device=device).reshape(-1)  # (C,) or (1,)
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels:
        raise ValueError(f"expected 1 or {channels} per-band values, got {t.numel()}")
    return t


def log_band_tensor(
    log_bands: BandFlags, channels: int, device: torch.device
) -> torch.Tensor | None:
    """Turns per-band dB flags into a bool tensor (C,); None stays None.

    Raises:
        ValueError: The number of flags is not C.
    """
    if log_bands is None:
        return None
    t = torch.as_tensor(log_bands, dtype=torch.bool, device=device).reshape(-1)  # (C,)
    if t.numel() != channels:
        raise ValueError(f"log_bands needs {channels} flags (one per band), got {t.numel()}")
    return t


def check_patch_geometry(x: torch.Tensor, patch_size: int) -> None:
    """Raises a ValueError naming the sizes when x cannot be cut into patches."""
    if x.dim() != 4:
        raise ValueError(f"x must be (B, C, H, W), got shape {tuple(x.shape)}")
    if patch_size < 1:
        raise ValueError(f"patch_size must be >= 1, got {patch_size}")
    H, W = x.shape[-2:]
    if H % patch_size or W % patch_size:
        raise ValueError(
            f"image size H={H}, W={W} is not divisible by patch_size={patch_size}; "
            "crop or pad the input to a multiple of the patch size"
        )


def valid_mask(x: torch.Tensor, nodata: float | None) -> torch.Tensor:
    """Bool mask (B, C, H, W) of values that are finite and differ from nodata.

    Floating inputs are compared with nodata in their own dtype (as ``x == nodata``
    does); integer inputs exactly, so a fractional nodata never matches.
    """
    valid = torch.isfinite(x) if x.is_floating_point() else torch.ones_like(x, dtype=torch.bool)
    if nodata is not None and not math.isnan(nodata):
        equal = x == nodata if x.is_floating_point() else x.to(torch.float64) == nodata
        valid = valid & ~equal
    return valid


def normalise(
    x: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    nodata: float | None,
    log_bands: torch.Tensor | None,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decodes, converts to dB, normalises and masks raw values.

    Args:
        x: Raw values (B, C, H, W), any real dtype.
        mean: Per-band mean (C,), applied after the dB conversion.
        std: Per-band standard deviation (C,).
        nodata: Raw value marking missing pixels, or None.
        log_bands: Bool (C,): bands converted with 10*log10(max(x, eps)) first, or None.
        dtype: Compute dtype (float32 or float64).

    Returns:
        z (B, C, H, W) in ``dtype`` with invalid values set to 0, and the valid mask.
    """
    valid = valid_mask(x, nodata)  # (B, C, H, W)
    v = torch.where(valid, x.to(dtype), 0.0)  # invalid values never reach log/grad
    if log_bands is not None:
        db = 10.0 * torch.log10(torch.clamp_min(v, LOG_EPS))
        v = torch.where(log_bands.view(1, -1, 1, 1), db, v)
    mean = mean.to(dtype).view(1, -1, 1, 1)
    std = std.to(dtype).view(1, -1, 1, 1)
    z = torch.where(valid, (v - mean) / std, 0.0)  # (B, C, H, W)
    return z, valid


def reference_spectral_patch_embed(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mean: BandValues,
    std: BandValues,
    patch_size: int,
    nodata: float | None = None,
    log_bands: BandFlags = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Spectral patch embedding in plain PyTorch.

    Args:
        x: Raw sensor values (B, C, H, W): float, or integer digital numbers (uint16).
        weight: Projection (D, C, p, p), as ``nn.Conv2d(C, D, p, stride=p).weight``.
        bias: Projection bias (D,) or None.
        mean: Per-band mean (C,) (or one value), in the units after the dB conversion.
        std: Per-band standard deviation (C,) (or one value).
        patch_size: Patch side p; H and W must be multiples of it.
        nodata: Raw value marking missing pixels (they contribute 0), or None.
        log_bands: Per-band flags (C,): convert linear power to dB before normalising.

    Returns:
        tokens (B, L, D) in the weight's dtype, L = (H/p)*(W/p) in row-major patch order,
        and valid (B, L) float32: the fraction of valid (band, pixel) values per patch.
    """
    check_patch_geometry(x, patch_size)
    C = x.shape[1]
    mean_t = band_tensor(mean, C, x.device)
    std_t = band_tensor(std, C, x.device)
    log_t = log_band_tensor(log_bands, C, x.device)
    z, valid = normalise(x, mean_t, std_t, nodata, log_t, compute_dtype(weight))
    tokens = F.conv2d(z.to(weight.dtype), weight, bias, stride=patch_size)  # (B, D, Hp, Wp)
    tokens = tokens.flatten(2).transpose(1, 2)  # (B, L, D)
    frac = F.avg_pool2d(valid.to(torch.float32).mean(1, keepdim=True), patch_size)  # (B,1,Hp,Wp)
    return tokens, frac.flatten(1)  # (B, L, D), (B, L)
