"""Archive index and text search: round trip, filters before ranking, resume, damaged indexes."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import box

from core.indexing import work_folder
from core.retrieval import EmbeddingIndex, IndexLoadError
from domains.remote_sensing import SceneIndex, index, search
from domains.remote_sensing.archives import detect_layout, open_dataset
from domains.remote_sensing.evaluation import crisis_queries
from domains.remote_sensing.run_model import SceneRun
from domains.remote_sensing.scene_index import parse_bbox, parse_date_range, parse_point
from domains.remote_sensing.scene_io import SceneError
from domains.remote_sensing.synthetic import generate_archive


@pytest.fixture(scope="module")
def built(rs_archive: Path, rs_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole archive (both sensors) indexed with the trained CLOSP run, via the CLI."""
    out = tmp_path_factory.mktemp("index") / "scenes"
    summary = index.main(["build", str(rs_archive), "--run", str(rs_run), "--out", str(out),
                          "--shard-size", "512"])
    assert summary.scenes == {"s2": 864, "s1": 864} and not summary.bad_samples
    assert summary.kind == "exact" and summary.shards_embedded == 4
    return out


@pytest.fixture(scope="module")
def scenes(built: Path) -> SceneIndex:
    return SceneIndex.load(built)


def test_metadata_is_geoparquet_with_footprints_dates_and_labels(built: Path,
                                                                scenes: SceneIndex) -> None:
    import geopandas as gpd

    table = gpd.read_parquet(built / "metadata.parquet")
    assert table.crs.to_epsg() == 4326 and len(table) == len(scenes) == 1728
    assert set(table["sensor"]) == {"s1", "s2"}
    assert table.geometry.is_valid.all() and (table.geometry.geom_type == "Polygon").all()
    centres = shapely.points(table["lon"], table["lat"])
    assert shapely.contains(shapely.buffer(table.geometry.to_numpy(), 1e-6), centres).all()
    assert table["date"].str.match(r"\d{4}-\d{2}-\d{2}$").all()
    assert all(len(labels) > 0 for labels in table["labels"])
    assert all(Path(p).is_file() for p in table["path"].head(20))


def test_a_scene_embedding_as_query_returns_that_scene_first(scenes: SceneIndex,
                                                             rs_archive: Path) -> None:
    run = SceneRun.load(scenes.run_folder)
    dataset = open_dataset(rs_archive, "folder", "s1", None, run.bands["s1"], None, False, False)
    for row in (3, 400):
        sample = dataset.read_sample(row)
        query = run.embed_images("s1", [run.normalise("s1", sample["image"])])[0]
        hits = scenes.search_vector(query, k=3)
        assert hits.iloc[0]["id"] == sample["id"] and hits.iloc[0]["path"] == sample["path"]
        assert hits.iloc[0]["score"] == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("query", ["water", "snow and ice", "built area"])
def test_text_query_returns_scenes_whose_captions_match(scenes: SceneIndex, query: str) -> None:
    hits = scenes.search(query, k=10)
    assert list(hits["rank"]) == list(range(1, 11))
    assert np.all(np.diff(hits["score"].to_numpy()) <= 1e-6)  # best first
    precision = np.mean([query in labels for labels in hits["labels"]])
    base_rate = np.mean([query in labels for labels in scenes.metadata["labels"]])
    print(f"{query!r}: precision@10 {precision:.2f} (base rate {base_rate:.2f})")
    assert precision >= 0.7 and precision > 2 * base_rate


def _exact_top(scenes: SceneIndex, text: str, mask: np.ndarray, k: int) -> list[str]:
    """Brute-force ranking of the rows in ``mask`` (the oracle for filtered search)."""
    vectors = scenes.index.index.reconstruct_n(0, len(scenes))  # (N, D)
    scores = vectors @ scenes.run.embed_text([text])[0].numpy()
    rows = np.flatnonzero(mask)
    order = rows[np.argsort(-scores[rows], kind="stable")[:k]]
    return list(scenes.metadata["id"].iloc[order])


def test_filters_apply_before_ranking_and_k_results_come_back(scenes: SceneIndex) -> None:
    table = scenes.metadata
    bbox = (0.0, 40.0, 20.0, 55.0)
    inside = table.geometry.intersects(box(*bbox)).to_numpy()
    s1 = (table["sensor"] == "s1").to_numpy()
    dates = table["date"].to_numpy()
    in_2023 = (dates >= "2023-01-01") & (dates <= "2023-12-31")
    wanted = inside & s1 & in_2023
    assert 10 < wanted.sum() < 200  # a selective filter, still with more than k matches
    hits = scenes.search("water", k=10, sensor="s1", bbox="0,40,20,55",
                         date="2023-01-01..2023-12-31")
    assert len(hits) == 10
    assert (hits["sensor"] == "s1").all()
    assert hits.geometry.intersects(box(*bbox)).all()
    assert hits["date"].between("2023-01-01", "2023-12-31").all()
    assert list(hits["id"]) == _exact_top(scenes, "water", wanted, 10)
    # Asking for more than match returns every match, never a scene outside the filters.
    everything = scenes.search("water", k=500, sensor="s1", bbox=bbox,
                               date=("2023-01-01", "2023-12-31"))
    assert len(everything) == wanted.sum()
    # Open-ended date ranges and a box nothing intersects.
    later = scenes.search("trees", k=5, date="2024-06-01..")
    assert len(later) == 5 and (later["date"] >= "2024-06-01").all()
    assert len(scenes.search("trees", k=5, bbox="-179,-89,-178,-88")) == 0


def test_filter_inputs_are_checked_with_clear_errors(scenes: SceneIndex) -> None:
    assert parse_bbox("170,-10,-170,10") == (170.0, -10.0, -170.0, 10.0)  # antimeridian
    assert parse_point("90.5, 23") == (90.5, 23.0)
    start, end = parse_date_range("2023-02-01..")
    assert str(start) == "2023-02-01" and end is None
    with pytest.raises(ValueError, match="W,S,E,N"):
        parse_bbox("1,2,3")
    with pytest.raises(ValueError, match="south <= north"):
        parse_bbox("0,50,10,40")
    with pytest.raises(ValueError, match="ends before it starts"):
        parse_date_range("2024-01-01..2023-01-01")
    with pytest.raises(ValueError, match="cannot read date"):
        parse_date_range("yesterday..")
    with pytest.raises(ValueError, match="unknown sensor"):
        scenes.search("water", sensor="s3")
    with pytest.raises(ValueError, match="needs a GeoCLOSP index"):
        scenes.search("flooded area", near="90,23")


def test_cli_prints_the_table_and_writes_gallery_and_json(built: Path, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture) -> None:
    gallery = tmp_path / "hits.png"
    results = search.main(["snow and ice", "--index", str(built), "-k", "4", "--sensor", "s2",
                           "--gallery", str(gallery)])
    printed = capsys.readouterr().out
    assert "snow and ice" in printed and results.iloc[0]["id"] in printed
    assert gallery.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads(gallery.with_suffix(".json").read_text())
    assert [r["id"] for r in payload["results"]] == list(results["id"])
    assert payload["results"][0]["footprint"].startswith("POLYGON")


def test_index_of_another_model_is_refused(built: Path, rs_geo_run: Path) -> None:
    with pytest.raises(ValueError, match="differ from the ones that built"):
        SceneIndex.load(built, run=rs_geo_run).search("water")


def test_damaged_or_partial_index_is_refused(built: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", list(sys.argv))
    def copy(name: str) -> Path:
        return Path(shutil.copytree(built, tmp_path / name))

    truncated = copy("truncated")
    data = (truncated / "index.faiss").read_bytes()
    (truncated / "index.faiss").write_bytes(data[: len(data) // 2])
    with pytest.raises(IndexLoadError, match="truncated or damaged"):
        SceneIndex.load(truncated)
    flipped = copy("flipped")
    data = bytearray((flipped / "metadata.parquet").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (flipped / "metadata.parquet").write_bytes(bytes(data))
    with pytest.raises(IndexLoadError, match="checksum mismatch"):
        SceneIndex.load(flipped)
    partial = copy("partial")
    (partial / "manifest.json").unlink()
    with pytest.raises(IndexLoadError, match="not a complete index"):
        SceneIndex.load(partial)
    plain = tmp_path / "plain"
    EmbeddingIndex(4).save(plain)
    with pytest.raises(IndexLoadError, match="not a scene index"):
        SceneIndex.load(plain)
    with pytest.raises(SystemExit):  # the command line ends with a one-line error
        sys.argv = ["search", "water", "--index", str(truncated)]
        search.cli()


def test_interrupted_build_resumes_without_re_embedding_finished_shards(
        rs_archive: Path, rs_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "resumed"
    options = {"split": "test", "shard_size": 64, "progress": False}
    real = index.embed_scenes_batch  # one call per shard: shard_size = batch size = 64
    calls: list[tuple[str, int]] = []

    def interrupted(run, dataset, sensor, items, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append((sensor, items[0][0]))
        return real(run, dataset, sensor, items, *args, **kwargs)

    monkeypatch.setattr(index, "embed_scenes_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        index.build_index(rs_archive, rs_run, out, **options)
    work = work_folder(out)
    finished = sorted(p.name for p in work.glob("s*-*.json"))
    assert finished == ["s2-00000.json", "s2-00001.json", "s2-00002.json"] and not out.exists()
    # Other settings than the interrupted build's are refused, not mixed in.
    with pytest.raises(ValueError, match="--restart"):
        index.build_index(rs_archive, rs_run, out, **{**options, "shard_size": 32})

    calls.clear()

    def counted(run, dataset, sensor, items, *args, **kwargs):
        calls.append((sensor, items[0][0]))
        return real(run, dataset, sensor, items, *args, **kwargs)

    monkeypatch.setattr(index, "embed_scenes_batch", counted)
    summary = index.build_index(rs_archive, rs_run, out, **options)
    assert summary.shards_reused == 3 and summary.shards_embedded == len(calls) > 0
    assert not {("s2", 0), ("s2", 64), ("s2", 128)} & set(calls)  # finished shards kept
    assert not work.exists()
    straight = index.build_index(rs_archive, rs_run, tmp_path / "straight", **options)
    resumed, fresh = SceneIndex.load(out), SceneIndex.load(tmp_path / "straight")
    assert list(resumed.metadata["id"]) == list(fresh.metadata["id"])
    np.testing.assert_allclose(resumed.index.index.reconstruct_n(0, len(resumed)),
                               fresh.index.index.reconstruct_n(0, len(fresh)), atol=1e-6)
    assert straight.scenes == summary.scenes
    assert straight.shards_embedded == summary.shards_reused + summary.shards_embedded


def test_bad_scenes_are_skipped_and_counted_or_raised_when_strict(
        rs_run: Path, tmp_path: Path) -> None:
    archive = generate_archive(tmp_path / "small", n_s2=12, n_s1=12, n_paired=0, seed=3,
                               size=64, workers=1, progress=False)
    assert detect_layout(archive) == "folder"
    broken = sorted((archive / "s2").glob("*.tif"))[0]
    broken.write_bytes(broken.read_bytes()[:300])
    summary = index.build_index(archive, rs_run, tmp_path / "idx", progress=False)
    assert summary.scenes == {"s2": 11, "s1": 12}
    assert len(summary.bad_samples) == 1 and summary.bad_samples[0][0] == str(broken)
    assert SceneIndex.load(tmp_path / "idx").info["bad_samples"] == 1
    with pytest.raises(SceneError, match=broken.name):
        index.build_index(archive, rs_run, tmp_path / "strict", strict=True, progress=False,
                          restart=True)
    with pytest.raises(FileNotFoundError, match="not a known archive layout"):
        detect_layout(tmp_path)


def test_geoclosp_index_fuses_the_query_place(rs_archive: Path, rs_geo_run: Path,
                                              tmp_path: Path) -> None:
    summary = index.build_index(rs_archive, rs_geo_run, tmp_path / "geo", split="test",
                                progress=False)
    scenes = SceneIndex.load(tmp_path / "geo")
    assert scenes.info["location"] and scenes.index.dim == 2 * scenes.info["embed_dim"]
    tag, place = crisis_queries("synthetic")[0]
    plain = scenes.search(tag, k=10)
    fused = scenes.search(tag, k=10, near=place, near_weight=1.0)
    assert "distance_km" in fused.columns and "distance_km" not in plain.columns
    from domains.remote_sensing.scene_index import haversine_km

    before = np.median(haversine_km(plain["lon"].to_numpy(), plain["lat"].to_numpy(), place))
    after = float(fused["distance_km"].median())
    print(f"{tag} near {place}: median distance of the top 10 {before:.0f} km -> {after:.0f} km")
    assert after < 0.5 * before
    # Without near, the location half of the query is zero: scores are text-image cosines.
    vectors = scenes.index.index.reconstruct_n(0, len(scenes))[:, : scenes.info["embed_dim"]]
    text = scenes.run.embed_text([tag])[0].numpy()
    np.testing.assert_allclose(plain["score"], np.sort(vectors @ text)[::-1][:10], atol=1e-5)
    assert sum(summary.scenes.values()) == len(scenes)
