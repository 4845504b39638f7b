"""Stain handling for H&E tiles as dictionary transforms: Macenko normalisation, HED jitter.

**Macenko normalisation** (Macenko et al. 2009) — :class:`MacenkoNormalize`. The stain
estimation and the re-staining are MONAI's: :class:`monai.apps.pathology.transforms.
ExtractHEStains` (optical density, transparent pixels dropped, the plane of the two
largest eigenvectors, the alpha-percentile extreme angles, haematoxylin first by its
red/blue ratio) and :class:`~monai.apps.pathology.transforms.NormalizeHEStains`
(concentrations by least squares, 99th-percentile scaling to the reference maxima,
inverse Beer-Lambert). What this module adds on top of them:

- the order of the stain vectors: MONAI 1.6 puts eosin first on H&E tiles (its red/blue
  test is the wrong way round for optical densities, :class:`OrderedHEStains`), which
  with its own default reference paints nuclei pink; haematoxylin is put first by the
  larger red optical density, as the reference implementations do;
- a dictionary transform on the domain's samples: ``sample["image"]`` (3, H, W) float32
  RGB in [0, 1] in and out. MONAI's classes take and return (H, W, 3) uint8 arrays; the
  tile is rounded to uint8 for them (what a tile on disk holds anyway) and the result
  is turned back into float CHW;
- fitting to a **target tile** (:meth:`MacenkoNormalize.fit`): MONAI's
  ``ExtractHEStains`` gives the target's stain matrix, and the reference maximum
  concentrations are the target's own 99th percentiles computed the way
  ``NormalizeHEStains`` computes the source's (MONAI only takes them as a parameter and
  otherwise uses Macenko's published values, :data:`MACENKO_REFERENCE`);
- a **stored reference** (:meth:`MacenkoNormalize.save_reference` /
  :meth:`MacenkoNormalize.from_reference`): the fitted matrix and maxima as JSON, written
  atomically, so training and inference normalise to the same target;
- **background and blank tiles**: Macenko needs stained pixels (optical density above
  ``beta`` in every channel). A tile with fewer than ``min_tissue_fraction`` of them (a
  BACK tile, glass, a washed-out tile) has no stain vectors to estimate; MONAI raises
  for an empty tile and returns an arbitrary matrix for a nearly empty one. Such tiles
  are returned unchanged and counted in ``unchanged`` (``on_blank="keep"``, the default:
  background is a tissue class, not bad input) or refused with a :class:`StainError`
  naming the sample (``on_blank="raise"``). Fitting to a blank target is an error.

**H&E augmentation in HED space** (Tellez et al. 2018, 2019) — :class:`RandomHEStain`:
colour deconvolution into haematoxylin, eosin and DAB (Ruifrok & Johnston's matrix, as
``skimage.color.rgb2hed``), each channel perturbed as ``alpha_c * S_c + beta_c`` with
``alpha_c ~ U(1 - alpha, 1 + alpha)`` and ``beta_c ~ U(-beta, beta)``, and back to RGB.
Written in torch (:func:`rgb_to_hed`, :func:`hed_to_rgb`, the same formulas and units as
skimage's ``rgb2hed`` / ``hed2rgb``; ``tests/test_path_stain.py`` checks them against
skimage) so it runs on a tensor without a round trip through NumPy. skimage clamps
negative stain amounts to zero, which makes its round trip lossy for pixels outside the
H-E-D cone; the augmentation does not clamp (``clamp=False``), so that ``alpha = 1,
beta = 0`` is the identity, and ``clamp=True`` reproduces the skimage pipeline exactly.
Defaults: ``alpha = 0.05`` (Tellez's "HED-light" scale) and ``beta = 0.01``: a shift of
0.05 in skimage's units (optical density / 13.8) is as large as a typical eosin amount
itself, so the light shift is kept smaller; not tuned on data yet. Seeded as every
random transform (:class:`core.transforms.RandomTransform`): the same seed gives the
same tiles, another seed others, and a training loader reseeds it per sample.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.apps.pathology.transforms import ExtractHEStains, NormalizeHEStains

from core.atomic import atomic_write_bytes
from core.data import SampleError
from core.transforms import RandomTransform

#: Macenko's reference H&E stain matrix (columns H, E; rows R, G, B) and maximum
#: concentrations, MONAI's ``NormalizeHEStains`` defaults.
MACENKO_REFERENCE = {
    "stain_matrix": [[0.5626, 0.2159], [0.7201, 0.8012], [0.4062, 0.5581]],
    "max_concentrations": [1.9705, 1.0308],
}
#: Ruifrok & Johnston's stain optical densities, rows H, E, DAB (skimage's rgb_from_hed).
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]],
                            dtype=torch.float64)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)
_LOG_ADJUST = float(np.log(1e-6))


class StainError(SampleError):
    """A tile whose stains cannot be estimated; the message is ``"<tile>: <problem>"``."""


# -- Macenko -------------------------------------------------------------------------------


def to_uint8_hwc(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(3, H, W) float RGB in [0, 1] -> (H, W, 3) uint8 (MONAI's stain convention)."""
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim != 3 or array.shape[0] != 3:
        raise ValueError(f"expected a (3, H, W) RGB image, got shape {array.shape}")
    return np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8).transpose(1, 2, 0)


def optical_density(rgb: np.ndarray, light: float = 240.0) -> np.ndarray:
    """(N, 3) optical densities of uint8 RGB pixels as MONAI computes them (``I + 1``)."""
    pixels = rgb.reshape(-1, 3).astype(np.float32) + 1.0
    return -np.log(pixels.clip(max=light) / light)


def tissue_fraction(rgb: np.ndarray, beta: float = 0.15, light: float = 240.0) -> float:
    """Share of pixels with optical density above ``beta`` in every channel (stained)."""
    return float(np.all(optical_density(rgb, light) > beta, axis=1).mean())


def order_he(matrix: np.ndarray) -> np.ndarray:
    """A (3, 2) stain matrix with haematoxylin first: the column with the larger red OD.

    Haematoxylin (blue-purple) absorbs red light more than eosin does, so its optical
    density vector has the larger red component (Ruifrok: H 0.65, E 0.07; Macenko's
    reference: H 0.56, E 0.22) — the rule of the reference implementations (Macenko's
    MATLAB code, HEnorm_python).
    """
    return matrix if matrix[0, 0] >= matrix[0, 1] else matrix[:, ::-1].copy()


class OrderedHEStains(ExtractHEStains):
    """MONAI's ``ExtractHEStains`` with haematoxylin first by :func:`order_he`.

    MONAI 1.6 orders the two vectors by their red/blue *optical density* ratio, lower
    first as haematoxylin ("high blue, lower red" holds for the colour, not for the
    absorbance), which puts eosin first on H&E tiles — for Ruifrok's vectors and for
    MONAI's own default reference alike (``tests/test_path_stain.py`` shows it). With
    MONAI's default target matrix (H first) that swaps the stains: nuclei come out pink.
    """

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """The (3, 2) H&E matrix of a uint8 (H, W, 3) image, H first."""
        return order_he(super().__call__(image))


class MacenkoNormalize:
    """Macenko stain normalisation of ``sample["image"]`` to a reference (dictionary transform).

    Args:
        stain_matrix: (3, 2) reference stain matrix, columns H and E (default: Macenko's).
        max_concentrations: (2,) reference maximum H and E concentrations.
        light: Transmitted light intensity (``tli``), in uint8 units.
        alpha: Percentile of the extreme stain angles.
        beta: Optical density below which a pixel is transparent (background).
        min_tissue_fraction: Tiles with fewer stained pixels are not normalised.
        on_blank: ``"keep"`` (return such tiles unchanged, counted in ``unchanged``) or
            ``"raise"`` (:class:`StainError` naming the sample's path).
        key: The sample key of the image.

    Attributes:
        unchanged: How many tiles were returned unchanged for lack of stain (this process).
    """

    def __init__(self, stain_matrix: Any = None, max_concentrations: Any = None,
                 light: float = 240.0, alpha: float = 1.0, beta: float = 0.15,
                 min_tissue_fraction: float = 0.05, on_blank: str = "keep",
                 key: str = "image") -> None:
        if on_blank not in ("keep", "raise"):
            raise ValueError(f"on_blank must be 'keep' or 'raise', got {on_blank!r}")
        matrix = np.asarray(MACENKO_REFERENCE["stain_matrix"] if stain_matrix is None
                            else stain_matrix, dtype=np.float64)
        maxima = np.asarray(MACENKO_REFERENCE["max_concentrations"] if max_concentrations
                            is None else max_concentrations, dtype=np.float64)
        if matrix.shape != (3, 2) or maxima.shape != (2,) or not np.all(np.isfinite(matrix)) \
                or not np.all(maxima > 0):
            raise ValueError(f"reference needs a finite (3, 2) stain matrix and two positive "
                             f"maxima, got {matrix.shape} and {maxima.tolist()}")
        self.stain_matrix, self.max_concentrations = matrix, maxima
        self.light, self.alpha, self.beta = float(light), float(alpha), float(beta)
        self.min_tissue_fraction = float(min_tissue_fraction)
        self.on_blank, self.key = on_blank, key
        self.unchanged = 0
        self._normalise = NormalizeHEStains(tli=self.light, alpha=self.alpha, beta=self.beta,
                                            target_he=matrix, max_cref=maxima)
        # the source's stains with H first, as the target's (see OrderedHEStains)
        self._normalise.stain_extractor = OrderedHEStains(tli=self.light, alpha=self.alpha,
                                                          beta=self.beta)

    # -- the reference -------------------------------------------------------------------------

    @classmethod
    def fit(cls, target: torch.Tensor | np.ndarray, name: str = "target tile",
            **options: Any) -> MacenkoNormalize:
        """A normaliser to the stains of a target tile.

        Args:
            target: (3, H, W) float RGB in [0, 1].
            name: How errors name the target.
            **options: The constructor's other arguments (``light``, ``alpha``, ``beta``...).

        Returns:
            The normaliser.

        Raises:
            StainError: When the target has too few stained pixels to fit.
        """
        light = float(options.get("light", 240.0))
        alpha, beta = float(options.get("alpha", 1.0)), float(options.get("beta", 0.15))
        rgb = to_uint8_hwc(target)
        fraction = tissue_fraction(rgb, beta, light)
        if fraction < float(options.get("min_tissue_fraction", 0.05)):
            raise StainError(f"{name}: only {fraction:.1%} of pixels are stained (optical "
                             f"density > {beta}); a stain reference needs a tissue tile")
        matrix = OrderedHEStains(tli=light, alpha=alpha, beta=beta)(rgb)       # (3, 2)
        concentrations = np.linalg.lstsq(matrix, optical_density(rgb, light).T,
                                         rcond=None)[0]                        # (2, N)
        maxima = np.percentile(concentrations, 99, axis=1)                      # (2,)
        return cls(stain_matrix=matrix, max_concentrations=maxima, **options)

    def reference(self) -> dict[str, list]:
        """The reference as plain lists: ``stain_matrix`` (3 x 2), ``max_concentrations``."""
        return {"stain_matrix": self.stain_matrix.tolist(),
                "max_concentrations": self.max_concentrations.tolist()}

    def save_reference(self, path: str | Path) -> Path:
        """Write the reference as JSON (atomically), for :meth:`from_reference`."""
        text = json.dumps({**self.reference(), "light": self.light}, indent=2) + "\n"
        return atomic_write_bytes(path, text.encode("utf-8"))

    @classmethod
    def from_reference(cls, reference: str | Path | Mapping[str, Any],
                       **options: Any) -> MacenkoNormalize:
        """A normaliser to a stored reference (a JSON file or its dict).

        Raises:
            ValueError: Naming the file when it is unreadable or lacks the keys.
        """
        source = str(reference) if not isinstance(reference, Mapping) else "reference"
        try:
            stored = dict(reference) if isinstance(reference, Mapping) else json.loads(
                Path(reference).read_text(encoding="utf-8"))
            matrix, maxima = stored["stain_matrix"], stored["max_concentrations"]
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f"{source}: not a stain reference (stain_matrix, "
                             f"max_concentrations): {type(error).__name__}") from None
        options.setdefault("light", stored.get("light", 240.0))
        return cls(stain_matrix=matrix, max_concentrations=maxima, **options)

    # -- normalising ---------------------------------------------------------------------------

    def normalize(self, image: torch.Tensor | np.ndarray, name: str = "tile") -> torch.Tensor:
        """Normalise one (3, H, W) float RGB tile in [0, 1]; returns (3, H, W) float32.

        Raises:
            StainError: For a tile without enough stain when ``on_blank="raise"``.
        """
        rgb = to_uint8_hwc(image)
        fraction = tissue_fraction(rgb, self.beta, self.light)
        if fraction < self.min_tissue_fraction:
            if self.on_blank == "raise":
                raise StainError(f"{name}: only {fraction:.1%} of pixels are stained; no "
                                 f"stain vectors to normalise")
            self.unchanged += 1
            return torch.as_tensor(image).to(torch.float32).clone()
        out = self._normalise(rgb)                                            # (H, W, 3) uint8
        return torch.from_numpy(out.transpose(2, 0, 1).astype(np.float32) / 255.0)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image stain-normalised."""
        name = str(sample.get("path", "tile"))
        return {**sample, self.key: self.normalize(sample[self.key], name)}


# -- HED augmentation ----------------------------------------------------------------------


def rgb_to_hed(rgb: torch.Tensor, clamp: bool = True) -> torch.Tensor:
    """(..., 3, H, W) RGB in [0, 1] -> HED stain amounts, as ``skimage.color.rgb2hed``.

    Args:
        rgb: Channels first.
        clamp: Clamp negative amounts to 0 (skimage does).

    Returns:
        (..., 3, H, W) haematoxylin, eosin, DAB in skimage's units (OD / -log 1e-6).
    """
    od = torch.log(rgb.double().clamp_min(1e-6)) / _LOG_ADJUST               # (..., 3, H, W)
    hed = torch.einsum("...chw,cd->...dhw", od, HED_FROM_RGB.to(rgb.device))
    return (hed.clamp_min(0.0) if clamp else hed).to(rgb.dtype)


def hed_to_rgb(hed: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) HED amounts -> RGB in [0, 1], as ``skimage.color.hed2rgb``."""
    log_rgb = torch.einsum("...dhw,dc->...chw", hed.double() * _LOG_ADJUST,
                           RGB_FROM_HED.to(hed.device))                     # (..., 3, H, W)
    return torch.exp(log_rgb).clamp(0.0, 1.0).to(hed.dtype)


class RandomHEStain(RandomTransform):
    """Random H&E stain perturbation in HED space (Tellez et al.), seeded.

    Args:
        alpha: Scale jitter: ``alpha_c ~ U(1 - alpha, 1 + alpha)`` per channel.
        beta: Shift jitter: ``beta_c ~ U(-beta, beta)`` per channel (skimage's units).
        prob: Probability of perturbing a tile.
        clamp: Clamp negative stain amounts as skimage does (off: the identity draw is
            the identity).
        seed: Seed of the transform's own generator.
        key: The sample key of the image.
    """

    def __init__(self, alpha: float = 0.05, beta: float = 0.01, prob: float = 1.0,
                 clamp: bool = False, seed: int = 0, key: str = "image") -> None:
        super().__init__(seed)
        if alpha < 0 or beta < 0 or not 0.0 <= prob <= 1.0:
            raise ValueError(f"need alpha, beta >= 0 and prob in [0, 1], got {alpha}, {beta}, "
                             f"{prob}")
        self.alpha, self.beta, self.prob, self.clamp, self.key = alpha, beta, prob, clamp, key

    def draw(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The next (scale, shift) pair, each (3,), or None when the tile is left alone."""
        apply = torch.rand((), generator=self.generator).item() < self.prob
        scale = 1.0 + self.alpha * (2.0 * torch.rand(3, generator=self.generator) - 1.0)
        shift = self.beta * (2.0 * torch.rand(3, generator=self.generator) - 1.0)
        return (scale, shift) if apply else None

    @staticmethod
    def perturb(image: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor,
                clamp: bool = False) -> torch.Tensor:
        """``hed_to_rgb(scale * rgb_to_hed(image) + shift)`` on a (3, H, W) tile."""
        hed = rgb_to_hed(image.double(), clamp=clamp)                        # (3, H, W)
        hed = hed * scale.double()[:, None, None] + shift.double()[:, None, None]
        return hed_to_rgb(hed).to(torch.float32)

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        """Return the sample with its image's stains perturbed."""
        drawn = self.draw()
        if drawn is None:
            return sample
        return {**sample, self.key: self.perturb(sample[self.key], *drawn, clamp=self.clamp)}
