"""cuda_ext: the compiled spectral patch-embedding op against its pure-PyTorch reference."""

from __future__ import annotations

import functools
import itertools
import math
import warnings
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F

from cuda_ext import _loader, build, ops
from cuda_ext.layers import SpectralPatchEmbed
from cuda_ext.reference import reference_spectral_patch_embed

OP = torch.ops.mosaic_vlm
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

INT_DTYPES = [torch.uint8, torch.int16, torch.uint16, torch.int32]
FLOAT_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]
# Tolerances of op vs reference per weight (output) dtype: the two sum in different orders.
TOL = {
    torch.float64: dict(rtol=1e-10, atol=1e-10),
    torch.float32: dict(rtol=1e-4, atol=1e-4),
    torch.bfloat16: dict(rtol=3e-2, atol=3e-2),
    torch.float16: dict(rtol=5e-3, atol=5e-3),
}


@pytest.fixture(scope="module", autouse=True)
def compiled_op() -> None:
    """Every test here compares the compiled op, never the fallback, with the reference."""
    assert ops.op_available("cpu"), _loader.status()


def raw_input(
    dtype: torch.dtype, shape: tuple[int, ...], nodata: float | None, bad: bool,
    device: str = "cpu", seed: int = 0,
) -> torch.Tensor:
    """Raw sensor-like values in ``dtype``: positive DNs, some nodata, maybe NaN/inf."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 120, shape, generator=g).to(torch.float64)  # (B, C, H, W)
    if dtype.is_floating_point:
        x = x / 10 - 2  # negatives too: log bands clamp them to -100 dB
    if nodata is not None:
        x.view(-1)[:: 7] = nodata
    x = x.to(dtype)
    if bad and dtype.is_floating_point:
        flat = x.view(-1)
        flat[3::11], flat[5::13], flat[8::17] = math.nan, math.inf, -math.inf
    return x.to(device)


def close(actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype) -> None:
    """assert_close with the tolerance of ``dtype``, scaled by the size of the values."""
    tol = TOL[dtype]
    scale = max(float(expected.abs().max()), 1.0)
    torch.testing.assert_close(actual, expected, rtol=tol["rtol"], atol=tol["atol"] * scale)


def both(x, weight, bias, mean, std, p, nodata=None, log_bands=None):
    """(op result, reference result) for the same arguments."""
    out = ops.spectral_patch_embed(x, weight, bias, mean, std, p, nodata, log_bands)
    ref = reference_spectral_patch_embed(x, weight, bias, mean, std, p, nodata, log_bands)
    return out, ref


# --------------------------------------------------------------------- forward


CASES = list(itertools.product(INT_DTYPES + FLOAT_DTYPES, [None, 7.0], [False, True]))


@pytest.mark.parametrize(("x_dtype", "nodata", "log"), CASES)
@pytest.mark.parametrize("w_dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
def test_forward_matches_reference(x_dtype, nodata, log, w_dtype) -> None:
    C, D, p = 3, 5, 4
    x = raw_input(x_dtype, (2, C, 8, 12), nodata, bad=True)  # (B, C, H, W)
    weight = torch.randn(D, C, p, p, generator=torch.Generator().manual_seed(1)).to(w_dtype)
    bias = torch.randn(D).to(w_dtype) if nodata is None else None
    mean, std = [1.0, -3.0, 20.0], [2.0, 0.5, 7.0]
    log_bands = [True, False, True] if log else None
    (tok, valid), (tok_r, valid_r) = both(x, weight, bias, mean, std, p, nodata, log_bands)
    assert tok.shape == (2, 6, D) and tok.dtype == w_dtype
    assert valid.shape == (2, 6) and valid.dtype == torch.float32
    close(tok, tok_r, w_dtype)
    torch.testing.assert_close(valid, valid_r)
    assert torch.isfinite(tok).all()


def test_valid_fraction_counts_nodata_and_nonfinite() -> None:
    x = torch.ones(1, 2, 4, 8)  # two 4x4 patches
    x[0, 0, 0, :4] = 0.0  # 4 nodata values in patch 0
    x[0, 1, 3, 4:] = math.nan  # 4 NaN in patch 1
    x[0, 1, 2, 4] = math.inf
    weight = torch.ones(1, 2, 4, 4)
    tokens, valid = ops.spectral_patch_embed(x, weight, None, 0.0, 1.0, 4, nodata=0.0)
    torch.testing.assert_close(valid, torch.tensor([[28 / 32, 27 / 32]]))
    torch.testing.assert_close(tokens, torch.tensor([[[28.0], [27.0]]]))


def test_log_bands_convert_linear_power_to_db() -> None:
    x = torch.tensor([1.0, 0.1, 0.0, -1.0]).view(1, 1, 2, 2)  # linear sigma0
    weight = torch.eye(4).view(4, 1, 2, 2)  # tokens = the four normalised values
    tokens, _ = ops.spectral_patch_embed(x, weight, None, -10.0, 5.0, 2, log_bands=[True])
    expected = (torch.tensor([0.0, -10.0, -100.0, -100.0]) + 10.0) / 5.0  # eps clamps <= 0
    torch.testing.assert_close(tokens.view(4), expected)


@pytest.mark.parametrize("layout", ["channels_last", "crop", "transposed", "expanded"])
def test_non_contiguous_input_and_batch_one(layout: str) -> None:
    base = raw_input(torch.uint16, (1, 3, 20, 20), 7.0, bad=False)
    x = {
        "channels_last": base.contiguous(memory_format=torch.channels_last),
        "crop": base[:, :, 2:18, 4:20],
        "transposed": base.transpose(2, 3),
        "expanded": base[:, :, :, :1].expand(1, 3, 20, 20),
    }[layout]
    assert not x.is_contiguous()
    weight = torch.randn(6, 3, 4, 4)
    (tok, valid), (tok_r, valid_r) = both(x, weight, torch.randn(6), 3.0, 2.0, 4, nodata=7.0)
    close(tok, tok_r, torch.float32)
    torch.testing.assert_close(valid, valid_r)


def test_clear_errors() -> None:
    x, weight = torch.zeros(2, 3, 10, 12), torch.zeros(5, 3, 4, 4)
    for embed in (ops.spectral_patch_embed, reference_spectral_patch_embed):
        with pytest.raises((RuntimeError, ValueError), match="H=10, W=12 is not divisible"):
            embed(x, weight, None, 0.0, 1.0, 4)
    good = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="expected 1 or 3 per-band values, got 2"):
        ops.spectral_patch_embed(good, weight, None, [0.0, 1.0], 1.0, 4)
    with pytest.raises(ValueError, match="log_bands needs 3 flags"):
        ops.spectral_patch_embed(good, weight, None, 0.0, 1.0, 4, log_bands=[True])
    with pytest.raises(RuntimeError, match=r"weight must be \(D, C=3, p=4, p=4\)"):
        ops.spectral_patch_embed(good, torch.zeros(5, 2, 4, 4), None, 0.0, 1.0, 4)
    with pytest.raises(RuntimeError, match="std must be finite and non-zero"):
        ops.spectral_patch_embed(good, weight, None, 0.0, [1.0, 0.0, 1.0], 4)
    with pytest.raises(RuntimeError, match="unsupported input dtype Bool"):
        ops.spectral_patch_embed(good.bool(), weight, None, 0.0, 1.0, 4)
    with pytest.raises(RuntimeError, match="x must be"):
        ops.spectral_patch_embed(good[0], weight, None, 0.0, 1.0, 4)


# -------------------------------------------------------------------- backward


@pytest.mark.parametrize("x_dtype", [torch.uint16, torch.float32, torch.float16])
@pytest.mark.parametrize(("nodata", "log"), [(None, False), (7.0, True)])
def test_backward_matches_reference(x_dtype, nodata, log) -> None:
    C, D, p = 3, 4, 4
    log_bands = [True, False, False] if log else None
    grads = []
    for embed in (ops.spectral_patch_embed, reference_spectral_patch_embed):
        x = raw_input(x_dtype, (2, C, 8, 8), nodata, bad=True)
        x.requires_grad_(x.is_floating_point())
        g = torch.Generator().manual_seed(3)
        weight = torch.randn(D, C, p, p, generator=g, requires_grad=True)
        bias = torch.randn(D, generator=g, requires_grad=True)
        tokens, valid = embed(x, weight, bias, [1.0, 2.0, 3.0], [2.0, 3.0, 4.0], p, nodata,
                              log_bands)
        upstream = torch.randn(tokens.shape, generator=g)  # (B, L, D)
        (tokens * upstream).sum().backward()
        assert not valid.requires_grad
        grads.append((x.grad, weight.grad, bias.grad))
    (gx, gw, gb), (gx_r, gw_r, gb_r) = grads
    close(gw, gw_r, torch.float32)
    close(gb, gb_r, torch.float32)
    if x_dtype.is_floating_point:
        assert gx.dtype == x_dtype
        close(gx.float(), gx_r.float(), torch.float16 if x_dtype == torch.float16 else
              torch.float32)
        assert torch.isfinite(gx).all()


def test_backward_of_bfloat16_weights() -> None:
    x = raw_input(torch.uint16, (2, 2, 8, 8), None, bad=False)
    results = []
    for embed in (ops.spectral_patch_embed, reference_spectral_patch_embed):
        weight = torch.randn(3, 2, 4, 4, generator=torch.Generator().manual_seed(0))
        weight = weight.bfloat16().requires_grad_()
        tokens, _ = embed(x, weight, None, 50.0, 30.0, 4)
        tokens.float().square().sum().backward()
        results.append(weight.grad)
    assert results[0].dtype == torch.bfloat16
    close(results[0].float(), results[1].float(), torch.bfloat16)


def test_gradcheck_float64() -> None:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(1, 2, 4, 6, generator=g, dtype=torch.float64) + 0.5).requires_grad_()
    x.data[0, 1, 0, 0] = math.nan  # masked: zero gradient, stays NaN when perturbed
    weight = torch.randn(3, 2, 2, 2, generator=g, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)

    def tokens(x, weight, bias):
        return ops.spectral_patch_embed(x, weight, bias, [0.5, -3.0], [2.0, 4.0], 2,
                                        log_bands=[False, True])[0]

    assert torch.autograd.gradcheck(tokens, (x, weight, bias))
    # With nodata in the input, only the projection is differentiated (x == nodata is a step).
    raw = x.detach().clone()
    raw[0, 0, 1, 1] = 2.0

    def projection(weight, bias):
        return ops.spectral_patch_embed(raw, weight, bias, 0.0, 1.0, 2, nodata=2.0)[0]

    assert torch.autograd.gradcheck(projection, (weight, bias))


def opcheck_args(device: str = "cpu") -> list[tuple]:
    """Argument tuples of the three ops, covering bias, nodata, log bands and dtypes."""
    f64 = dict(dtype=torch.float64, device=device)
    mean, std = torch.tensor([1.0, -5.0], **f64), torch.tensor([2.0, 3.0], **f64)
    log = torch.tensor([False, True], device=device)
    x = torch.rand(2, 2, 8, 8, device=device, requires_grad=True)
    x_u16 = torch.randint(0, 9, (1, 2, 8, 4), dtype=torch.uint16, device=device)
    w = torch.randn(3, 2, 4, 4, device=device, requires_grad=True)
    b = torch.randn(3, device=device, requires_grad=True)
    return [
        (x, w, b, mean, std, 4, None, log),
        (x_u16, w, None, mean, std, 4, 3.0, None),
        (x.detach().double(), w.detach().double(), None, mean, std, 4, 0.5, log),
    ]


def test_opcheck() -> None:
    for args in opcheck_args():
        torch.library.opcheck(OP.spectral_patch_embed.default, args)
    x, w, _, mean, std, p, nodata, log = opcheck_args()[0]
    grad = torch.randn(2, 4, 3)
    for op in (OP.spectral_weight_grad.default, OP.spectral_input_grad.default):
        torch.library.opcheck(op, (grad, x.detach(), w.detach(), mean, std, p, nodata, log))


def test_torch_compile_traces_the_op_in_one_graph() -> None:
    x = raw_input(torch.float32, (2, 3, 8, 8), None, bad=True)
    weight = torch.randn(4, 3, 4, 4, requires_grad=True)

    def loss(x, weight):
        tokens, valid = ops.spectral_patch_embed(x, weight, None, 1.0, 2.0, 4)
        return (tokens * valid.unsqueeze(-1)).square().sum()

    compiled = torch.compile(loss, backend="aot_eager", fullgraph=True)
    value = compiled(x, weight)
    (grad,) = torch.autograd.grad(value, weight)
    value_r = loss(x, weight)
    (grad_r,) = torch.autograd.grad(value_r, weight)
    torch.testing.assert_close(value, value_r)
    torch.testing.assert_close(grad, grad_r)


# ------------------------------------------------------------ the timm layer


def spectral_vit(impl: str, **kwargs) -> torch.nn.Module:
    """A tiny timm ViT whose patch embedding is SpectralPatchEmbed."""
    embed = functools.partial(SpectralPatchEmbed, impl=impl, **kwargs)
    return timm.create_model("vit_tiny_patch16_224", img_size=16, patch_size=4, in_chans=3,
                             embed_dim=32, depth=1, num_heads=2, num_classes=0,
                             embed_layer=embed)


def test_layer_is_a_timm_patch_embed_on_raw_bands() -> None:
    mean, std = [100.0, 200.0, 300.0], [10.0, 20.0, 30.0]
    torch.manual_seed(0)
    vit = spectral_vit("op", mean=mean, std=std, nodata=0)
    plain = timm.create_model("vit_tiny_patch16_224", img_size=16, patch_size=4, in_chans=3,
                              embed_dim=32, depth=1, num_heads=2, num_classes=0)
    plain.load_state_dict(vit.state_dict())  # same parameter names: checkpoints interchange
    pe = vit.patch_embed
    assert (pe.num_patches, pe.grid_size, pe.feat_ratio()) == (16, (4, 4), 4)
    assert pe.dynamic_feat_size((16, 16)) == (4, 4)
    x = (raw_input(torch.int32, (2, 3, 16, 16), None, bad=False) * 5 + 100).to(torch.uint16)
    z = (x.float() - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(vit(x), plain(z), rtol=1e-4, atol=1e-4)
    tokens, valid = pe.forward_with_valid(x)
    assert tokens.shape == (2, 16, 32) and bool((valid == 1).all())
    with pytest.raises(ValueError, match="does not match"):
        vit(x[..., :12])
    with pytest.raises(ValueError, match="impl must be one of"):
        SpectralPatchEmbed(impl="fast")
    with pytest.raises(ValueError, match="non-zero"):
        SpectralPatchEmbed(in_chans=2, std=[1.0, 0.0])


def test_layer_keeps_float64_statistics_and_reference_impl_agrees() -> None:
    kwargs = dict(mean=[-12.59, -20.26], std=[5.26, 5.91], log_bands=[True, True])
    torch.manual_seed(0)
    op = SpectralPatchEmbed(img_size=8, patch_size=4, in_chans=2, embed_dim=6, **kwargs)
    torch.manual_seed(0)
    ref = SpectralPatchEmbed(img_size=8, patch_size=4, in_chans=2, embed_dim=6,
                             impl="reference", **kwargs)
    x = torch.rand(3, 2, 8, 8) * 0.2  # linear sigma0
    torch.testing.assert_close(op(x), ref(x))
    op.to(torch.bfloat16)
    assert op.band_mean.dtype == torch.float64 and op.band_mean[0].item() == -12.59
    assert op.proj.weight.dtype == torch.bfloat16 and op(x).dtype == torch.bfloat16
    assert "band_mean" not in op.state_dict()


def test_layer_dynamic_size_and_padding() -> None:
    vit = timm.create_model("vit_tiny_patch16_224", img_size=16, patch_size=4, in_chans=2,
                            embed_dim=32, depth=1, num_heads=2, num_classes=0,
                            dynamic_img_size=True, dynamic_img_pad=True,
                            embed_layer=functools.partial(SpectralPatchEmbed, nodata=0))
    assert vit.patch_embed.output_fmt.value == "NHWC"
    assert vit(torch.rand(2, 2, 14, 10)).shape == (2, 32)  # padded to 16 x 12
    pe = vit.patch_embed
    tokens, valid = pe.forward_with_valid(torch.rand(1, 2, 6, 8))
    assert tokens.shape == (1, 2, 2, 32)  # (B, Hp, Wp, D)
    torch.testing.assert_close(valid, torch.tensor([[1.0, 1.0, 0.5, 0.5]]))
    u16 = pe.forward_with_valid(torch.ones(1, 2, 6, 8, dtype=torch.uint16))[1]
    torch.testing.assert_close(u16, valid)
    no_nodata = SpectralPatchEmbed(img_size=None, patch_size=4, in_chans=1, embed_dim=4,
                                   dynamic_img_pad=True, strict_img_size=False)
    with pytest.raises(ValueError, match="needs an integer nodata"):
        no_nodata(torch.ones(1, 1, 6, 8, dtype=torch.uint16))


def test_s2_tower_training_step_same_loss_as_reference() -> None:
    from core.losses import clip_loss
    from core.towers import ImageTower, ImageTowerConfig

    stats = dict(mean=[1500.0 + 50 * c for c in range(13)], std=[900.0] * 13, nodata=0)
    x = (raw_input(torch.int32, (4, 13, 32, 32), 0.0, bad=False) * 40).to(torch.uint16)  # DNs
    text = F.normalize(torch.randn(4, 24, generator=torch.Generator().manual_seed(5)), dim=-1)
    losses = []
    for impl in ("op", "reference"):
        torch.manual_seed(0)
        tower = ImageTower(ImageTowerConfig(
            backbone="vit_tiny_patch16_224", in_chans=13, img_size=32, patch_size=8,
            embed_dim=24, patch_embed="spectral", spectral={**stats, "impl": impl},
            backbone_kwargs={"embed_dim": 32, "depth": 2, "num_heads": 2}))
        assert tower.backbone.patch_embed.impl == impl
        optimiser = torch.optim.AdamW(tower.parameters(), lr=1e-3)
        step = []
        for _ in range(2):  # the loss before and after one optimiser step
            loss = clip_loss(F.normalize(tower(x), dim=-1), text, torch.tensor(10.0))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step.append(loss.detach())
        losses.append(torch.stack(step))
    assert losses[0][1] != losses[0][0]
    torch.testing.assert_close(losses[0], losses[1], rtol=1e-4, atol=1e-5)


def test_model_config_uses_the_op_in_both_sensor_towers() -> None:
    from core.model import build_tower
    from core.registry import get_model_config

    config = get_model_config("closp-tiny-spectral")
    for name, bands in (("s2", 13), ("s1", 2)):
        tower = build_tower(name, config.towers[name])
        embed = tower.backbone.patch_embed
        assert isinstance(embed, SpectralPatchEmbed) and embed.impl == "op"
        x = torch.randn(2, bands, 64, 64)
        x[0, 0, :4, :4] = math.nan  # a hole no longer poisons the embedding
        assert torch.isfinite(tower(x)).all()


# ----------------------------------------------------- fallback and the build


def test_fallback_warns_once_and_uses_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    state = _loader.LoadState(attempted=True, errors={"cpu": "compiler missing (test)"})
    monkeypatch.setattr(_loader, "STATE", state)
    monkeypatch.setattr(ops, "_WARNED", set())
    x, weight = torch.rand(1, 2, 4, 4), torch.randn(3, 2, 2, 2)
    with pytest.warns(RuntimeWarning, match=r"unavailable on cpu \(compiler missing \(test\)\)"):
        out = ops.spectral_patch_embed(x, weight, None, 0.0, 1.0, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second call stays quiet
        again = ops.spectral_patch_embed(x, weight, None, 0.0, 1.0, 2)
    torch.testing.assert_close(out, reference_spectral_patch_embed(x, weight, None, 0.0, 1.0, 2))
    torch.testing.assert_close(again, out)


def test_build_cache_is_fresh_and_notices_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    assert build.cpu_library_if_fresh() == build.cpu_library_path()
    assert _loader.status()["cpu"].startswith("loaded from")
    monkeypatch.setattr(build, "CPU_CFLAGS", [*build.CPU_CFLAGS, "-DCHANGED"])
    assert build.cpu_library_if_fresh() is None  # changed flags (or sources) -> rebuild


def test_failed_build_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "broken.cpp"
    broken.write_text('#error "deliberately broken source"\n')
    monkeypatch.setenv("MOSAIC_CUDA_EXT_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setattr(build, "CPU_SOURCES", [broken])
    monkeypatch.setattr(build, "CPU_NAME", "mosaic_vlm_broken_test")
    with pytest.raises(build.BuildError, match="deliberately broken source"):
        build.build_cpu()


def test_cuda_library_compiles_where_a_toolkit_exists() -> None:
    has_toolkit = torch.version.cuda is not None and build.find_nvcc() is not None
    result = build.build_cuda()  # a no-op when up to date
    name = "mosaic_vlm::spectral_patch_embed"
    if not has_toolkit:
        assert result.path is None and result.note.startswith("skipped")
        return
    assert result.path is not None and result.path.exists()
    torch.ops.load_library(str(result.path))
    for op in ("spectral_patch_embed", "spectral_weight_grad", "spectral_input_grad"):
        assert torch._C._dispatch_has_kernel_for_dispatch_key(f"mosaic_vlm::{op}", "CUDA")
    assert torch._C._dispatch_has_kernel_for_dispatch_key(name, "CPU")


# ------------------------------------------------------------------------ CUDA


@CUDA
@pytest.mark.parametrize("x_dtype", [torch.uint16, torch.int16, torch.float32, torch.float16,
                                     torch.bfloat16])
@pytest.mark.parametrize("w_dtype", [torch.float32, torch.bfloat16, torch.float64])
@pytest.mark.parametrize(("nodata", "log"), [(None, False), (7.0, True)])
def test_cuda_forward_matches_reference(x_dtype, w_dtype, nodata, log) -> None:
    assert ops.op_available("cuda"), _loader.status()
    x = raw_input(x_dtype, (2, 3, 16, 8), nodata, bad=True, device="cuda")
    weight = torch.randn(7, 3, 4, 4, device="cuda").to(w_dtype)
    bias = torch.randn(7, device="cuda").to(w_dtype)
    log_bands = [True, False, True] if log else None
    (tok, valid), (tok_r, valid_r) = both(x, weight, bias, [1.0, 2.0, 3.0], [2.0, 1.0, 5.0], 4,
                                          nodata, log_bands)
    assert tok.device.type == "cuda"
    tol = torch.float32 if w_dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32 \
        else torch.bfloat16 if w_dtype != torch.float64 else torch.float64
    close(tok, tok_r, tol)
    torch.testing.assert_close(valid, valid_r)
    # and the CPU op on the same data
    close(ops.spectral_patch_embed(x.cpu(), weight.cpu(), bias.cpu(), [1.0, 2.0, 3.0],
                                   [2.0, 1.0, 5.0], 4, nodata, log_bands)[0], tok.cpu(), tol)


@CUDA
@pytest.mark.parametrize("x_dtype", [torch.uint16, torch.float32, torch.bfloat16])
def test_cuda_backward_matches_reference(x_dtype) -> None:
    grads = []
    for embed in (ops.spectral_patch_embed, reference_spectral_patch_embed):
        x = raw_input(x_dtype, (2, 3, 8, 8), 7.0, bad=True, device="cuda")
        x.requires_grad_(x.is_floating_point())
        g = torch.Generator(device="cuda").manual_seed(0)
        weight = torch.randn(5, 3, 4, 4, device="cuda", generator=g, requires_grad=True)
        bias = torch.randn(5, device="cuda", generator=g, requires_grad=True)
        tokens, _ = embed(x, weight, bias, 3.0, 2.0, 4, 7.0, [False, True, False])
        (tokens * torch.randn(tokens.shape, device="cuda", generator=g)).sum().backward()
        grads.append((x.grad, weight.grad, bias.grad))
    (gx, gw, gb), (gx_r, gw_r, gb_r) = grads
    close(gw, gw_r, torch.float32)
    close(gb, gb_r, torch.float32)
    if x_dtype.is_floating_point:
        close(gx.float(), gx_r.float(), torch.bfloat16 if x_dtype == torch.bfloat16 else
              torch.float32)


@CUDA
def test_cuda_gradcheck_and_opcheck() -> None:
    g = torch.Generator(device="cuda").manual_seed(0)
    x = (torch.rand(1, 2, 4, 4, device="cuda", generator=g, dtype=torch.float64) + 0.5)
    weight = torch.randn(3, 2, 2, 2, device="cuda", generator=g, dtype=torch.float64)
    bias = torch.randn(3, device="cuda", generator=g, dtype=torch.float64)

    def tokens(x, weight, bias):
        return ops.spectral_patch_embed(x, weight, bias, [0.5, -3.0], [2.0, 4.0], 2,
                                        log_bands=[False, True])[0]

    inputs = tuple(t.requires_grad_() for t in (x, weight, bias))
    assert torch.autograd.gradcheck(tokens, inputs)
    for args in opcheck_args("cuda"):
        torch.library.opcheck(OP.spectral_patch_embed.default, args)
