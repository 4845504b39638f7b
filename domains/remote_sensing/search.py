"""`python -m domains.remote_sensing.search "QUERY" --index INDEX`: text search over scenes.

Prints the ranked scenes (rank, id, sensor, lon/lat, date, score) as a table. Filters —
``--sensor``, ``--bbox W,S,E,N`` (footprint intersects), ``--date FROM..TO`` — select
scenes before ranking, so k results come back whenever k scenes match. ``--near LON,LAT``
fuses a place into the score (GeoCLOSP indexes). ``--gallery out.png`` draws the hits
(S2 false colour, S1 VV/VH/ratio) and writes the results as ``out.json`` beside it.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import geopandas as gpd
from rich.console import Console
from rich.table import Table

from core.atomic import atomic_write_bytes
from core.cli import run_cli
from domains.remote_sensing.scene_index import SENSOR_CHOICES, SceneIndex

console = Console()


def results_table(query: str, results: gpd.GeoDataFrame) -> Table:
    """A rich table of search results."""
    table = Table(title=f"“{query}”", title_justify="left")
    near = "distance_km" in results.columns
    for column in ("rank", "id", "sensor", "lon, lat", "date", "score",
                   *(["km"] if near else []), "labels"):
        table.add_column(column, no_wrap=column != "labels",
                         overflow="fold",
                         justify="right" if column in ("rank", "score", "km") else "left")
    for _, hit in results.iterrows():
        table.add_row(str(hit["rank"]), str(hit["id"]), str(hit["sensor"]),
                      f"{hit['lon']:.3f}, {hit['lat']:.3f}", str(hit["date"]),
                      f"{hit['score']:.3f}", *([f"{hit['distance_km']:.0f}"] if near else []),
                      ", ".join(hit["labels"]))
    return table


def results_json(query: str, results: gpd.GeoDataFrame, filters: dict) -> bytes:
    """The results as JSON (footprints as WKT)."""
    rows = results.drop(columns="geometry").assign(footprint=results.geometry.to_wkt())
    records = json.loads(rows.to_json(orient="records"))
    return json.dumps({"query": query, "filters": filters, "results": records},
                      indent=2).encode()


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(prog="python -m domains.remote_sensing.search",
                                     description="Search an indexed archive by text.")
    parser.add_argument("query", help='what to look for, e.g. "flooded farmland near a river"')
    parser.add_argument("--index", type=Path, required=True, help="index folder")
    parser.add_argument("-k", type=int, default=10, help="results (default 10)")
    parser.add_argument("--sensor", choices=SENSOR_CHOICES, default="any")
    parser.add_argument("--bbox", help="W,S,E,N in degrees: footprint intersects the box")
    parser.add_argument("--date", help="FROM..TO (ISO dates, inclusive; either side may be "
                                       "empty)")
    parser.add_argument("--near", help="LON,LAT: fuse this place (GeoCLOSP indexes)")
    parser.add_argument("--near-weight", type=float,
                        help="weight of the place term (default: the run's validation choice)")
    parser.add_argument("--gallery", type=Path, help="PNG of the hits (+ JSON beside it)")
    parser.add_argument("--run", type=Path, help="run folder (default: the one that built "
                                                 "the index)")
    parser.add_argument("--archive", type=Path, help="archive folder for --gallery (default: "
                                                     "the one indexed)")
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: list[str] | None = None) -> gpd.GeoDataFrame:
    """Run a search from the command line; returns the results."""
    args = build_parser().parse_args(argv)
    index = SceneIndex.load(args.index, run=args.run, archive=args.archive, device=args.device)
    results = index.search(args.query, k=args.k, sensor=args.sensor, bbox=args.bbox,
                           date=args.date, near=args.near, near_weight=args.near_weight)
    console.print(results_table(args.query, results))
    console.print(f"{len(results)} of {results.attrs['matching']} matching scenes shown "
                  f"({len(index)} in the index)")
    for _, hit in results.iterrows():
        if hit.get("input_notes"):
            console.print(f"  [yellow]note[/] {hit['rank']}. {hit['id']}: {hit['input_notes']}")
    if args.gallery is not None:
        index.gallery(args.query, results, args.gallery)
        filters = {k: getattr(args, k) for k in ("sensor", "bbox", "date", "near", "k")}
        atomic_write_bytes(args.gallery.with_suffix(".json"),
                           results_json(args.query, results, filters))
        console.print(f"gallery: {args.gallery} (results: {args.gallery.with_suffix('.json')})")
    return results


def cli() -> None:
    """``python -m`` entry point: bad input ends with a one-line error, not a traceback."""
    run_cli(main, console)


if __name__ == "__main__":
    cli()
