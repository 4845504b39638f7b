"""Stain handling: Macenko normalisation (MONAI underneath) and seeded HED augmentation.

Tiles are mixed by Beer-Lambert from known stain vectors and concentrations
(``tests/data/pathology/data.py``), so the stain matrix a tile was made from is known.
Checked: Macenko recovers that matrix (angle error per stain), maps a tile re-stained
with other vectors and intensities back close to the original (error against the
unnormalised error), keeps haematoxylin first (where MONAI 1.6 alone swaps it), stores
and reloads its reference, and leaves blank tiles alone or refuses them; the torch HED
conversion equals skimage's ``rgb2hed`` / ``hed2rgb``; the augmentation is deterministic
for a seed and differs across seeds.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from monai.apps.pathology.transforms import ExtractHEStains, NormalizeHEStains
from skimage.color import hed2rgb, rgb2hed

from core.transforms import Compose
from domains.pathology.stain import (
    MACENKO_REFERENCE,
    MacenkoNormalize,
    OrderedHEStains,
    RandomHEStain,
    StainError,
    hed_to_rgb,
    optical_density,
    rgb_to_hed,
)

_SPEC = importlib.util.spec_from_file_location(
    "pathology_fixtures", Path(__file__).parent / "data" / "pathology" / "data.py")
data = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(data)  # type: ignore[union-attr]


def _concentrations(seed: int = 0, size: int = 64) -> np.ndarray:
    """(2, H, W) H and E amounts with some pure-H and pure-E pixels (Macenko's extremes)."""
    rng = np.random.default_rng(seed)
    h, e = rng.gamma(2.0, 0.35, (size, size)), rng.gamma(2.0, 0.25, (size, size))
    pick = rng.random((size, size))
    h[pick < 0.15], e[(pick >= 0.15) & (pick < 0.3)] = 0.0, 0.0
    return np.stack([h, e])


def _tensor(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(rgb.transpose(2, 0, 1) / 255.0).float()       # (3, H, W)


def _rotate(vector: np.ndarray, axis: np.ndarray, degrees: float) -> np.ndarray:
    axis, t = axis / np.linalg.norm(axis), np.radians(degrees)
    out = vector * np.cos(t) + np.cross(axis, vector) * np.sin(t) \
        + axis * (axis @ vector) * (1 - np.cos(t))
    return out / np.linalg.norm(out)


def _angles(found: np.ndarray, true: np.ndarray) -> list[float]:
    """Angle in degrees between matching columns of two (3, 2) stain matrices."""
    return [float(np.degrees(np.arccos(np.clip(
        found[:, k] @ true[:, k] / np.linalg.norm(found[:, k]) / np.linalg.norm(true[:, k]),
        -1, 1)))) for k in range(2)]


# -- Macenko -------------------------------------------------------------------------------


def test_macenko_recovers_known_stain_matrix() -> None:
    rgb = data.mix(_concentrations())
    true = data.HE_STAINS.T                                               # (3, 2) H, E
    found = MacenkoNormalize.fit(_tensor(rgb)).stain_matrix
    assert max(_angles(found, true)) < 1.0                                # measured 0.2, 0.1
    # MONAI 1.6 alone returns eosin first (its red/blue test reads optical densities the
    # wrong way round); OrderedHEStains puts haematoxylin first.
    assert _angles(ExtractHEStains()(rgb)[:, ::-1], true) == pytest.approx(
        _angles(OrderedHEStains()(rgb), true), abs=1e-4)


def test_macenko_maps_restained_tile_back() -> None:
    conc = _concentrations(seed=1)
    original = _tensor(data.mix(conc))
    other = np.stack([_rotate(data.HE_STAINS[0], np.array([0, 0, 1.0]), 12),
                      _rotate(data.HE_STAINS[1], np.array([1, 0, 0.0]), -10)])
    restained = _tensor(data.mix(conc * np.array([1.3, 0.7])[:, None, None], other))
    normalise = MacenkoNormalize.fit(original)
    sample = {"image": restained, "path": "restained.png", "caption": "x"}
    out = normalise(sample)
    assert out["caption"] == "x" and out["path"] == "restained.png"
    assert out["image"].shape == (3, 64, 64) and out["image"].dtype == torch.float32
    before = float((restained - original).abs().mean())
    after = float((out["image"] - original).abs().mean())
    assert before > 0.04                                                  # measured 0.048
    assert after < 0.008 and after < before / 5                           # measured 0.0037
    assert normalise.unchanged == 0


def test_default_reference_keeps_haematoxylin_first() -> None:
    reference = np.asarray(MACENKO_REFERENCE["stain_matrix"])            # (3, 2)
    conc = _concentrations(seed=2)
    rgb = data.mix(conc, reference.T)
    amounts = np.linalg.lstsq(reference, optical_density(rgb).T, rcond=None)[0]  # (2, N)
    maxima = np.percentile(amounts, 99, axis=1)
    rgb = data.mix(conc * (np.asarray(MACENKO_REFERENCE["max_concentrations"])
                           / maxima)[:, None, None], reference.T)       # at the reference maxima
    ours = MacenkoNormalize().normalize(_tensor(rgb))
    monai = _tensor(NormalizeHEStains()(rgb))
    assert float((ours - _tensor(rgb)).abs().mean()) < 0.01               # ~ identity
    assert float((monai - _tensor(rgb)).abs().mean()) > 0.05              # MONAI swaps H and E


def test_reference_stored_and_reloaded(tmp_path: Path) -> None:
    target = _tensor(data.mix(_concentrations(seed=3)))
    fitted = MacenkoNormalize.fit(target)
    path = fitted.save_reference(tmp_path / "stain_reference.json")
    loaded = MacenkoNormalize.from_reference(path)
    np.testing.assert_allclose(loaded.stain_matrix, fitted.stain_matrix)
    np.testing.assert_allclose(loaded.max_concentrations, fitted.max_concentrations)
    tile = _tensor(data.mix(_concentrations(seed=4)))
    assert torch.equal(loaded.normalize(tile), fitted.normalize(tile))
    (tmp_path / "bad.json").write_text('{"stain_matrix": [[1, 0]]}')
    with pytest.raises(ValueError, match="bad.json: not a stain reference"):
        MacenkoNormalize.from_reference(tmp_path / "bad.json")
    with pytest.raises(ValueError, match=r"\(3, 2\) stain matrix"):
        MacenkoNormalize(stain_matrix=[[1, 0], [0, 1]])


def test_blank_tiles_kept_or_refused() -> None:
    glass = torch.full((3, 32, 32), 0.95)
    glass[:, :2, :2] = 0.3                                                # a speck of dust
    keep = MacenkoNormalize()
    out = keep({"image": glass, "path": "BACK/glass.tif"})
    assert torch.equal(out["image"], glass) and keep.unchanged == 1
    with pytest.raises(StainError, match=r"BACK/glass.tif: only 0.4% of pixels are stained"):
        MacenkoNormalize(on_blank="raise")({"image": glass, "path": "BACK/glass.tif"})
    with pytest.raises(StainError, match="reference tile: only 0.4% of pixels are stained"):
        MacenkoNormalize.fit(glass, name="reference tile")


# -- HED augmentation ----------------------------------------------------------------------


def test_hed_conversion_matches_skimage() -> None:
    rgb = np.random.default_rng(0).random((16, 16, 3))
    rgb[0, 0] = 0.0                                                        # log clamp
    ours = rgb_to_hed(torch.from_numpy(rgb.transpose(2, 0, 1)))           # (3, H, W)
    np.testing.assert_allclose(ours.numpy().transpose(1, 2, 0), rgb2hed(rgb), atol=1e-10)
    hed = rgb2hed(rgb)
    back = hed_to_rgb(torch.from_numpy(hed.transpose(2, 0, 1)))
    np.testing.assert_allclose(back.numpy().transpose(1, 2, 0), hed2rgb(hed), atol=1e-10)
    batch = torch.from_numpy(np.stack([rgb, rgb[::-1]]).transpose(0, 3, 1, 2))
    assert rgb_to_hed(batch).shape == (2, 3, 16, 16)                      # (B, 3, H, W)


def test_hed_perturbation_matches_skimage_pipeline() -> None:
    tile = _tensor(data.he_tile(5, 32))
    scale, shift = torch.tensor([1.04, 0.97, 1.02]), torch.tensor([0.005, -0.008, 0.0])
    ours = RandomHEStain.perturb(tile, scale, shift, clamp=True)
    hed = rgb2hed(tile.numpy().transpose(1, 2, 0).astype(np.float64))
    expected = hed2rgb(hed * scale.numpy() + shift.numpy()).transpose(2, 0, 1)
    np.testing.assert_allclose(ours.numpy(), expected, atol=1e-6)
    identity = RandomHEStain.perturb(tile, torch.ones(3), torch.zeros(3))  # clamp off
    np.testing.assert_allclose(identity.numpy(), tile.numpy(), atol=1e-6)


def test_hed_augmentation_seeded() -> None:
    sample = {"image": _tensor(data.he_tile(6, 32)), "path": "t.png"}
    a = RandomHEStain(seed=7)(sample)["image"]
    b = RandomHEStain(seed=7)(sample)["image"]
    c = RandomHEStain(seed=8)(sample)["image"]
    assert torch.equal(a, b)                                              # same seed
    assert float((a - c).abs().mean()) > 1e-3                             # other seed
    assert float((a - sample["image"]).abs().mean()) > 1e-3               # it perturbs
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    transform = Compose(RandomHEStain(seed=7))
    transform.reseed(0, 0, 3)
    first = transform(sample)["image"]
    transform.reseed(0, 0, 3)
    assert torch.equal(transform(sample)["image"], first)                # per-sample stream
    transform.reseed(1, 0, 3)
    assert not torch.equal(transform(sample)["image"], first)            # next epoch
    assert torch.equal(RandomHEStain(prob=0.0)(sample)["image"], sample["image"])
    with pytest.raises(ValueError, match="alpha, beta >= 0"):
        RandomHEStain(alpha=-1)
