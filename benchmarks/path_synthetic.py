"""Time the default synthetic H&E set: generation wall and CPU seconds, sizes on disk.

``python benchmarks/path_synthetic.py [--workers N] [--tiles-per-class N]`` generates the
default set (``datasets/pathology/synthetic.yaml``) into a temporary folder and prints
wall-clock and CPU seconds (this process and its workers), the split into tiles and
slides, files and megabytes. A fixed numpy reference workload is timed too, so a figure
taken on a loaded machine can be compared with one taken on a quiet one.

``--separability`` also prints how hard the tiles are: a nearest class centroid on colour
and texture statistics (mean and std of optical density per channel, white and dark
fractions, edge strength; z-scored on the training sites) fitted on the training sites and
scored on the test sites (unseen stain), beside chance (1/9). Generator v2: 0.744 (96 px,
15 tiles per class and site, slides 0); v3 is meant to sit near 0.5 so that a trained
model lands clearly below 1.000.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy import ndimage

from domains.pathology.synthetic import generate_archive


def _reference_seconds() -> float:
    """CPU seconds of a fixed workload (20 x: 224^2 normals, a Gaussian blur, an exp)."""
    rng = np.random.default_rng(0)
    started = time.process_time()
    for _ in range(20):
        a = rng.standard_normal((224, 224, 3), dtype=np.float32)
        np.exp(ndimage.gaussian_filter(a, (1, 1, 0)))
    return time.process_time() - started


def _features(root: Path, paths: list[str]) -> np.ndarray:
    """(N, 9) colour / texture statistics of the tiles (optical density against white)."""
    rows = []
    for path in paths:
        rgb = np.asarray(Image.open(root / path).convert("RGB"), dtype=np.float64)
        od = -np.log10(np.clip(rgb, 1, 255) / 255.0)  # (H, W, 3)
        total = od.sum(-1)
        gy, gx = np.gradient(total)
        rows.append(np.r_[od.mean((0, 1)), od.std((0, 1)), (total < 0.2).mean(),
                          (total > 1.2).mean(), np.hypot(gx, gy).mean()])
    return np.stack(rows)


def separability(root: Path) -> tuple[float, float]:
    """Nearest class centroid accuracy on the training sites and on the test sites."""
    tiles = pd.read_csv(root / "tiles.csv", keep_default_na=False)
    features = _features(root, list(tiles["path"]))
    codes, train = tiles["code"].to_numpy(), (tiles["split"] == "train").to_numpy()
    z = (features - features[train].mean(0)) / (features[train].std(0) + 1e-9)
    names = sorted(set(codes))
    centroids = np.stack([z[train & (codes == c)].mean(0) for c in names])  # (9, F)
    predicted = np.array(names)[np.argmin(((z[:, None] - centroids[None]) ** 2).sum(-1), 1)]
    test = (tiles["split"] == "test").to_numpy()
    return (float((predicted[train] == codes[train]).mean()),
            float((predicted[test] == codes[test]).mean()))


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    """Generate the default set once and print the timings and sizes."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--tiles-per-class", type=int, default=None)
    parser.add_argument("--slides-per-site", type=int, default=None)
    parser.add_argument("--tile-size", type=int, default=None)
    parser.add_argument("--separability", action="store_true",
                        help="also print the nearest-centroid accuracy (train/test sites)")
    args = parser.parse_args()
    reference = _reference_seconds()
    with tempfile.TemporaryDirectory(prefix="path-synthetic-") as tmp:
        out = Path(tmp) / "set"
        wall, cpu = time.perf_counter(), _cpu()
        generate_archive(out, tiles_per_class=args.tiles_per_class, tile_size=args.tile_size,
                         slides_per_site=args.slides_per_site, workers=args.workers,
                         progress=False)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        manifest = json.loads((out / "manifest.json").read_text())
        sizes = {part: sum(p.stat().st_size for p in (out / part).rglob("*") if p.is_file())
                 for part in ("tiles", "slides")}
        counts = {part: sum(1 for p in (out / part).rglob("*") if p.is_file())
                  for part in ("tiles", "slides")}
        separable = separability(out) if args.separability else None
    print(f"reference workload: {reference:.2f} CPU s")
    print(f"generation: {wall:.1f} s wall, {cpu:.1f} CPU s, workers={args.workers} "
          f"(wall: slides {manifest['seconds_slides']} s, tiles {manifest['seconds_tiles']} s)")
    for part in ("tiles", "slides"):
        print(f"{part}: {counts[part]} files, {sizes[part] / 1e6:.0f} MB")
    if separable is not None:
        print(f"nearest class centroid: train sites {separable[0]:.3f}, test sites "
              f"{separable[1]:.3f} (chance {1 / 9:.3f})")


if __name__ == "__main__":
    main()
