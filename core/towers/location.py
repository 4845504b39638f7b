"""Location tower: spherical harmonics (or random Fourier features) of (lon, lat) + SIREN.

As SatCLIP: real spherical harmonics of the point on the sphere up to degree L
(L^2 features), then a sinusoidal MLP (SIREN). Input order is (lon, lat) in degrees.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from core.towers.registry import register_tower


@dataclass
class LocationTowerConfig:
    """Configuration of a :class:`LocationTower`.

    Attributes:
        embed_dim: Width of the output embedding.
        encoding: ``"sh"`` (spherical harmonics) or ``"rff"`` (random Fourier features).
        degree: Number of spherical-harmonic degrees L (features: L^2).
        rff_features: Number of random Fourier frequencies (features: 2x this).
        rff_sigma: Standard deviation of the Fourier frequencies on the unit sphere.
        hidden_dim: Width of the SIREN layers.
        num_layers: Number of hidden SIREN layers.
        w0: SIREN frequency of the hidden layers.
        w0_initial: SIREN frequency of the first layer.
        seed: Seed of the random Fourier frequencies.
    """

    embed_dim: int = 256
    encoding: str = "sh"
    degree: int = 10
    rff_features: int = 128
    rff_sigma: float = 4.0
    hidden_dim: int = 256
    num_layers: int = 2
    w0: float = 1.0
    w0_initial: float = 30.0
    seed: int = 0


def _check_lonlat(lonlat: torch.Tensor) -> None:
    if lonlat.ndim != 2 or lonlat.shape[1] != 2:
        raise ValueError(f"coordinates must be (N, 2) as (lon, lat), got {tuple(lonlat.shape)}")


def spherical_harmonics(lonlat: torch.Tensor, degree: int) -> torch.Tensor:
    """Real orthonormal spherical harmonics of points given as (lon, lat) in degrees.

    Args:
        lonlat: (N, 2) longitudes and latitudes in degrees.
        degree: Number of degrees L; harmonics l = 0..L-1, m = -l..l.

    Returns:
        (N, L^2) harmonics ordered by l, then m from -l to l, in float32.
    """
    _check_lonlat(lonlat)
    lon = torch.deg2rad(lonlat[:, 0].double())  # (N,)
    lat = torch.deg2rad(lonlat[:, 1].double())  # (N,)
    x, s = torch.sin(lat), torch.cos(lat)  # cos and sin of the colatitude
    # Associated Legendre functions P[l][m](x) without the Condon-Shortley phase.
    p: dict[tuple[int, int], torch.Tensor] = {(0, 0): torch.ones_like(x)}
    for m in range(1, degree):
        p[(m, m)] = (2 * m - 1) * s * p[(m - 1, m - 1)]
    for m in range(0, degree - 1):
        p[(m + 1, m)] = (2 * m + 1) * x * p[(m, m)]
    for m in range(0, degree):
        for ell in range(m + 2, degree):
            p[(ell, m)] = (
                (2 * ell - 1) * x * p[(ell - 1, m)] - (ell + m - 1) * p[(ell - 2, m)]
            ) / (ell - m)
    columns = []
    for ell in range(degree):
        for m in range(-ell, ell + 1):
            k = math.sqrt(
                (2 * ell + 1) / (4 * math.pi) * math.factorial(ell - abs(m))
                / math.factorial(ell + abs(m))
            )
            if m == 0:
                columns.append(k * p[(ell, 0)])
            elif m > 0:
                columns.append(math.sqrt(2) * k * p[(ell, m)] * torch.cos(m * lon))
            else:
                columns.append(math.sqrt(2) * k * p[(ell, -m)] * torch.sin(-m * lon))
    return torch.stack(columns, dim=1).float()  # (N, L^2)


def lonlat_to_unit_vector(lonlat: torch.Tensor) -> torch.Tensor:
    """Map (lon, lat) degrees to points on the unit sphere: (N, 2) -> (N, 3)."""
    _check_lonlat(lonlat)
    lon, lat = torch.deg2rad(lonlat[:, 0]), torch.deg2rad(lonlat[:, 1])
    return torch.stack([torch.cos(lat) * torch.cos(lon), torch.cos(lat) * torch.sin(lon),
                        torch.sin(lat)], dim=1)


class SineLayer(nn.Module):
    """A SIREN layer: ``sin(w0 * (W x + b))`` with SIREN's initialisation.

    Args:
        in_features: Input width.
        out_features: Output width.
        w0: Frequency factor.
        is_first: Whether this is the first layer (uniform(-1/in, 1/in) init).
    """

    def __init__(self, in_features: int, out_features: int, w0: float, is_first: bool) -> None:
        super().__init__()
        self.w0 = w0
        self.linear = nn.Linear(in_features, out_features)
        bound = 1 / in_features if is_first else math.sqrt(6 / in_features) / w0
        nn.init.uniform_(self.linear.weight, -bound, bound)
        nn.init.uniform_(self.linear.bias, -bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the layer: (N, in) -> (N, out)."""
        return torch.sin(self.w0 * self.linear(x))


class LocationTower(nn.Module):
    """Encode (lon, lat) into an embedding.

    Args:
        config: The tower's configuration.
    """

    def __init__(self, config: LocationTowerConfig) -> None:
        super().__init__()
        if config.encoding not in ("sh", "rff"):
            raise ValueError(f"encoding must be 'sh' or 'rff', got {config.encoding!r}")
        self.config = config
        if config.encoding == "sh":
            in_features = config.degree**2
        else:
            generator = torch.Generator().manual_seed(config.seed)
            freqs = torch.randn(3, config.rff_features, generator=generator) * config.rff_sigma
            self.register_buffer("rff_frequencies", freqs, persistent=True)
            in_features = 2 * config.rff_features
        layers: list[nn.Module] = []
        width = in_features
        for index in range(config.num_layers):
            w0 = config.w0_initial if index == 0 else config.w0
            layers.append(SineLayer(width, config.hidden_dim, w0, is_first=index == 0))
            width = config.hidden_dim
        self.siren = nn.Sequential(*layers)
        self.head = nn.Linear(width, config.embed_dim)

    @property
    def output_dim(self) -> int:
        """Width of the embedding this tower returns."""
        return self.config.embed_dim

    def encode_position(self, lonlat: torch.Tensor) -> torch.Tensor:
        """Positional encoding of coordinates: (N, 2) -> (N, F)."""
        if self.config.encoding == "sh":
            return spherical_harmonics(lonlat, self.config.degree).to(lonlat.device)
        xyz = lonlat_to_unit_vector(lonlat.float())  # (N, 3)
        angles = 2 * math.pi * xyz @ self.rff_frequencies  # (N, R)
        return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)  # (N, 2R)

    def forward(self, lonlat: torch.Tensor) -> torch.Tensor:
        """Embed coordinates: (N, 2) as (lon, lat) degrees -> (N, D), not normalised."""
        features = self.encode_position(lonlat).to(self.head.weight.dtype)  # (N, F)
        return self.head(self.siren(features))  # (N, D)


register_tower("location", LocationTowerConfig, LocationTower)
