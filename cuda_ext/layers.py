"""``SpectralPatchEmbed``: a drop-in replacement of timm's ``PatchEmbed`` for sensor bands.

It keeps timm's attributes and parameter names (``proj.weight``/``proj.bias`` of an
``nn.Conv2d``, ``img_size``, ``grid_size``, ``num_patches``, ``feat_ratio``,
``dynamic_feat_size``, ``set_input_size``), so ``VisionTransformer(embed_layer=...)``,
timm's weight init and checkpoints of either layer work unchanged -- but the forward
pass normalises the raw bands inside the fused op.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import PatchEmbed

from cuda_ext.ops import op_available, spectral_patch_embed
from cuda_ext.reference import band_tensor, log_band_tensor, reference_spectral_patch_embed

IMPLS = ("op", "reference")


class SpectralPatchEmbed(PatchEmbed):
    """Patch embedding of raw multispectral / SAR bands (timm ``embed_layer`` compatible).

    Args:
        img_size: Input size (int or (H, W)), or None for any size.
        patch_size: Patch side p (square patches).
        in_chans: Number of bands C.
        embed_dim: Token width D.
        norm_layer: Optional norm applied to the tokens (as timm's).
        flatten: Return (B, L, D) tokens (timm's default) rather than (B, D, Hp, Wp).
        output_fmt: "NHWC"/"NCHW" output instead of flattened tokens (as timm's).
        bias: Whether the projection has a bias.
        strict_img_size: Require inputs of exactly ``img_size``.
        dynamic_img_pad: Pad inputs to a multiple of p; the padding counts as nodata.
        mean: Per-band mean (C values or one), in the units after the dB conversion.
        std: Per-band standard deviation (C values or one).
        nodata: Raw value of missing pixels (they contribute 0 to the tokens), or None.
        log_bands: C flags: convert linear power to dB before normalising (SAR), or None.
        impl: "op" (the fused compiled op; the reference with a warning if it is
            unavailable) or "reference" (plain PyTorch, for comparison).
        device: Device of the parameters.
        dtype: Dtype of the parameters.

    Raises:
        ValueError: Unknown ``impl``, non-square patches, a zero std or a wrong number of
            per-band values.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] | None = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        norm_layer: Callable[..., torch.nn.Module] | None = None,
        flatten: bool = True,
        output_fmt: str | None = None,
        bias: bool = True,
        strict_img_size: bool = True,
        dynamic_img_pad: bool = False,
        mean: float | Sequence[float] = 0.0,
        std: float | Sequence[float] = 1.0,
        nodata: float | None = None,
        log_bands: Sequence[bool] | None = None,
        impl: str = "op",
        device: Any = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__(
            img_size=img_size, patch_size=patch_size, in_chans=in_chans, embed_dim=embed_dim,
            norm_layer=norm_layer, flatten=flatten, output_fmt=output_fmt, bias=bias,
            strict_img_size=strict_img_size, dynamic_img_pad=dynamic_img_pad,
            device=device, dtype=dtype,
        )
        if impl not in IMPLS:
            raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
        if self.patch_size[0] != self.patch_size[1]:
            raise ValueError(f"SpectralPatchEmbed needs square patches, got {self.patch_size}")
        self.impl = impl
        self.nodata = None if nodata is None else float(nodata)
        self._mean = band_tensor(mean, in_chans, torch.device("cpu")).tolist()
        self._std = band_tensor(std, in_chans, torch.device("cpu")).tolist()
        bad = [c for c, s in enumerate(self._std) if s == 0 or not math.isfinite(s)]
        if bad:
            raise ValueError(f"std must be finite and non-zero; bands {bad} have {self._std}")
        flags = log_band_tensor(log_bands, in_chans, torch.device("cpu"))
        self._log = None if flags is None or not bool(flags.any()) else flags.tolist()
        # Statistics are buffers so they follow .to(device); _apply keeps them float64
        # (model.half() must not round the band means), and they stay out of the state dict.
        self.register_buffer("band_mean", torch.tensor(self._mean, dtype=torch.float64),
                             persistent=False)
        self.register_buffer("band_std", torch.tensor(self._std, dtype=torch.float64),
                             persistent=False)
        log_t = torch.tensor(self._log, dtype=torch.bool) if self._log is not None else None
        self.register_buffer("log_bands", log_t, persistent=False)
        if impl == "op":
            op_available("cpu")  # build/load now, not inside the first (maybe compiled) step

    def _apply(self, fn: Callable[..., Any], recurse: bool = True) -> SpectralPatchEmbed:
        super()._apply(fn, recurse)
        device = self.band_mean.device
        self.band_mean = torch.tensor(self._mean, dtype=torch.float64, device=device)
        self.band_std = torch.tensor(self._std, dtype=torch.float64, device=device)
        return self

    def extra_repr(self) -> str:
        """Summary shown by ``print(module)``."""
        logged = None if self._log is None else [c for c, f in enumerate(self._log) if f]
        return f"impl={self.impl}, nodata={self.nodata}, log_bands={logged}"

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size[0]
        pad_h, pad_w = (-x.shape[-2]) % p, (-x.shape[-1]) % p
        if not (pad_h or pad_w):
            return x
        if x.is_floating_point():
            fill = math.nan  # non-finite: masked like nodata
        elif self.nodata is not None and float(self.nodata).is_integer():
            fill = self.nodata
        else:
            raise ValueError(
                f"dynamic_img_pad of integer input {tuple(x.shape)} needs an integer nodata "
                "value to pad with"
            )
        return F.pad(x, (0, pad_w, 0, pad_h), value=fill)

    def forward_with_valid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeds raw bands and also returns the valid fraction of each patch.

        Args:
            x: Raw values (B, C, H, W).

        Returns:
            tokens in the layer's output format ((B, L, D) by default) and valid (B, L).
        """
        B, C, H, W = x.shape
        if self.img_size is not None and self.strict_img_size and (H, W) != self.img_size:
            raise ValueError(f"input size {H}x{W} does not match the model's {self.img_size}")
        if self.dynamic_img_pad:
            x = self._pad(x)
        weight, bias = self.proj.weight, self.proj.bias
        if torch.is_autocast_enabled(x.device.type):  # conv2d would run in the autocast dtype
            dtype = torch.get_autocast_dtype(x.device.type)
            weight = weight.to(dtype)
            bias = bias.to(dtype) if bias is not None else None
        embed = spectral_patch_embed if self.impl == "op" else reference_spectral_patch_embed
        tokens, valid = embed(
            x, weight, bias, self.band_mean, self.band_std, self.patch_size[0],
            nodata=self.nodata, log_bands=self.log_bands,
        )  # (B, L, D), (B, L)
        fmt = "NLC" if self.flatten else self.output_fmt.value
        if fmt in ("NHWC", "NCHW"):
            Hp, Wp = x.shape[-2] // self.patch_size[0], x.shape[-1] // self.patch_size[1]
            tokens = tokens.reshape(B, Hp, Wp, -1)  # (B, Hp, Wp, D)
            if fmt == "NCHW":
                tokens = tokens.permute(0, 3, 1, 2)  # (B, D, Hp, Wp)
        elif fmt == "NCL":
            tokens = tokens.transpose(1, 2)  # (B, D, L)
        return self.norm(tokens), valid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeds raw bands: (B, C, H, W) -> tokens ((B, L, D) by default)."""
        return self.forward_with_valid(x)[0]
