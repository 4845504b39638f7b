"""Python side of the ``mosaic_vlm::spectral_patch_embed`` op.

The schemas and the CPU/CUDA kernels live in ``csrc/``; here are the pieces that
PyTorch wants in Python -- fake (meta) kernels so ``torch.compile`` can trace the op,
and the autograd formula -- plus :func:`spectral_patch_embed`, the function users call,
which falls back to :func:`cuda_ext.reference.reference_spectral_patch_embed` (with one
warning per device type, never silently) when the compiled op is unavailable.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

from cuda_ext import _loader
from cuda_ext.reference import (
    BandFlags,
    BandValues,
    band_tensor,
    log_band_tensor,
    reference_spectral_patch_embed,
)

_REGISTERED = False
_WARNED: set[str] = set()


def op_available(device_type: str = "cpu") -> bool:
    """Whether the compiled op can run on tensors of ``device_type`` ("cpu", "cuda").

    The first call loads (and if needed builds) the compiled libraries.
    """
    return device_type in _loader.ensure_loaded().libraries


def _warn_fallback(device_type: str) -> None:
    if device_type in _WARNED:
        return
    _WARNED.add(device_type)
    why = _loader.STATE.errors.get(device_type, f"no compiled kernel for {device_type!r} tensors")
    warnings.warn(
        f"cuda_ext: the compiled spectral_patch_embed op is unavailable on {device_type} "
        f"({why}); using the pure-PyTorch reference instead (same results, slower).",
        RuntimeWarning,
        stacklevel=3,
    )


def spectral_patch_embed(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    mean: BandValues,
    std: BandValues,
    patch_size: int,
    nodata: float | None = None,
    log_bands: BandFlags = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused decode / dB / normalise / mask + patch projection of raw sensor values.

    Per band c: ``v = 10*log10(max(x, 1e-10))`` if ``log_bands[c]`` else ``x``;
    ``z = (v - mean[c]) / std[c]``; values equal to ``nodata`` or not finite give
    ``z = 0``; then ``tokens = Conv2d(C, D, p, stride=p)(z)`` flattened to (B, L, D).

    Args:
        x: Raw values (B, C, H, W): uint8/int16/uint16/int32 digital numbers or
            float16/bfloat16/float32/float64; any strides. H and W must be multiples of
            ``patch_size``.
        weight: Projection (D, C, p, p), as ``nn.Conv2d(C, D, p, stride=p).weight``;
            its dtype is the output dtype (float32, float64, bfloat16 or float16).
        bias: (D,) in the weight's dtype, or None.
        mean: Per-band mean (C values, or one for all bands), after the dB conversion.
        std: Per-band standard deviation (C values or one), non-zero.
        patch_size: Patch side p.
        nodata: Raw value marking missing pixels, or None.
        log_bands: C flags: convert linear power to dB first (SAR), or None.

    Returns:
        tokens (B, L, D) in the weight's dtype with L = (H/p)*(W/p) patches in row-major
        order, and valid (B, L) float32: the fraction of valid values in each patch.
        Gradients flow to ``weight``, ``bias`` and a floating ``x``.
    """
    device_type = x.device.type
    if not op_available(device_type):
        _warn_fallback(device_type)
        return reference_spectral_patch_embed(
            x, weight, bias, mean, std, patch_size, nodata=nodata, log_bands=log_bands
        )
    C = x.shape[1] if x.dim() == 4 else 1
    mean_t = band_tensor(mean, C, x.device)  # (C,) float64
    std_t = band_tensor(std, C, x.device)  # (C,) float64
    log_t = log_band_tensor(log_bands, C, x.device)  # (C,) bool or None
    nodata_f = None if nodata is None else float(nodata)
    return torch.ops.mosaic_vlm.spectral_patch_embed(
        x, weight, bias, mean_t, std_t, int(patch_size), nodata_f, log_t
    )


# ------------------------------------------------------------- fake (meta) kernels


def _fake_geometry(x: torch.Tensor, weight: torch.Tensor, patch_size: int) -> tuple[Any, ...]:
    torch._check(x.dim() == 4, lambda: f"x must be (B, C, H, W), got {x.dim()} dims")
    B, C, H, W = x.shape
    torch._check(
        H % patch_size == 0 and W % patch_size == 0,
        lambda: f"image size H={H}, W={W} is not divisible by patch_size={patch_size}",
    )
    torch._check(
        weight.dim() == 4 and weight.shape[1:] == (C, patch_size, patch_size),
        lambda: f"weight must be (D, C={C}, p={patch_size}, p={patch_size})",
    )
    return B, C, H, W, (H // patch_size) * (W // patch_size), weight.shape[0]


def _fake_embed(x, weight, bias, mean, std, patch_size, nodata=None, log_bands=None):
    B, _, _, _, L, D = _fake_geometry(x, weight, patch_size)
    tokens = weight.new_empty((B, L, D))  # (B, L, D)
    valid = x.new_empty((B, L), dtype=torch.float32)  # (B, L)
    return tokens, valid


def _fake_weight_grad(grad_tokens, x, weight, mean, std, patch_size, nodata=None,
                      log_bands=None):
    _fake_geometry(x, weight, patch_size)
    return weight.new_empty(weight.shape)  # (D, C, p, p), contiguous


def _fake_input_grad(grad_tokens, x, weight, mean, std, patch_size, nodata=None,
                     log_bands=None):
    _fake_geometry(x, weight, patch_size)
    return x.new_empty(x.shape)  # (B, C, H, W), contiguous


# ------------------------------------------------------------------------ autograd


def _setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Any, ...]) -> None:
    x, weight, bias, mean, std, patch_size, nodata, log_bands = inputs
    ctx.save_for_backward(x, weight, mean, std, log_bands)
    ctx.patch_size = patch_size
    ctx.nodata = nodata
    ctx.has_bias = bias is not None
    ctx.mark_non_differentiable(output[1])


def _backward(ctx: Any, grad_tokens: torch.Tensor, grad_valid: torch.Tensor | None):
    x, weight, mean, std, log_bands = ctx.saved_tensors
    grad_x = grad_w = grad_b = None
    args = (x, weight, mean, std, ctx.patch_size, ctx.nodata, log_bands)
    if ctx.needs_input_grad[0]:
        grad_x = torch.ops.mosaic_vlm.spectral_input_grad(grad_tokens, *args)  # (B, C, H, W)
    if ctx.needs_input_grad[1]:
        grad_w = torch.ops.mosaic_vlm.spectral_weight_grad(grad_tokens, *args)  # (D, C, p, p)
    if ctx.has_bias and ctx.needs_input_grad[2]:
        grad_b = grad_tokens.sum((0, 1)).to(weight.dtype)  # (D,)
    return grad_x, grad_w, grad_b, None, None, None, None, None


def register_python_parts() -> None:
    """Registers the fake kernels and the autograd formula (once, after loading)."""
    global _REGISTERED
    if _REGISTERED:
        return
    torch.library.register_fake("mosaic_vlm::spectral_patch_embed", _fake_embed)
    torch.library.register_fake("mosaic_vlm::spectral_weight_grad", _fake_weight_grad)
    torch.library.register_fake("mosaic_vlm::spectral_input_grad", _fake_input_grad)
    torch.library.register_autograd(
        "mosaic_vlm::spectral_patch_embed", _backward, setup_context=_setup_context
    )
    _REGISTERED = True
