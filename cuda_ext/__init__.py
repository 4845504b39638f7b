"""Fused multispectral / SAR patch embedding (C++ and CUDA) with a pure-PyTorch twin.

``spectral_patch_embed`` turns raw sensor values (uint16 digital numbers, linear SAR
power, ...) straight into ViT patch tokens: decode, optional dB conversion, per-band
normalisation, nodata / non-finite masking and the patch projection in one op.
``SpectralPatchEmbed`` is the matching timm ``embed_layer``. The compiled op is built
on first use (or by ``make test``/``make demo``); without it the reference runs, with a
warning. See docs/cuda_ext.md.

Attributes are imported lazily so that ``python -m cuda_ext.build`` starts quickly.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SpectralPatchEmbed": "cuda_ext.layers",
    "op_available": "cuda_ext.ops",
    "spectral_patch_embed": "cuda_ext.ops",
    "reference_spectral_patch_embed": "cuda_ext.reference",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'cuda_ext' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
