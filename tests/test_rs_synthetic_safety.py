"""The synthetic-archive writer never destroys data, and concurrent callers share one archive."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pytest

from domains.remote_sensing.synthetic import (
    GENERATOR_NAME,
    UnsafeOutputError,
    archive_problem,
    default_archive,
    generate_archive,
)
from domains.remote_sensing.synthetic import generator as generator_module
from domains.remote_sensing.synthetic.__main__ import main

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Barrier

TINY: dict[str, int] = {"n_s2": 8, "n_s1": 8, "n_paired": 2, "size": 16}
ROWS = 8 + 8 + 2 * 2
REPO = Path(__file__).resolve().parent.parent


def _tiny(out: Path, seed: int = 0, **kwargs: Any) -> Path:
    return generate_archive(out, **TINY, seed=seed, workers=1, progress=False, **kwargs)


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def _user_folder(parent: Path) -> Path:
    """A folder of the user's: a file and a subfolder, nothing of ours."""
    folder = parent / "data"
    (folder / "photos").mkdir(parents=True)
    (folder / "thesis.tex").write_bytes(b"\\chapter{Years of work}\n")
    (folder / "photos" / "a.jpg").write_bytes(bytes(range(256)))
    return folder


def test_cli_refuses_a_folder_that_is_not_an_archive(tmp_path: Path) -> None:
    folder = _user_folder(tmp_path)
    before = _snapshot(folder)
    done = subprocess.run(
        [sys.executable, "-m", "domains.remote_sensing.synthetic", "--out", str(folder),
         "--n-s2", "2", "--n-s1", "2", "--n-paired", "0", "--size", "16", "--overwrite"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "80"})
    assert done.returncode == 2, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), done.stdout
    assert str(folder) in lines[0] and "Traceback" not in done.stderr
    assert f"not an archive written by {GENERATOR_NAME}" in lines[0]
    assert "choose an empty or new folder" in lines[0] and "--overwrite" in lines[0]
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no temporary left


@pytest.mark.parametrize("overwrite", [False, True])
def test_main_and_generate_archive_refuse_a_foreign_folder(tmp_path: Path,
                                                          overwrite: bool) -> None:
    folder = _user_folder(tmp_path)
    before = _snapshot(folder)
    with pytest.raises(UnsafeOutputError, match="not an archive written by") as caught:
        main(["--out", str(folder), "--n-s2", "2", "--n-s1", "2", "--n-paired", "0",
              "--size", "16"] + (["--overwrite"] if overwrite else []))
    assert str(folder) in str(caught.value) and "--overwrite" in str(caught.value)
    with pytest.raises(UnsafeOutputError, match="choose an empty or new folder"):
        _tiny(folder, overwrite=overwrite)
    assert _snapshot(folder) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_look_alikes_are_refused_even_with_overwrite(tmp_path: Path) -> None:
    # The layout of an archive, but a manifest another tool wrote.
    fake = tmp_path / "fake"
    for sub in ("s1", "s2"):
        (fake / sub).mkdir(parents=True)
    (fake / "metadata.parquet").write_bytes(b"PAR1")
    (fake / "manifest.json").write_text(json.dumps({"tool": "other", "version": 1}))
    # A real archive into which the user saved a file of their own.
    mixed = _tiny(tmp_path / "mixed")
    (mixed / "my_notes.txt").write_text("keep me")
    # A file where a folder is expected.
    plain = tmp_path / "plain.txt"
    plain.write_text("keep me too")
    for target, reason in ((fake, "manifest.json was not written"),
                           (mixed, "my_notes.txt"), (plain, "not a folder")):
        before = _snapshot(tmp_path)
        with pytest.raises(UnsafeOutputError, match=reason):
            _tiny(target, seed=1, overwrite=True)
        assert _snapshot(tmp_path) == before, target
    assert archive_problem(fake) is not None and archive_problem(mixed) is not None


def test_an_archive_is_replaced_only_with_overwrite(tmp_path: Path) -> None:
    archive = _tiny(tmp_path / "archive", seed=0)
    assert archive_problem(archive) is None
    manifest = json.loads((archive / "manifest.json").read_text())
    assert manifest["generator"] == GENERATOR_NAME and manifest["rows"] == ROWS
    before = _snapshot(archive)
    with pytest.raises(UnsafeOutputError, match="--overwrite") as caught:
        _tiny(archive, seed=1)
    assert str(archive) in str(caught.value)
    with pytest.raises(UnsafeOutputError, match="--overwrite"):
        main(["--out", str(archive), "--n-s2", "8", "--n-s1", "8", "--n-paired", "2",
              "--size", "16", "--seed", "1", "--workers", "1"])
    assert _snapshot(archive) == before

    first = gpd.read_parquet(archive / "metadata.parquet")
    main(["--out", str(archive), "--n-s2", "8", "--n-s1", "8", "--n-paired", "2",
          "--size", "16", "--seed", "1", "--workers", "1", "--overwrite"])
    second = gpd.read_parquet(archive / "metadata.parquet")
    assert json.loads((archive / "manifest.json").read_text())["seed"] == 1
    assert len(second) == ROWS and not first["caption"].equals(second["caption"])
    assert archive_problem(archive) is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]  # no temporary left


def test_a_failed_run_leaves_the_old_archive_intact(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    archive = _tiny(tmp_path / "archive", seed=0)
    before = _snapshot(archive)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(generator_module, "scene_footprint", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        _tiny(archive, seed=1, overwrite=True)
    assert _snapshot(archive) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["archive"]


def test_empty_and_missing_folders_are_written(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    for out in (empty, tmp_path / "new" / "nested"):
        assert _tiny(out) == out and archive_problem(out) is None
        assert len(gpd.read_parquet(out / "metadata.parquet")) == ROWS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "new"]


def test_default_archive_regenerates_a_crashed_run_but_not_foreign_data(tmp_path: Path) -> None:
    archive = default_archive(tmp_path, workers=1, progress=False, **TINY)
    assert archive.parent == tmp_path and archive_problem(archive) is None
    # A crash before the manifest: a partial folder and a partial temporary next to it.
    (archive / "manifest.json").unlink()
    leftover = tmp_path / f".{archive.name}.partial-1-deadbeef"
    (leftover / "s2").mkdir(parents=True)
    assert default_archive(tmp_path, workers=1, progress=False, **TINY) == archive
    assert archive_problem(archive) is None and not leftover.exists()
    stamp = (archive / "manifest.json").stat().st_mtime_ns
    assert default_archive(tmp_path, workers=1, progress=False, **TINY) == archive  # reused
    assert (archive / "manifest.json").stat().st_mtime_ns == stamp
    # Something not ours inside the cached folder: refused, nothing deleted.
    (archive / "manifest.json").unlink()
    (archive / "mine.txt").write_text("not the generator's")
    before = _snapshot(tmp_path)
    with pytest.raises(UnsafeOutputError, match="mine.txt|not written by"):
        default_archive(tmp_path, workers=1, progress=False, **TINY)
    assert _snapshot(tmp_path) == before


def _ask_default_archive(cache: str, counter: str, barrier: Barrier, results: Queue) -> None:
    """Child process: ask for the default archive, counting real generations in ``counter``."""
    os.environ["MOSAIC_VLM_CACHE"] = cache
    real = generator_module.generate_archive

    def counting(*args: Any, **kwargs: Any) -> Path:
        with open(counter, "a") as handle:
            handle.write(f"{os.getpid()}\n")
        time.sleep(1.0)  # widen the window in which the other caller could generate too
        return real(*args, **kwargs)

    generator_module.generate_archive = counting  # type: ignore[assignment]
    barrier.wait(timeout=120)
    results.put(str(generator_module.default_archive(workers=1, progress=False, **TINY)))


def test_two_processes_asking_at_once_share_one_archive(tmp_path: Path) -> None:
    # fork: the children inherit the imported modules (spawn would import torch twice more).
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    counter = tmp_path / "generations.txt"
    cache = tmp_path / "cache"
    children = [ctx.Process(target=_ask_default_archive,
                            args=(str(cache), str(counter), barrier, results))
                for _ in range(2)]
    for child in children:
        child.start()
    try:
        paths = [results.get(timeout=240) for _ in children]
        for child in children:
            child.join(timeout=60)
    finally:
        for child in children:
            if child.is_alive():
                child.kill()
    assert [child.exitcode for child in children] == [0, 0]
    assert paths[0] == paths[1]
    archive = Path(paths[0])
    assert archive.parent == cache / "synthetic"
    assert len(counter.read_text().splitlines()) == 1  # generated once, then reused
    assert archive_problem(archive) is None
    manifest = json.loads((archive / "manifest.json").read_text())
    assert {k: manifest[k] for k in TINY} == TINY and manifest["rows"] == ROWS
    assert len(gpd.read_parquet(archive / "metadata.parquet")) == ROWS
    assert sorted(p.name for p in (cache / "synthetic").iterdir()) == \
        sorted([archive.name, f"{archive.name}.lock"])
