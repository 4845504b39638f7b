"""Atomic file and folder writes: readers see the old version or the new one, never a part.

Files are written to a temporary file in the destination folder, flushed to disk
(fsync) and renamed over the destination (``os.replace``). Folders are written
completely under a temporary name next to the destination and then swapped in.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import tempfile
import uuid
from pathlib import Path

_AT_FDCWD, _RENAME_EXCHANGE = -100, 2


def fsync_path(path: str | Path) -> None:
    """Flush a file or a folder entry to disk (a no-op for folders where unsupported).

    Args:
        path: File or folder to flush.
    """
    flags = os.O_RDONLY | (os.O_DIRECTORY if Path(path).is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if Path(path).is_dir():
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not Path(path).is_dir():
            raise
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` so readers see the old file or the new one, never a part.

    Args:
        path: Destination file; its folder must exist.
        data: The bytes to write.

    Returns:
        The destination path.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one step (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    return renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0


def atomic_replace_dir(tmp: str | Path, final: str | Path) -> Path:
    """Move a fully written folder ``tmp`` to ``final``, replacing any old folder there.

    Every file in ``tmp`` is flushed to disk first. Where the OS can swap two folders in
    one step (Linux), readers of ``final`` always see the complete old folder or the
    complete new one; elsewhere the old folder is moved aside first, which leaves a short
    window in which ``final`` is absent. The old folder is deleted afterwards.

    Args:
        tmp: The completed temporary folder (same file system as ``final``).
        final: The destination folder.

    Returns:
        The destination path.
    """
    tmp, final = Path(tmp), Path(final)
    for path in tmp.rglob("*"):
        if path.is_file():
            fsync_path(path)
    fsync_path(tmp)
    if final.is_dir() and _exchange(tmp, final):
        old: Path | None = tmp  # the old folder now lives under the temporary name
    else:
        old = None
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.replace(final, old)
        os.replace(tmp, final)
    fsync_path(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final
