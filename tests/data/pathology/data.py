#!/usr/bin/env python3
"""Build tiny pathology archives on the fly (into a test's ``tmp_path``), in real layouts.

Nothing is committed but this script: every test writes what it needs, so fixtures never
go stale against the loaders. What it builds:

- H&E-like tiles mixed by Beer-Lambert from known stain vectors (:func:`he_tile`):
  haematoxylin-rich nuclei on an eosin background, per-class nucleus density;
- :func:`write_nct_folder` — the NCT-CRC-HE-100K layout: ``ROOT/<CODE>/<CODE>-<n>.tif``;
- :func:`write_caption_table` — tiles + ``captions.csv`` in Quilt-1M column names
  (``image_path, caption, label, site, split, slide_id``) with codes, names, synonyms
  and an unknown label;
- :func:`write_synthetic_like` — the synthetic set's ``tiles/<CODE>/<site>-<n>.png``,
  ``tiles.csv`` and ``dataset.json``, splits by site;
- :func:`write_bad_tiles` — a truncated PNG, a 1-pixel image, a CMYK JPEG, a grey-scale
  PNG and a non-image ``.tif``, plus accepted oddities (RGBA PNG, 16-bit RGB TIFF);
- :func:`write_slide` — a pyramidal tiled TIFF (P1's
  ``domains.pathology.synthetic.slide_writer.write_pyramidal_tiff``) with tissue discs of
  known area on a white background; :func:`write_bad_slides` — garbage bytes named
  ``.tiff`` and a truncated TIFF.

Run ``python tests/data/pathology/data.py OUT`` to write them all into ``OUT`` for a look.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image

ROOT = Path(__file__).resolve().parents[3]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
from domains.pathology.synthetic.slide_writer import write_pyramidal_tiff  # noqa: E402

CODES = ("ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM")
#: H&E optical densities (rows H, E; columns R, G, B), unit length: Macenko's reference
#: vectors (MONAI's ``NormalizeHEStains`` default), whose pure-eosin pixels pass Macenko's
#: all-channel transparency threshold (Ruifrok's eosin, red OD 0.07, would not).
HE_STAINS = np.array([[0.5626, 0.7201, 0.4062], [0.2159, 0.8012, 0.5581]])
HE_STAINS = HE_STAINS / np.linalg.norm(HE_STAINS, axis=1, keepdims=True)
#: Transmitted light intensity of the fixtures (MONAI's Macenko default).
LIGHT = 240.0


def concentrations(seed: int, size: int, nuclei: int = 12) -> np.ndarray:
    """(2, H, W) haematoxylin and eosin concentrations: round nuclei on eosin stroma."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    h = np.zeros((size, size))
    for _ in range(nuclei):
        cy, cx, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.5, size / 8)
        h += 1.2 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
    e = 0.5 + 0.3 * np.sin(x / 3.0 + rng.uniform(0, 6)) ** 2 + rng.uniform(0, 0.2, (size, size))
    return np.stack([h, e])


def mix(conc: np.ndarray, stains: np.ndarray = HE_STAINS, light: float = LIGHT) -> np.ndarray:
    """(H, W, 3) uint8 RGB from (2, H, W) concentrations and (2, 3) stain vectors.

    Beer-Lambert as MONAI's Macenko code inverts it: ``I + 1 = light * exp(-OD)``.
    """
    od = np.einsum("khw,kc->hwc", conc, stains)                   # (H, W, 3)
    return np.clip(np.round(light * np.exp(-od) - 1.0), 0, 255).astype(np.uint8)


def he_tile(seed: int, size: int = 32, nuclei: int = 12,
            stains: np.ndarray = HE_STAINS) -> np.ndarray:
    """(H, W, 3) uint8 H&E-like tile."""
    return mix(concentrations(seed, size, nuclei), stains)


def write_nct_folder(root: Path, per_class: int = 2, size: int = 32,
                     codes: tuple[str, ...] = CODES) -> Path:
    """``ROOT/<CODE>/<CODE>-<n>.tif`` RGB tiles (the NCT-CRC-HE-100K layout)."""
    for k, code in enumerate(codes):
        (root / code).mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            tifffile.imwrite(root / code / f"{code}-{n:04d}.tif",
                             he_tile(100 * k + n, size, nuclei=3 + 3 * k), photometric="rgb")
    return root


def write_caption_table(root: Path, size: int = 32) -> Path:
    """Tiles + ``captions.csv`` in Quilt-1M's column names; returns the CSV."""
    rows = [  # image_path, caption, label, site, split, slide_id
        ("img/a.png", "Sheets of adipocytes with thin membranes.", "ADI", "s1", "train", "sl1"),
        ("img/b.png", "Glands lined by atypical columnar cells.", "tumor epithelium", "s1",
         "train", "sl1"),
        ("img/c.png", "Dense lymphoid aggregate.", "lymphocytes", "s2", "valid", "sl2"),
        ("img/d.png", "Pools of extracellular mucin.", "MUC", "s3", "test", "sl3"),
        ("img/e.png", "A fragment of unspecified tissue.", "granuloma", "s3", "test", "sl3"),
        ("img/f.png", "", "", "s3", "test", "sl3"),          # neither caption nor label
    ]
    (root / "img").mkdir(parents=True, exist_ok=True)
    for k, row in enumerate(rows):
        Image.fromarray(he_tile(k, size)).save(root / row[0])
    table = root / "captions.csv"
    with table.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image_path", "caption", "label", "site", "split", "slide_id"])
        writer.writerows(rows)
    return table


def write_synthetic_like(root: Path, sites: dict[str, str] | None = None, per_site: int = 1,
                         size: int = 32) -> Path:
    """The synthetic layout: ``tiles/<CODE>/<site>-<n>.png``, ``tiles.csv``, ``dataset.json``."""
    sites = sites or {"siteA": "train", "siteB": "val", "siteC": "test"}
    rows = []
    for k, code in enumerate(CODES):
        for site, split in sites.items():
            for n in range(per_site):
                relative = f"tiles/{code}/{site}-{n}.png"
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(he_tile(10 * k + n, size)).save(root / relative)
                rows.append({"path": relative, "caption": f"H&E tile, {code.lower()} tissue.",
                             "label": code, "site": site, "split": split})
    with (root / "tiles.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["path", "caption", "label", "site", "split"])
        writer.writeheader()
        writer.writerows(rows)
    (root / "dataset.json").write_text(json.dumps({"generator": "fixture", "seed": 0}))
    return root


def write_bad_tiles(folder: Path, size: int = 32) -> dict[str, Path]:
    """Bad and odd tiles; returns name -> file (``good`` is a plain RGB PNG)."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {name: folder / f"{name}{suffix}" for name, suffix in [
        ("good", ".png"), ("truncated", ".png"), ("one_pixel", ".png"), ("cmyk", ".jpg"),
        ("grey", ".png"), ("not_an_image", ".tif"), ("rgba", ".png"), ("rgb16", ".tif")]}
    tile = he_tile(7, size)
    Image.fromarray(tile).save(files["good"])
    Image.fromarray(he_tile(8, size)).save(files["truncated"])
    data = files["truncated"].read_bytes()
    files["truncated"].write_bytes(data[: len(data) // 2])
    Image.fromarray(tile[:1, :1]).save(files["one_pixel"])
    Image.fromarray(tile).convert("CMYK").save(files["cmyk"], quality=95)
    Image.fromarray(tile).convert("L").save(files["grey"])
    files["not_an_image"].write_bytes(b"this is not a TIFF file\n" * 8)
    Image.fromarray(np.dstack([tile, np.full(tile.shape[:2], 255, np.uint8)])).save(files["rgba"])
    tifffile.imwrite(files["rgb16"], tile.astype(np.uint16) * 257, photometric="rgb")
    return files


def slide_image(height: int = 1024, width: int = 1536,
                discs: tuple[tuple[int, int, int], ...] = ((300, 400, 200), (700, 1100, 260)),
                seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 slide with H&E tissue discs on white glass, and its tissue mask."""
    y, x = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=bool)
    for cy, cx, r in discs:
        mask |= (y - cy) ** 2 + (x - cx) ** 2 < r * r
    rng = np.random.default_rng(seed)
    tissue = mix(np.stack([0.6 * rng.random((height, width)) ** 4 * 3,
                           0.5 + 0.3 * rng.random((height, width))]))
    glass = np.clip(rng.normal(242, 2, (height, width, 3)), 0, 255).astype(np.uint8)
    return np.where(mask[..., None], tissue, glass), mask


def write_slide(path: Path, mpp: float = 0.25, levels: int = 3, **image: object) -> np.ndarray:
    """A pyramidal tiled TIFF slide (level-0 ``mpp``); returns its level-0 tissue mask."""
    rgb, mask = slide_image(**image)  # type: ignore[arg-type]
    path.parent.mkdir(parents=True, exist_ok=True)
    write_pyramidal_tiff(path, rgb, mpp=mpp, tile=256, levels=levels)
    return mask


def write_bad_slides(folder: Path) -> dict[str, Path]:
    """Garbage bytes named ``.tiff`` and a TIFF cut in half; returns name -> file."""
    folder.mkdir(parents=True, exist_ok=True)
    garbage, truncated = folder / "garbage.tiff", folder / "truncated.tiff"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    write_slide(truncated, height=512, width=512, discs=((256, 256, 200),))
    data = truncated.read_bytes()
    truncated.write_bytes(data[: len(data) // 3])
    return {"garbage": garbage, "truncated": truncated}


if __name__ == "__main__":
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "pathology-fixtures")
    write_nct_folder(out / "nct")
    write_caption_table(out / "captions")
    write_synthetic_like(out / "synthetic")
    write_bad_tiles(out / "bad_tiles")
    write_slide(out / "slides" / "slide.tiff")
    write_bad_slides(out / "bad_slides")
    print(f"wrote {out}")
