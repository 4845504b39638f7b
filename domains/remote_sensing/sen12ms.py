"""SEN12MS (Schmitt et al. 2019): Sentinel-1 / Sentinel-2 / MODIS land-cover patch triplets.

Layout (``datasets/remote_sensing/sen12ms.yaml``; the facts TorchGeo 0.8's ``SEN12MS``
and its test-data script rely on, and the authors' github.com/schmitt-muc/SEN12MS
``classification/dataset.py`` and ``splits/``)::

    <root>/ROIs<nnnn>_<season>/s2_<scene>/ROIs<nnnn>_<season>_s2_<scene>_p<patch>.tif
        13 bands B01..B12 with B8A and B10 (L1C digital numbers), 256 x 256 px at 10 m
    <root>/ROIs<nnnn>_<season>/s1_<scene>/..._s1_<scene>_p<patch>.tif
        2 bands, sigma0 in dB: VV, VH
    <root>/ROIs<nnnn>_<season>/lc_<scene>/..._lc_<scene>_p<patch>.tif
        4 bands of MODIS land cover: IGBP, LCCS land cover, LCCS land use, LCCS hydrology
    <root>/train_list.txt, test_list.txt
        one S2 patch file name per line (the authors' ``splits/``; there is no official
        validation list)

The files carry no band descriptions: the band order is the card's (S2 the 13 L1C bands,
S1 VV, VH — still verified from the data), so the readers' "band order assumed" warning
is not raised here. S2 becomes reflectance (L1C; the 2016-2017 products carry no offset).

Labels: the IGBP band of the lc file gives each scene's area fraction per Dynamic World
class (``igbp`` map of the card); the classes covering at least the captions card's
``min_label_fraction`` are the labels, largest first — the authors' multi-label
labels are likewise IGBP fractions above a threshold. The lc files are read once at
construction to know every scene's labels. S1 and S2 of one triplet share a
``pair_id``.

Validation: SEN12MS publishes only a train and a test list. As TorchGeo's
``SEN12MSDataModule`` does, ``val`` is carved from the train list by whole scenes — a
scene is its (season, scene) pair, patches of one scene are neighbours and must not sit
on both sides — with TorchGeo's own :func:`torchgeo.datamodules.utils.group_shuffle_split`
(the card's ``val_fraction`` of the scenes, seed 0). So train and val share no
(season, scene); a warning names any scene the train and test lists share.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
from torchgeo.datamodules.utils import group_shuffle_split

from domains.remote_sensing import cards
from domains.remote_sensing.inputs import AssumedBandOrderWarning
from domains.remote_sensing.scene_dataset import READ_ERRORS, SceneDataset
from domains.remote_sensing.scene_io import SceneError, read_scene_info, scene_lon_lat

log = logging.getLogger(__name__)


def triplet_path(root: Path, s2_name: str, source: str) -> Path:
    """The file of one source (``s1``, ``s2``, ``lc``) of the triplet named by its S2 file."""
    parts = s2_name.split("_")
    if len(parts) != 5 or parts[2] != "s2":
        raise ValueError(f"{s2_name!r} is not a SEN12MS S2 patch name "
                         "(ROIs<nnnn>_<season>_s2_<scene>_p<patch>.tif)")
    parts[2] = source
    return root / f"{parts[0]}_{parts[1]}" / f"{source}_{parts[3]}" / "_".join(parts)


def scene_of(s2_name: str) -> tuple[str, int]:
    """The (season, scene) a patch belongs to, from its S2 file name.

    ``ROIs1868_summer_s2_146_p202.tif`` -> ``("summer", 146)``: the unit TorchGeo's
    datamodule splits by (scene numbers repeat across seasons).
    """
    parts = s2_name.split("_")
    if len(parts) != 5 or parts[2] != "s2" or not parts[3].isdigit():
        raise ValueError(f"{s2_name!r} is not a SEN12MS S2 patch name "
                         "(ROIs<nnnn>_<season>_s2_<scene>_p<patch>.tif)")
    return parts[1], int(parts[3])


def carve_validation(train: list[str], fraction: float, seed: int = 0
                     ) -> tuple[list[str], list[str]]:
    """Split the train list into (train, val) by whole (season, scene) groups.

    Uses TorchGeo's :func:`~torchgeo.datamodules.utils.group_shuffle_split`, as its
    ``SEN12MSDataModule`` does (there with ``test_size=0.2, random_state=0``).

    Args:
        train: S2 patch file names of the official train list.
        fraction: Share of the scenes that go to validation.
        seed: Seed of the group shuffle.

    Returns:
        The train names and the val names, each in list order. With too few scenes for
        one validation scene, val is empty (and a warning says so).
    """
    if not train:
        return [], []
    groups = [scene_of(name) for name in train]
    try:
        keep, held = group_shuffle_split([f"{s}_{n}" for s, n in groups], test_size=fraction,
                                         random_state=seed)
    except ValueError as error:
        log.warning("SEN12MS: no validation scenes carved from the train list (%s)", error)
        return list(train), []
    return [train[i] for i in keep], [train[i] for i in held]


class SEN12MS(SceneDataset):
    """One sensor's patches of a SEN12MS archive, labelled from its MODIS IGBP map.

    Args:
        root: Folder with the ``ROIs*`` season folders and the split lists.
        sensor: ``"s2"`` or ``"s1"``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for all listed patches.
        bands: Bands to return (default: all 13 S2 bands, or VV, VH).
        transforms: A dictionary transform applied to each sample.
        strict: Raise on the first bad patch instead of skipping it.
        preload: Read and check every patch image at construction (small archives, tests).
    """

    def __init__(
        self, root: str | Path, sensor: str = "s2", split: str | None = "train",
        bands: Sequence[str] | None = None, transforms: Callable | None = None,
        strict: bool = False, preload: bool = False,
    ) -> None:
        super().__init__(sensor, bands, transforms, strict)
        self.root = Path(root)
        self.card = cards.card("sen12ms")
        self.level = str(self.card["level"])  # every S2 patch: picks the statistics
        self.igbp = {int(code): label for code, label in self.card["igbp"].items()}
        names = self._names(split)
        self.metadata = self._rows(names)
        if preload:
            self._preload()

    def _list(self, split: str) -> list[str]:
        path = self.root / f"{split}_list.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: SEN12MS split list not found (the lists are in "
                                    "github.com/schmitt-muc/SEN12MS, splits/)")
        return [line.strip() for line in path.read_text().splitlines() if line.strip()]

    def _names(self, split: str | None) -> list[str]:
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: SEN12MS folder not found")
        if split not in ("train", "val", "test", None):
            raise ValueError(f"unknown split {split!r}; known: train, val, test, None")
        if split == "test":
            return self._list("test")
        train, val = carve_validation(self._list("train"), float(self.card["val_fraction"]))
        test = self._list("test") if (self.root / "test_list.txt").is_file() else []
        shared = sorted({scene_of(n) for n in train + val} & {scene_of(n) for n in test})
        if shared:
            log.warning("SEN12MS: the train and test lists share scenes %s", shared[:5])
        if split == "train":
            return train
        if split == "val":
            return val
        return list(dict.fromkeys(train + val + test))

    def _rows(self, names: list[str]) -> pd.DataFrame:
        rows = []
        for name in names:
            path = triplet_path(self.root, name, self.sensor)
            lc = triplet_path(self.root, name, "lc")
            try:
                fractions = self._fractions_of(lc)
            except READ_ERRORS as error:
                self._bad(str(lc), str(error))
                continue
            labels = cards.labels_from_fractions(fractions)
            if not labels:
                self._bad(str(lc), "missing caption: no IGBP class maps to the vocabulary")
                continue
            pair = name.replace("_s2_", "_").removesuffix(".tif")
            rows.append({"path": str(path), "id": path.stem, "pair_id": pair,
                         "labels": labels, "season": scene_of(name)[0],
                         "scene": scene_of(name)[1],
                         **dict(zip(cards.fraction_columns(), fractions.tolist(), strict=True))})
        columns = ["path", "id", "pair_id", "labels", "season", "scene", *cards.fraction_columns()]
        return pd.DataFrame(rows, columns=columns)

    def _fractions_of(self, lc: Path) -> np.ndarray:
        try:
            with rasterio.open(lc) as src:
                if src.count < int(self.card["label_band"]):
                    raise SceneError(f"{lc}: wrong band count {src.count} for a land-cover "
                                     "file (expected 4: IGBP, LCCS LC, LU, SH)")
                igbp = src.read(int(self.card["label_band"]))  # (H, W)
        except (rasterio.errors.RasterioError, OSError) as error:
            raise SceneError(f"{lc}: unreadable GeoTIFF ({error})") from error
        fractions = cards.class_fractions(igbp, self.igbp)
        if np.isnan(fractions).all():
            raise SceneError(f"{lc}: no pixel has an IGBP class (1-17)")
        return fractions

    def _read(self, index: int) -> dict[str, Any]:
        path = self.metadata.iloc[index]["path"]
        level = {"level": self.level} if self.sensor == "s2" else {}
        image, info = read_scene_info(path, self.sensor, self.bands, **level)  # (C, H, W)
        for warning in info.warnings:  # the card declares the band order: no assumption
            if not isinstance(warning, AssumedBandOrderWarning):
                warnings.warn(warning, stacklevel=2)
        return {"image": image, "coords": scene_lon_lat(path)}
