"""The synthetic H&E set: captioned tiles of nine tissue classes and pyramidal slides.

Layout (read by ``domains.pathology.caption_table`` / ``archives``)::

    ROOT/tiles/<CODE>/<site>-<n>.png  RGB tiles, one folder per NCT-CRC-HE class code
    ROOT/tiles.csv                    path (relative), caption, label (class name), code,
                                      site, split
    ROOT/slides/<slide_id>.tiff       pyramidal tiled TIFF (OpenSlide opens it), mpp tags
    ROOT/slides.csv                   slide_id, path, label, site, split, tumour_boxes
                                      (JSON [[x0, y0, x1, y1], ...], level-0 px), width,
                                      height, mpp
    ROOT/dataset.json                 version, seed, sites per split and their stains,
                                      counts, sizes, what the slide labels mean
    ROOT/manifest.json                generator name, parameters, counts; written last

Slide labels are card class names: ``colorectal adenocarcinoma epithelium`` for a slide
holding tumour (its boxes give the tumours' extent), ``normal colon mucosa`` for a slide
without (its boxes are ``[]``); a slide zero-shot classifier asks "is there tumour".

Tiles are painted as stain concentrations (:mod:`~domains.pathology.synthetic.tissue`),
made as untidy as real tiles -- mixed classes, intermediate morphology, focus, noise,
JPEG, illumination (:mod:`~domains.pathology.synthetic.variation`),
captioned from the knowledge card (:mod:`~domains.pathology.synthetic.captions`) and
rendered with their site's stain (:mod:`~domains.pathology.synthetic.optics`); sizes,
sites and splits come from ``datasets/pathology/synthetic.yaml``. Splits are by site, so
the test sites' stain is never seen in training. Every tile and slide has its own seed
(from the set's seed, its site, class and index), so the set is the same whatever the
number of worker processes. The output folder is never one we did not create
(:mod:`core.generated`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from core.atomic import atomic_write_bytes
from core.generated import cached_generated, generated_set_problem, write_generated
from core.resources import cache_root
from domains.pathology import cards
from domains.pathology.synthetic.captions import caption
from domains.pathology.synthetic.optics import Site, site, synthetic_card
from domains.pathology.synthetic.slide_maker import compose_slide
from domains.pathology.synthetic.slide_writer import write_pyramidal_tiff
from domains.pathology.synthetic.variation import acquire, paint_tile

GENERATOR_NAME = "mosaic-vlm pathology synthetic"
GENERATOR_VERSION = 3
TUMOUR_LABEL = "colorectal adenocarcinoma epithelium"
NORMAL_LABEL = "normal colon mucosa"
SPLITS = ("train", "val", "test")
_LAYOUT = ("tiles", "slides", "tiles.csv", "slides.csv", "dataset.json", "manifest.json")


def default_settings() -> dict[str, Any]:
    """The default generator parameters, from ``datasets/pathology/synthetic.yaml``."""
    card = synthetic_card()
    return {"tiles_per_class": int(card["tiles_per_class_per_site"]),
            "tile_size": int(card["tile_size"]),
            "slides_per_site": {k: int(v) for k, v in card["slides_per_site"].items()},
            "slide_size": [int(v) for v in card["slide_size"]],
            "splits": {split: list(card["splits"].get(split) or []) for split in SPLITS},
            "seed": 0}


def _seed(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


def _make_tile(job: tuple[str, int, str, int, int, int, Site, float, str, int, str]
               ) -> dict[str, Any]:
    """Paint, render and write one tile; returns its tiles.csv row."""
    code, class_index, site_name, site_index, n, seed, stain, jitter, root, size, split = job
    rng = _seed(seed, 1, site_index, class_index, n)
    folder = Path(root)
    rgb = acquire(paint_tile(code, (size, size), rng), stain, rng, jitter)
    rel = f"tiles/{code}/{site_name}-{n:04d}.png"
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="PNG", compress_level=1)
    (folder / rel).write_bytes(buffer.getvalue())
    return {"path": rel, "caption": caption(code, rng), "label": cards.tissue_classes()[
        class_index], "code": code, "site": site_name, "split": split}


def _make_slide(job: tuple[str, int, int, bool, int, Site, float, list[int], str, str,
                           dict[str, Any]]) -> dict[str, Any]:
    """Compose and write one pyramidal slide; returns its slides.csv row."""
    slide_id, site_index, k, tumour, seed, stain, jitter, size, root, split, card = job
    rng = _seed(seed, 2, site_index, k)
    stain = dataclasses.replace(  # the slide's own staining run
        stain, h_strength=stain.h_strength * (1 + jitter * rng.standard_normal()),
        e_strength=stain.e_strength * (1 + jitter * rng.standard_normal()))
    slide = compose_slide((size[0], size[1]), tumour, stain, rng)
    rel = f"slides/{slide_id}.tiff"
    write_pyramidal_tiff(Path(root) / rel, slide.rgb, mpp=float(card["mpp"]),
                         tile=int(card["slide_tile"]), levels=int(card["slide_levels"]),
                         description=f"mosaic-vlm synthetic H&E slide {slide_id}")
    return {"slide_id": slide_id, "path": rel,
            "label": TUMOUR_LABEL if tumour else NORMAL_LABEL, "site": stain.name,
            "split": split, "tumour_boxes": json.dumps(slide.tumour_boxes),
            "width": size[0], "height": size[1], "mpp": float(card["mpp"]),
            "tissue_fraction": round(float(slide.tissue.mean()), 4)}


def _jobs(params: dict[str, Any], root: Path, card: dict[str, Any]
          ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    codes = cards.class_codes()
    tiles, slides = [], []
    order = [(split, name) for split in SPLITS for name in params["splits"][split]]
    for site_index, (split, name) in enumerate(order):
        stain = site(name, card["sites"])
        for class_index, code in enumerate(codes):
            tiles += [(code, class_index, name, site_index, n, params["seed"], stain,
                       float(card["tile_stain_jitter"]), str(root), params["tile_size"],
                       split) for n in range(params["tiles_per_class"])]
        for k in range(int(params["slides_per_site"].get(split, 0))):
            slides.append((f"{name}-slide{k:02d}", site_index, k, (k + site_index) % 2 == 0,
                           params["seed"], stain, float(card["tile_stain_jitter"]),
                           params["slide_size"], str(root), split, card))
    return tiles, slides


def _build(root: Path, params: dict[str, Any], workers: int | None, progress: bool) -> None:
    """Write tiles, slides, the tables, dataset.json, then (last) the manifest."""
    started, cpu = time.perf_counter(), time.process_time()
    card = synthetic_card()
    for code in cards.class_codes():
        (root / "tiles" / code).mkdir(parents=True)
    (root / "slides").mkdir()
    tile_jobs, slide_jobs = _jobs(params, root, card)
    workers = workers or min(os.cpu_count() or 1, 4)
    phases = {}
    with ProcessPoolExecutor(max_workers=workers) if workers > 1 else nullcontext() as pool:
        for phase, make, jobs, chunk in (("slides", _make_slide, slide_jobs, 1),
                                         ("tiles", _make_tile, tile_jobs, 16)):
            begun = time.perf_counter()
            rows = (list(pool.map(make, jobs, chunksize=chunk)) if pool is not None
                    else [make(job) for job in jobs])
            phases[phase] = (rows, round(time.perf_counter() - begun, 1))
    (slide_rows, slide_seconds), (tile_rows, tile_seconds) = phases["slides"], phases["tiles"]
    tiles = pd.DataFrame(tile_rows, columns=["path", "caption", "label", "code", "site",
                                             "split"])
    slides = pd.DataFrame(slide_rows, columns=["slide_id", "path", "label", "site", "split",
                                               "tumour_boxes", "width", "height", "mpp",
                                               "tissue_fraction"])
    atomic_write_bytes(root / "tiles.csv", tiles.to_csv(index=False).encode())
    atomic_write_bytes(root / "slides.csv", slides.to_csv(index=False).encode())
    seconds = time.perf_counter() - started
    counts = {"tiles": len(tiles), "slides": len(slides),
              "tiles_per_split": tiles["split"].value_counts().to_dict(),
              "slides_per_split": slides["split"].value_counts().to_dict(),
              "tumour_slides": int((slides["label"] == TUMOUR_LABEL).sum())}
    used = params["splits"]
    description = {
        "generator": GENERATOR_NAME, "version": GENERATOR_VERSION, "seed": params["seed"],
        "sites": used, "stains": {name: dataclasses.asdict(site(name, card["sites"]))
                                  for names in used.values() for name in names},
        "mpp": card["mpp"], "tile_size": params["tile_size"],
        "slide_size": params["slide_size"], "classes": dict(zip(
            cards.class_codes(), cards.tissue_classes(), strict=True)),
        "slide_labels": {TUMOUR_LABEL: "the slide holds tumour (boxes give its extent)",
                         NORMAL_LABEL: "no tumour on the slide"}, **counts}
    atomic_write_bytes(root / "dataset.json", json.dumps(description, indent=2).encode())
    manifest = {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, **params, **counts,
                "workers": workers, "seconds": round(seconds, 1),
                "seconds_slides": slide_seconds, "seconds_tiles": tile_seconds,
                "cpu_seconds_main_process": round(time.process_time() - cpu, 1),
                "created": datetime.now(UTC).isoformat(timespec="seconds")}
    atomic_write_bytes(root / "manifest.json", json.dumps(manifest, indent=2).encode())
    if progress:
        from rich.console import Console

        Console().print(f"[bold]Synthetic H&E[/]: {len(tiles)} tiles and {len(slides)} slides "
                        f"in {seconds:.0f} s ({workers} workers); tiles per split "
                        f"{counts['tiles_per_split']}")


def stray_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` outside the generator's layout (relative names, sorted)."""
    stray: list[str] = []
    codes = set(cards.class_codes())
    for entry in os.scandir(folder):
        if entry.name == "tiles" and entry.is_dir(follow_symlinks=False):
            for sub in os.scandir(entry.path):
                if sub.name not in codes or not sub.is_dir(follow_symlinks=False):
                    stray.append(f"tiles/{sub.name}")
                    continue
                stray += [f"tiles/{sub.name}/{f.name}" for f in os.scandir(sub.path)
                          if not f.is_file(follow_symlinks=False) or not f.name.endswith(".png")]
        elif entry.name == "slides" and entry.is_dir(follow_symlinks=False):
            stray += [f"slides/{f.name}" for f in os.scandir(entry.path)
                      if not f.is_file(follow_symlinks=False) or not f.name.endswith(".tiff")]
        elif not (entry.is_file(follow_symlinks=False) and (
                entry.name in _LAYOUT or any(entry.name.startswith(f".{n}.") for n in _LAYOUT))):
            stray.append(entry.name)
    return sorted(stray)


def archive_problem(folder: str | Path) -> str | None:
    """Why ``folder`` is not a complete set written by this generator (None when it is)."""
    return generated_set_problem(folder, stray_entries, _LAYOUT, GENERATOR_NAME)


def resolve_settings(tiles_per_class: int | None = None, tile_size: int | None = None,
                     slides_per_site: int | dict[str, int] | None = None,
                     slide_size: tuple[int, int] | list[int] | None = None,
                     splits: dict[str, list[str]] | None = None, seed: int = 0
                     ) -> dict[str, Any]:
    """The generator's parameters: the card's defaults with these overrides, checked.

    Args:
        tiles_per_class: Tiles per class and site (default: the card's).
        tile_size: Tile side in pixels (default: the card's, 224).
        slides_per_site: Slides per site, one number or per split (default: the card's).
        slide_size: Slide (width, height) at level 0, multiples of 16 (default: the card's).
        splits: Sites of each split (``{"train": ["site0"], "test": ["site5"]}``; default:
            the card's); a site may be in one split only.
        seed: Random seed.

    Returns:
        A JSON-able dict (what the manifest records), every split present.

    Raises:
        ValueError: A size is out of range or a site unknown or in two splits.
    """
    params = default_settings()
    if tiles_per_class is not None:
        params["tiles_per_class"] = int(tiles_per_class)
    if tile_size is not None:
        params["tile_size"] = int(tile_size)
    if slides_per_site is not None:
        params["slides_per_site"] = ({s: int(slides_per_site) for s in SPLITS}
                                     if isinstance(slides_per_site, int)
                                     else {s: int(slides_per_site.get(s, 0)) for s in SPLITS})
    if slide_size is not None:
        params["slide_size"] = [int(v) for v in slide_size]
    if splits is not None:
        params["splits"] = {s: [str(name) for name in splits.get(s) or []] for s in SPLITS}
    params["seed"] = int(seed)
    if params["tiles_per_class"] < 1 or params["tile_size"] < 32:
        raise ValueError(f"need tiles_per_class >= 1 and tile_size >= 32, got "
                         f"{params['tiles_per_class']}, {params['tile_size']}")
    width, height = params["slide_size"]
    if width % 16 or height % 16 or min(width, height) < 256:
        raise ValueError(f"slide_size must be multiples of 16 and at least 256 px, got "
                         f"{params['slide_size']}")
    named = [name for names in params["splits"].values() for name in names]
    known = synthetic_card()["sites"]
    if not named or len(named) != len(set(named)) or not set(named) <= set(known):
        raise ValueError(f"splits must name each site once, from {', '.join(known)}; got "
                         f"{params['splits']}")
    return params


def generate_archive(out: str | Path, tiles_per_class: int | None = None,
                     tile_size: int | None = None,
                     slides_per_site: int | dict[str, int] | None = None,
                     slide_size: tuple[int, int] | list[int] | None = None,
                     splits: dict[str, list[str]] | None = None, seed: int = 0,
                     workers: int | None = None, progress: bool = True,
                     overwrite: bool = False) -> Path:
    """Generate the synthetic H&E set (deterministic for a seed and parameters).

    Args:
        out: Folder: missing, empty, or (with ``overwrite``) a set of this generator.
        tiles_per_class, tile_size, slides_per_site, slide_size, splits, seed: See
            :func:`resolve_settings` (defaults from ``datasets/pathology/synthetic.yaml``).
        workers: Processes (default: the machine's cores, at most 4); the output does not
            depend on it.
        progress: Print a summary.
        overwrite: Replace ``out`` when it already holds a set of this generator.

    Returns:
        ``out``.

    Raises:
        core.generated.UnsafeOutputError: ``out`` holds data this generator did not write,
            or a set of ours without ``overwrite``; nothing in it is changed.
        ValueError: A size is out of range or a site unknown.
    """
    params = {**resolve_settings(tiles_per_class, tile_size, slides_per_site, slide_size,
                                 splits, seed), "version": GENERATOR_VERSION}
    return write_generated(out, lambda root: _build(root, params, workers, progress),
                           archive_problem, GENERATOR_NAME, overwrite, noun="archive")


def default_archive(cache_dir: str | Path | None = None, *, workers: int | None = None,
                    progress: bool = True, **params: Any) -> Path:
    """The default synthetic set under ``$MOSAIC_VLM_CACHE/synthetic``, generated once.

    Args:
        cache_dir: Parent folder (default: ``core.resources.cache_root() / "synthetic"``).
        workers: Processes used when the set has to be generated.
        progress: Print a summary when generating.
        **params: :func:`resolve_settings` parameters overriding the card's defaults.

    Returns:
        The set's folder.
    """
    settings = resolve_settings(**params)
    tag = "-".join(f"{k}{v}" for k, v in sorted(settings.items())
                   if k not in ("slides_per_site", "slide_size", "splits"))
    slides = "".join(str(settings["slides_per_site"].get(s, 0)) for s in SPLITS)
    sites = "".join(str(len(settings["splits"].get(s) or [])) for s in SPLITS)
    name = (f"pathology-v{GENERATOR_VERSION}-{tag}-slides{slides}-"
            f"{settings['slide_size'][0]}x{settings['slide_size'][1]}-sites{sites}")
    folder = Path(cache_dir or cache_root() / "synthetic") / name
    return cached_generated(
        folder, {"generator": GENERATOR_NAME, "version": GENERATOR_VERSION, **settings},
        lambda target: generate_archive(target, **settings, workers=workers,
                                        progress=progress, overwrite=True),
        archive_problem, stray_entries, GENERATOR_NAME, announce_wait=True)
