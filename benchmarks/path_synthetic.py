"""Time the default synthetic H&E set: generation wall and CPU seconds, sizes on disk.

``python benchmarks/path_synthetic.py [--workers N] [--tiles-per-class N]`` generates the
default set (``datasets/pathology/synthetic.yaml``) into a temporary folder and prints
wall-clock and CPU seconds (this process and its workers), the split into tiles and
slides, files and megabytes. A fixed numpy reference workload is timed too, so a figure
taken on a loaded machine can be compared with one taken on a quiet one.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
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
    args = parser.parse_args()
    reference = _reference_seconds()
    with tempfile.TemporaryDirectory(prefix="path-synthetic-") as tmp:
        out = Path(tmp) / "set"
        wall, cpu = time.perf_counter(), _cpu()
        generate_archive(out, tiles_per_class=args.tiles_per_class,
                         slides_per_site=args.slides_per_site, workers=args.workers,
                         progress=False)
        wall, cpu = time.perf_counter() - wall, _cpu() - cpu
        manifest = json.loads((out / "manifest.json").read_text())
        sizes = {part: sum(p.stat().st_size for p in (out / part).rglob("*") if p.is_file())
                 for part in ("tiles", "slides")}
        counts = {part: sum(1 for p in (out / part).rglob("*") if p.is_file())
                  for part in ("tiles", "slides")}
    print(f"reference workload: {reference:.2f} CPU s")
    print(f"generation: {wall:.1f} s wall, {cpu:.1f} CPU s, workers={args.workers} "
          f"(wall: slides {manifest['seconds_slides']} s, tiles {manifest['seconds_tiles']} s)")
    for part in ("tiles", "slides"):
        print(f"{part}: {counts[part]} files, {sizes[part] / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
