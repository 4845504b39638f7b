"""Scene folders: bad input is skipped and counted (or raised with strict=True)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from domains.remote_sensing import cards
from domains.remote_sensing.datamodule import CLOSPDataModule
from domains.remote_sensing.scene_folder import SceneFolder
from domains.remote_sensing.scene_io import SceneError, read_scene

BAD = Path(__file__).parent / "data" / "bad_geotiffs"


def test_bad_files_are_skipped_and_counted_with_the_problem_named() -> None:
    dataset = SceneFolder(BAD, sensor="s2", split=None)
    assert len(dataset) == 1
    problems = {Path(path).name: problem for path, problem in dataset.bad_samples}
    assert problems["missing_caption.tif"] == "missing caption"
    assert "5 bands with no band descriptions" in problems["wrong_bands.tif"]
    assert "all pixels are nodata" in problems["all_nodata.tif"]
    assert "pixels are valid" in problems["non_finite.tif"]
    assert "unreadable" in problems["truncated.tif"]
    assert "unreadable" in problems["not_a_tiff.tif"]
    assert "descriptions [SR_B1, SR_B2" in problems["landsat.tif"]
    assert "negative Sentinel-2 digital numbers" in problems["negative.tif"]
    assert all(str(BAD) in path for path, _ in dataset.bad_samples)
    sample = dataset[0]
    assert sample["image"].shape == (13, 16, 16) and sample["image"].dtype == torch.float32
    assert sample["label"].tolist() == dataset.label_vector(["trees", "crops"]).tolist()
    assert sample["caption"] == "trees. crops"
    assert sample["coords"].tolist() == [15.0, 45.0]


def test_strict_raises_on_the_first_bad_file() -> None:
    with pytest.raises(SceneError, match=r"\.tif"):
        SceneFolder(BAD, sensor="s2", split=None, strict=True)


def test_band_subset_by_description_and_normalisation() -> None:
    rgb = read_scene(BAD / "good.tif", "s2", ["B04", "B03", "B02"])
    full = read_scene(BAD / "good.tif", "s2", cards.s2_bands("L1C"))
    torch.testing.assert_close(torch.from_numpy(rgb), torch.from_numpy(full[[3, 2, 1]]))
    module = CLOSPDataModule(BAD, layout="folder", sensors=["s2"], s2_bands=["B04", "B03", "B02"],
                             batch_size=1)
    dataset = module.dataset("s2", "test")
    image = dataset[0]["image"]
    mean, std = cards.normalisation("s2", ["B04", "B03", "B02"])
    expected = (torch.from_numpy(rgb) - torch.from_numpy(mean)[:, None, None]) / \
        torch.from_numpy(std)[:, None, None]
    torch.testing.assert_close(image, expected)
    assert len(module.bad_samples()) == 8


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="archive folder not found"):
        SceneFolder(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="no metadata table"):
        SceneFolder(tmp_path)


@pytest.mark.parametrize("described", [False, True])
def test_l2a_file_read_as_l1c_has_b10_as_nodata(tmp_path: Path, described: bool) -> None:
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    l2a = cards.s2_bands("L2A")
    path = tmp_path / "l2a.tif"
    values = (1000 + 100 * np.arange(len(l2a))[:, None, None] + np.zeros((1, 8, 8)))
    with rasterio.open(path, "w", driver="GTiff", width=8, height=8, count=len(l2a),
                       dtype="uint16", crs="EPSG:32633",
                       transform=from_origin(500_000, 5_000_000, 10, 10)) as dst:
        dst.write(values.astype("uint16"))
        if described:
            dst.descriptions = tuple(l2a)
    image = read_scene(path, "s2", cards.s2_bands("L1C"))  # (13, 8, 8)
    b10 = cards.s2_bands("L1C").index("B10")
    assert np.isnan(image[b10]).all()
    kept = [i for i in range(13) if i != b10]
    np.testing.assert_allclose(image[kept, 0, 0], values[:, 0, 0] / 10000, rtol=1e-6)
    with pytest.raises(SceneError, match="12 bands with no band descriptions" if not described
                       else r"descriptions \[B01, .*\] do not name Sentinel-1 bands"):
        read_scene(path, "s1", cards.s1_bands())
