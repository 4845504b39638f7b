"""SHA-256 checksums of bytes and files: the one helper every manifest and fingerprint uses."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

_CHUNK = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``.

    Args:
        data: The bytes to hash.

    Returns:
        64 hex digits.
    """
    return hashlib.sha256(data).hexdigest()


def sha256_files(paths: Iterable[str | Path]) -> str:
    """Hex SHA-256 over the contents of several files, read in order in 1 MiB chunks.

    Args:
        paths: The files, in the order their bytes are hashed.

    Returns:
        64 hex digits (of one file's bytes when one path is given).
    """
    digest = hashlib.sha256()
    for path in paths:
        with Path(path).open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of one file's contents."""
    return sha256_files([path])
