"""`python -m domains.pathology.synthetic --out DIR [--tiles-per-class N] [--seed S] [--overwrite]`.

``DIR`` must be missing, empty, or (with ``--overwrite``) a set written earlier by this
command; any other folder is refused with a one-line error and left untouched.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from core.cli import run_cli
from domains.pathology.synthetic.generator import default_settings, generate_archive


def main(argv: list[str] | None = None) -> Path:
    """Generate the synthetic H&E set from the command line.

    Args:
        argv: Command-line arguments (default: ``sys.argv[1:]``).

    Returns:
        The output folder.
    """
    defaults = default_settings()
    parser = argparse.ArgumentParser(
        prog="python -m domains.pathology.synthetic",
        description="Generate synthetic H&E tiles of nine colorectal tissue classes with "
        "free-text captions, and pyramidal whole-slide TIFFs, split by site (stain).")
    parser.add_argument("--out", type=Path, required=True,
                        help="output folder: missing, empty, or a set of this command "
                             "(replaced only with --overwrite)")
    parser.add_argument("--tiles-per-class", type=int, default=defaults["tiles_per_class"],
                        help="tiles per class and site")
    parser.add_argument("--tile-size", type=int, default=defaults["tile_size"],
                        help="tile side in pixels")
    parser.add_argument("--slides-per-site", type=int, default=None,
                        help="slides per site (default: the card's, per split: "
                             f"{defaults['slides_per_site']})")
    parser.add_argument("--slide-size", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"),
                        default=defaults["slide_size"], help="slide size at level 0")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--workers", type=int, default=None, help="processes")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace --out when it holds a set written by this command")
    args = parser.parse_args(argv)
    return generate_archive(args.out, tiles_per_class=args.tiles_per_class,
                            tile_size=args.tile_size, slides_per_site=args.slides_per_site,
                            slide_size=args.slide_size, seed=args.seed, workers=args.workers,
                            overwrite=args.overwrite)


if __name__ == "__main__":
    run_cli(main, Console(soft_wrap=True))
