"""Figures are written as real PNG files from real inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.plots import (
    GalleryItem,
    plot_confusion_matrix,
    plot_gallery,
    plot_training_curves,
    read_metrics_csv,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_metrics_csv_to_curves(tmp_path: Path) -> None:
    csv_path = tmp_path / "metrics.csv"
    rows = ["epoch,step,train/loss,val/loss"]
    rows += [f"0,{s},{3.0 - 0.01 * s},"for s in range(40)] + ["0,39,,2.5"]
    csv_path.write_text("\n".join(rows) + "\n")
    series = read_metrics_csv(csv_path)
    assert len(series["train/loss"]) == 40 and series["val/loss"] == [(39, 2.5)]
    out = plot_training_curves({"closp": series}, ["train/loss", "val/loss", "absent"],
                               tmp_path / "curves.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_confusion_and_gallery(tmp_path: Path) -> None:
    matrix = np.array([[5, 1], [0, 7]])
    out = plot_confusion_matrix(matrix, ["water", "trees"], tmp_path / "cm.png", "S2")
    assert out.read_bytes()[:8] == PNG_MAGIC
    picture = np.random.default_rng(0).random((16, 16, 3))
    rows = [("flooded area", [GalleryItem(picture, "water", True),
                              GalleryItem(picture, "crops", False)]),
            ("trees", [GalleryItem(picture, "trees", True)])]
    gallery = plot_gallery(rows, tmp_path / "gallery.png")
    assert gallery.read_bytes()[:8] == PNG_MAGIC and gallery.stat().st_size > 5000
