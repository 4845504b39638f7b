"""Folders a generator writes (synthetic data sets) without ever destroying data that is not ours.

The rules every domain's synthetic generator follows (radiology and pathology use this
module, remote sensing's generator too):

- the output must be missing, empty, or — with ``overwrite`` — a complete folder written
  earlier by the same generator (recognised by its layout and a ``manifest.json`` naming
  the generator, written last); anything else is refused before anything is written;
- the new folder is built in a hidden sibling and swapped in whole
  (:func:`core.atomic.atomic_replace_dir`), so an interruption leaves the old contents;
- a cached default set is generated once under an exclusive file lock, so concurrent
  callers wait and reuse it; an incomplete set left by a crash is regenerated, but only
  if it holds nothing outside the generator's layout.

A generator supplies ``problem(folder) -> str | None`` (why the folder is not a complete
set of its own, None when it is) and ``stray(folder) -> list[str]`` (entries outside its
layout).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.atomic import atomic_replace_dir

ProblemFn = Callable[[Path], "str | None"]


class UnsafeOutputError(ValueError):
    """The output folder is refused: writing there could destroy data that is not ours."""


def manifest_problem(folder: Path, generator: str) -> str | None:
    """Why ``folder/manifest.json`` is not a manifest of ``generator`` (None when it is)."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except FileNotFoundError:
        return "manifest.json missing"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return "manifest.json is not readable JSON"
    if not isinstance(manifest, dict) or manifest.get("generator") != generator:
        return "manifest.json was not written by this generator"
    return None


def generated_set_problem(folder: str | Path, stray_entries: Callable[[Path], list[str]],
                          layout: Iterable[str], generator: str) -> str | None:
    """Why ``folder`` is not a complete set written by ``generator`` (None when it is).

    A set of ours holds nothing but its layout (``stray_entries`` lists the rest), every
    entry of ``layout``, and a ``manifest.json`` naming the generator.

    Args:
        folder: The folder to inspect (read only).
        stray_entries: Lists the entries of a folder that a set of ours would not hold.
        layout: The names every complete set holds.
        generator: The generator's name, as its manifests record it.

    Returns:
        None for a complete set of ours, else a short reason.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return "not a folder"
    stray = stray_entries(folder)
    if stray:
        return f"it holds {', '.join(stray[:3])}" + (f" and {len(stray) - 3} more"
                                                      if len(stray) > 3 else "")
    missing = [name for name in layout if not (folder / name).exists()]
    if missing:
        return f"{', '.join(missing)} missing"
    return manifest_problem(folder, generator)


def check_destination(out: Path, overwrite: bool, problem: ProblemFn, generator: str,
                      noun: str = "data set") -> bool:
    """Refuse a destination whose contents could be lost; read only.

    Args:
        out: The folder asked for.
        overwrite: Whether a complete folder of this generator may be replaced.
        problem: Why a folder is not a complete set of this generator (None when it is).
        generator: The generator's name, for messages.
        noun: What the generator writes, for messages (``data set``, ``archive``).

    Returns:
        Whether ``out`` holds a set of ours that will be replaced.

    Raises:
        UnsafeOutputError: ``out`` is a file, a non-empty folder that is not ours, or ours
            without ``overwrite``. Nothing is changed.
    """
    if not out.exists() and not out.is_symlink():
        return False
    if not out.is_dir():
        raise UnsafeOutputError(f"{out} exists and is not a folder; choose an empty or new "
                                f"folder")
    if not any(out.iterdir()):
        return False
    reason = problem(out)
    article = "an" if noun[:1] in "aeiou" else "a"
    if reason is not None:
        raise UnsafeOutputError(
            f"refusing to write into {out}: the folder is not empty and is not {article} "
            f"{noun} written by {generator} ({reason}); choose an empty or new folder "
            f"(--overwrite only replaces {article} {noun} of this generator). Nothing was "
            f"changed.")
    if not overwrite:
        raise UnsafeOutputError(
            f"{out} already holds a synthetic {noun}; pass --overwrite (overwrite=True) to "
            f"replace it, or choose an empty or new folder. Nothing was changed.")
    return True


def write_generated(out: str | Path, build: Callable[[Path], Any], problem: ProblemFn,
                    generator: str, overwrite: bool = False, noun: str = "data set") -> Path:
    """Build a generated folder in a hidden sibling and swap it into ``out``.

    Args:
        out: The destination (missing, empty, or with ``overwrite`` a set of ours).
        build: Fills the folder it is given (writing ``manifest.json`` last).
        problem: See :func:`check_destination`.
        generator: The generator's name.
        overwrite: Replace a complete set of this generator.
        noun: What the generator writes, for messages (see :func:`check_destination`).

    Returns:
        ``out``.
    """
    out = Path(out)
    target = out.resolve() if out.is_symlink() else out  # a link: write where it points
    check_destination(target, overwrite, problem, generator, noun)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        build(tmp)
        # Check again: the folder may have changed while the set was generated.
        if not check_destination(target, overwrite, problem, generator, noun) \
                and target.is_dir():
            try:
                target.rmdir()  # an empty folder; fails, deleting nothing, if no longer empty
            except OSError as error:
                raise UnsafeOutputError(f"{target} stopped being empty during generation; "
                                        f"nothing in it was changed") from error
        atomic_replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


@contextmanager
def exclusive_lock(path: Path, waiting: str | None = None) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if missing, never deleted).

    Args:
        path: The lock file.
        waiting: Printed when another process holds the lock (None: wait silently).
    """
    with open(path, "a+b") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if waiting is not None:
                from rich.console import Console
                Console().print(waiting)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def manifest_matches(folder: Path, settings: Mapping[str, Any]) -> bool:
    """Whether ``folder`` holds a complete set whose manifest records ``settings``."""
    try:
        saved = json.loads((folder / "manifest.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(saved, dict) and all(saved.get(k) == v for k, v in settings.items())


def cached_generated(folder: Path, settings: Mapping[str, Any],
                     generate: Callable[[Path], Path], problem: ProblemFn,
                     stray: Callable[[Path], list[str]], generator: str, *,
                     cache_name: str = "synthetic-data", announce_wait: bool = False) -> Path:
    """A cached generated set: reused while its manifest matches, else generated under a lock.

    Args:
        folder: Where the cached set lives.
        settings: Manifest entries that must match (parameters and version).
        generate: Writes the set into the folder it is given, replacing a set of ours.
        problem: See :func:`check_destination`.
        stray: Entries of a folder outside the generator's layout.
        generator: The generator's name, for messages.
        cache_name: What the cache is called in messages (``the <cache_name> cache``).
        announce_wait: Print a line when another process is generating the set.

    Returns:
        ``folder``.

    Raises:
        UnsafeOutputError: ``folder`` holds something the generator did not write.
    """
    if manifest_matches(folder, settings):  # the manifest is written last: a match is complete
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    waiting = f"Waiting for another process writing {folder}" if announce_wait else None
    with exclusive_lock(folder.parent / f"{folder.name}.lock", waiting):
        if manifest_matches(folder, settings):  # generated while we waited
            return folder
        for pattern in (f".{folder.name}.partial-*", f".{folder.name}.old-*"):
            for leftover in folder.parent.glob(pattern):
                if leftover.is_dir() and not leftover.is_symlink():
                    shutil.rmtree(leftover, ignore_errors=True)
        if (folder.exists() or folder.is_symlink()) and problem(folder) is not None:
            if folder.is_symlink() or not folder.is_dir() or stray(folder):
                raise UnsafeOutputError(
                    f"{folder} is in the {cache_name} cache but holds data not written by "
                    f"{generator}; move it away (nothing was changed)")
            shutil.rmtree(folder)  # an incomplete set of ours, left by a crash
        return generate(folder)
