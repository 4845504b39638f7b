"""The archive layouts a scene loader reads, in one table: detect a folder's, open a split.

Used by training (the data module), evaluation, the archive index and the command lines,
so a layout is named, detected and opened the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from core.data import BadSampleLog
from core.data import detect_layout as core_detect_layout
from domains.remote_sensing import cards
from domains.remote_sensing.bigearthnet import BigEarthNetV2
from domains.remote_sensing.crisislandmark import CrisisLandMark
from domains.remote_sensing.scene_dataset import SceneDataset
from domains.remote_sensing.scene_folder import METADATA_NAMES, SceneFolder
from domains.remote_sensing.sen12ms import SEN12MS

#: Layout name -> loader class. ``synthetic`` and ``folder`` are both a scene folder (a
#: metadata table + GeoTIFFs); the others are the real archives' own layouts (see
#: docs/remote_sensing_data.md).
LOADERS: dict[str, type[SceneDataset]] = {
    "synthetic": SceneFolder, "crisislandmark": CrisisLandMark, "bigearthnet": BigEarthNetV2,
    "sen12ms": SEN12MS, "folder": SceneFolder,
}
LAYOUTS = tuple(LOADERS)


def detect_layout(root: str | Path) -> str:
    """The layout of an archive folder, from the files its loader needs.

    Raises:
        FileNotFoundError: Naming the folder when it matches no known layout.
    """
    return core_detect_layout(root, [
        ("crisislandmark",
         lambda folder: (folder / cards.card("crisislandmark")["h5_file"]).is_file()),
        ("bigearthnet", lambda folder: any(
            (folder / f).is_dir() for f in cards.card("bigearthnet")["folders"].values())),
        ("sen12ms", lambda folder: any(folder.glob("*_list.txt"))),
        ("folder", lambda folder: any((folder / name).is_file() for name in METADATA_NAMES)),
    ], f"not a known archive layout (no metadata table, crisislandmark.h5, BigEarthNet-S1/S2 "
       f"or SEN12MS split lists); pass the layout explicitly, one of {', '.join(LAYOUTS)}")


def open_dataset(root: str | Path, layout: str, sensor: str, split: str | None,
                 bands: Sequence[str] | None = None, transforms: Any = None,
                 strict: bool = False, preload: bool | None = None,
                 bad_sample_log: BadSampleLog | None = None, **options: Any) -> SceneDataset:
    """Open one sensor's scenes of an archive in any supported layout.

    Args:
        root: Archive folder.
        layout: One of :data:`LAYOUTS`.
        sensor: ``"s2"`` or ``"s1"``.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` for all.
        bands: Band subset.
        transforms: Dictionary transform.
        strict: Raise on bad files instead of skipping them.
        preload: Read and check every scene when opening (``None``: the loader's default —
            yes for scene folders, no for the large real archives).
        bad_sample_log: Where DataLoader workers record the scenes they skip.
        **options: Options of the layout's loader (e.g. BigEarthNet's
            ``exclude_snow_cloud=True``); an option the loader does not take is an error.

    Returns:
        A dataset of sample dicts.
    """
    if layout not in LOADERS:
        raise ValueError(f"unknown layout {layout!r}; known: {', '.join(LAYOUTS)}")
    if preload is not None:
        options["preload"] = preload
    try:
        dataset = LOADERS[layout](root, sensor=sensor, split=split, bands=bands,
                                  transforms=transforms, strict=strict, **options)
    except TypeError as error:
        if "unexpected keyword" not in str(error):
            raise
        raise ValueError(f"the {layout} loader takes no option among "
                         f"{sorted(options)} ({error})") from error
    dataset.bad_sample_log = bad_sample_log
    if bad_sample_log is not None:  # found while opening (preload), before the log was set
        for path, problem in dataset.bad_samples:
            bad_sample_log.record(path, problem)
    return dataset
