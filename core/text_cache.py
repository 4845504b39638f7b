"""An on-disk cache of text embeddings, keyed by the text model's identity and the text.

A frozen text tower computes each caption once. The cache of one model identity (a hash of
the encoder's weights, tokenizer and settings, see ``core.towers.text.text_model_identity``)
lives in its own folder under the cache root and is made of *segment files*: safetensors
files that each hold an ``embeddings`` table (N, D) and, in their metadata, the N text keys,
the identity they were computed for and a checksum. Nothing is ever rewritten in place:

- :meth:`TextEmbeddingCache.flush` writes only the rows added since the last flush, as a
  new segment with a unique name (pid + uuid), atomically; several processes (DDP ranks)
  may flush into the same folder at once.
- Once a folder holds more than ``compact_after`` small segments, a flush merges them into
  one under an exclusive file lock (``fcntl.flock``): the merged file is written atomically
  *before* the merged segments are removed, so no row is ever lost and a reader sees every
  row (possibly twice) at any moment. Merged files are capped at :data:`MAX_ROWS_PER_FILE`
  rows; full ones (``full-*``) are never merged again.
- Loading reads every segment and lists the folder again until a listing shows no new
  file, so a segment merged by another process meanwhile is read from the merged file.
- A damaged segment, or one written for another identity, is never served: it is skipped
  with a warning naming the file (and moved aside at the next compaction).

Rows added to the cache are served from memory at once; they reach the disk every
``flush_every`` rows, on :meth:`TextEmbeddingCache.flush` / :meth:`TextEmbeddingCache.close`,
when the cache is garbage-collected and at interpreter exit.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import struct
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load, save

from core.atomic import atomic_write_bytes, fsync_path
from core.checksums import sha256_bytes

FORMAT = "mosaic-vlm/text-cache/2"
MAX_ROWS_PER_FILE = 65_536
_IDENTITY = re.compile(r"[0-9a-f]{32,128}")
_STALE_TMP_S = 3600.0


def text_key(text: str) -> str:
    """Stable key of one text: its SHA-1 hex digest (40 characters)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class DamagedSegmentError(ValueError):
    """A segment file that cannot be trusted: unreadable, inconsistent or of another identity."""


def _checksum(keys: list[str], table: torch.Tensor) -> str:
    """SHA-256 over the keys and the float32 bytes of their rows (N, D)."""
    return sha256_bytes(json.dumps(keys).encode("utf-8") + table.numpy().tobytes())


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file held in ``data``."""
    if len(data) < 8:
        raise DamagedSegmentError("shorter than a safetensors header")
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise DamagedSegmentError("header runs past the end of the file")
    try:
        header = json.loads(data[8:8 + size])
    except (UnicodeDecodeError, ValueError) as err:
        raise DamagedSegmentError(f"unreadable header ({err})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise DamagedSegmentError("no metadata")
    return meta


class _SegmentStore:
    """The segment files of one identity's folder and the rows not yet written to them.

    Kept apart from :class:`TextEmbeddingCache` so that a ``weakref.finalize`` of the cache
    can flush it without keeping the cache alive.

    Args:
        folder: The identity's folder.
        identity: The model identity the rows belong to.
        compact_after: Merge once the folder holds more than this many small segments.
    """

    def __init__(self, folder: Path, identity: str, compact_after: int) -> None:
        self.folder = folder
        self.identity = identity
        self.compact_after = compact_after
        self.pending: dict[str, torch.Tensor] = {}  # key -> (D,) float32, not yet on disk
        self.lock = threading.RLock()
        self.pid = os.getpid()

    # -- files -------------------------------------------------------------------------

    def list_files(self) -> list[Path]:
        """The folder's segment files (temporary and set-aside files start with a dot)."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        return [self.folder / n for n in sorted(names)
                if n.endswith(".safetensors") and not n.startswith(".")]

    def read(self, path: Path) -> tuple[list[str], torch.Tensor]:
        """Read and check one segment.

        Args:
            path: The segment file.

        Returns:
            Its keys and their embeddings (N, D) float32.

        Raises:
            FileNotFoundError: The file is gone (merged by another process).
            DamagedSegmentError: The file cannot be trusted.
        """
        data = path.read_bytes()
        meta = _metadata(data)
        if meta.get("format") != FORMAT:
            raise DamagedSegmentError(f"unknown format {meta.get('format')!r}")
        if meta.get("identity") != self.identity:
            raise DamagedSegmentError(
                f"written for model identity {str(meta.get('identity'))[:16]}…, "
                f"not {self.identity[:16]}…")
        try:
            table = load(data)["embeddings"]  # (N, D)
            keys = json.loads(meta["keys"])
        except Exception as err:  # any parse error means the file is not trusted
            raise DamagedSegmentError(f"unreadable ({type(err).__name__}: {err})") from None
        if table.dtype != torch.float32 or table.dim() != 2:
            raise DamagedSegmentError(f"embeddings are {table.dtype} {tuple(table.shape)}, "
                                      "not float32 (N, D)")
        if not isinstance(keys, list) or len(keys) != table.shape[0] \
                or not all(isinstance(k, str) for k in keys):
            raise DamagedSegmentError("keys do not match the embedding rows")
        if meta.get("sha256") != _checksum(keys, table):
            raise DamagedSegmentError("checksum mismatch")
        return keys, table

    def write(self, prefix: str, keys: list[str], table: torch.Tensor) -> Path:
        """Write one segment atomically under a new unique name.

        Args:
            prefix: ``seg`` (a flush), ``base`` or ``full`` (compaction output).
            keys: The N text keys.
            table: Their embeddings (N, D) float32.

        Returns:
            The new file.
        """
        table = table.contiguous()  # (N, D)
        meta = {"format": FORMAT, "identity": self.identity, "keys": json.dumps(keys),
                "sha256": _checksum(keys, table)}
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{prefix}-{os.getpid()}-{uuid.uuid4().hex}.safetensors"
        return atomic_write_bytes(path, save({"embeddings": table}, metadata=meta))

    # -- flush and compaction -------------------------------------------------------------

    def flush(self) -> Path | None:
        """Write the pending rows as one new segment, then compact if the folder is crowded.

        Returns:
            The segment written, or ``None`` when nothing was pending.
        """
        with self.lock:
            if not self.pending:
                return None
            keys = list(self.pending)
            path = self.write("seg", keys, torch.stack([self.pending[k] for k in keys]))
            self.pending.clear()
        if len(self._small_files()) > self.compact_after:
            self.compact(blocking=False)
        return path

    def flush_at_exit(self) -> None:
        """Flush from a finaliser: only in the process that owns the rows, never raising."""
        if os.getpid() != self.pid:
            return  # a forked child must not write its parent's rows
        try:
            self.flush()
        except Exception as err:  # a cache is never worth a crash at exit
            warnings.warn(f"text cache: could not write {len(self.pending)} rows to "
                          f"{self.folder}: {err}", RuntimeWarning, stacklevel=1)

    def _small_files(self) -> list[Path]:
        return [p for p in self.list_files() if not p.name.startswith("full-")]

    def compact(self, blocking: bool = True) -> bool:
        """Merge the small segments into as few files as possible, under the folder's lock.

        The merged rows are written (atomically) before the merged segments are removed;
        segments written meanwhile by other processes are left for the next compaction.
        Damaged segments are moved aside (``.damaged-<name>``) with a warning.

        Args:
            blocking: Wait for another process's compaction; otherwise skip it.

        Returns:
            Whether a compaction ran.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        with open(self.folder / ".lock", "a+b") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                return False  # another process is compacting this folder right now
            try:
                self._compact_locked()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return True

    def _compact_locked(self) -> None:
        rows: dict[str, torch.Tensor] = {}
        merged: list[Path] = []
        for path in self._small_files():
            try:
                keys, table = self.read(path)
            except FileNotFoundError:
                continue
            except DamagedSegmentError as err:
                aside = path.with_name(f".damaged-{path.name}")
                warnings.warn(f"text cache: ignoring damaged file {path} ({err}); "
                              f"moved aside to {aside.name}", RuntimeWarning, stacklevel=3)
                os.replace(path, aside)
                continue
            rows.update(zip(keys, table, strict=True))
            merged.append(path)
        if len(merged) > 1:
            keys = list(rows)
            for start in range(0, len(keys), MAX_ROWS_PER_FILE):
                chunk = keys[start:start + MAX_ROWS_PER_FILE]
                prefix = "full" if len(chunk) == MAX_ROWS_PER_FILE else "base"
                self.write(prefix, chunk, torch.stack([rows[k] for k in chunk]))
            for path in merged:  # only now: the merged rows are safely on disk
                path.unlink(missing_ok=True)
            fsync_path(self.folder)
        now = time.time()
        for name in os.listdir(self.folder):  # temporary files of crashed writers
            path = self.folder / name
            if name.startswith(".") and name.endswith(".tmp"):
                try:
                    if now - path.stat().st_mtime > _STALE_TMP_S:
                        path.unlink()
                except FileNotFoundError:
                    pass


class TextEmbeddingCache:
    """Embeddings of texts for one text-model identity, persisted on disk as segment files.

    Args:
        root: Root folder of the cache (one sub-folder per model identity).
        identity: Hex digest naming the model's weights, tokenizer and settings; files
            recorded under another identity are never served.
        flush_every: Write the rows added so far once this many are pending.
        compact_after: Merge the folder's small segments once there are more than this.
    """

    def __init__(self, root: str | Path, identity: str, *, flush_every: int = 1024,
                 compact_after: int = 16) -> None:
        if not _IDENTITY.fullmatch(identity):
            raise ValueError(f"identity must be a lower-case hex digest, got {identity!r}")
        if flush_every < 1 or compact_after < 1:
            raise ValueError("flush_every and compact_after must be at least 1")
        self.identity = identity
        self.folder = Path(root) / identity[:32]
        self.flush_every = flush_every
        self.hits = 0
        self.misses = 0
        self._rows: dict[str, torch.Tensor] = {}  # key -> (D,) float32
        self._width: int | None = None
        self._store = _SegmentStore(self.folder, identity, compact_after)
        self._finalizer = weakref.finalize(self, self._store.flush_at_exit)
        self._load()

    def _load(self) -> None:
        """Read every trusted segment, listing the folder until a listing shows nothing new.

        A compaction writes its merged file before it removes the merged segments, so a
        segment that vanished (or that a listing taken mid-compaction missed) has its rows
        in a file that a later listing shows.
        """
        seen: set[str] = set()
        while True:
            todo = [p for p in self._store.list_files() if p.name not in seen]
            if not todo:
                return
            for path in todo:
                seen.add(path.name)
                try:
                    keys, table = self._store.read(path)
                except FileNotFoundError:
                    continue  # merged by another process: the next listing shows the merge
                except DamagedSegmentError as err:
                    warnings.warn(f"text cache: ignoring damaged file {path} ({err})",
                                  RuntimeWarning, stacklevel=3)
                    continue
                if self._width is None:
                    self._width = table.shape[1]
                elif table.shape[1] != self._width:
                    warnings.warn(f"text cache: ignoring damaged file {path} (rows of width "
                                  f"{table.shape[1]}, not {self._width})", RuntimeWarning,
                                  stacklevel=3)
                    continue
                for key, row in zip(keys, table, strict=True):
                    self._rows.setdefault(key, row)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def pending(self) -> int:
        """Number of rows stored but not yet written to disk."""
        return len(self._store.pending)

    def lookup(self, texts: Sequence[str]) -> list[torch.Tensor | None]:
        """Return the cached embedding (D,) of each text, or ``None`` where absent."""
        found = [self._rows.get(text_key(t)) for t in texts]
        hits = sum(row is not None for row in found)
        self.hits += hits
        self.misses += len(found) - hits
        return found

    def store(self, texts: Sequence[str], embeddings: torch.Tensor) -> None:
        """Add the embeddings (N, D) of ``texts``; texts already cached are left as they are.

        The rows are served at once and written at the next flush (automatic every
        ``flush_every`` rows).

        Args:
            texts: N texts.
            embeddings: Their embeddings (N, D).
        """
        table = embeddings.detach().float().cpu()  # (N, D)
        if table.dim() != 2 or table.shape[0] != len(texts):
            raise ValueError(f"expected embeddings ({len(texts)}, D), got {tuple(table.shape)}")
        if self._width is not None and table.shape[1] != self._width:
            raise ValueError(f"expected embeddings of width {self._width}, got {table.shape[1]}")
        self._width = table.shape[1]
        with self._store.lock:
            for text, row in zip(texts, table, strict=True):
                key = text_key(text)
                if key not in self._rows:
                    self._rows[key] = self._store.pending[key] = row.clone()
        if len(self._store.pending) >= self.flush_every:
            self.flush()

    def flush(self) -> Path | None:
        """Write the rows added since the last flush as one new segment file.

        Returns:
            The segment written, or ``None`` when nothing was pending.
        """
        return self._store.flush()

    def compact(self) -> bool:
        """Merge the folder's small segments now (waiting for another process's merge).

        Returns:
            Whether a compaction ran.
        """
        return self._store.compact(blocking=True)

    def close(self) -> None:
        """Flush pending rows; the cache stays usable."""
        self.flush()
