"""Zero-shot land-cover classification of Sentinel-1/2 scenes with a trained CLOSP run.

>>> clf = LandCoverClassifier.from_run("runs/closp-tiny")
>>> probs = clf.predict(["scene_s2.tif", "scene_s1.tif"], classes=["water", "forest"])
>>> probs.idxmax(axis=1)          # top class per scene; probs.zero_shot.sensors: s2 / s1

Each class becomes the mean text embedding of its names x prompt templates (open_clip's
(D, C) classifier); a scene's probabilities are the softmax over classes of
``logit_scale x cosine`` (:class:`core.zero_shot.PromptClassifier`). This module adds
what is about scenes: sensor detection and the input check through
:mod:`~domains.remote_sensing.inputs` (the one the datasets and the index use: other
sensors refused, S2 digital numbers to reflectance with the product's offset, S1 linear
power / amplitude to dB, arrays masked as files are) and the default prompts: a class
standing for a vocabulary class is prompted as the run's own zero-shot evaluation prompts
that class (:func:`~domains.remote_sensing.captions.default_zero_shot`, chosen on the
validation split), any other class by its own name.
What the check converted or assumed is warned about and kept per scene in
``frame.zero_shot.input_notes``. Normalising, tiling and batching are
:class:`~domains.remote_sensing.run_model.SceneRun`'s, so scenes are seen as in training.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import rasterio
import torch

from core.zero_shot import PromptClassifier
from domains.remote_sensing import band_layout, cards, inputs
from domains.remote_sensing.captions import default_zero_shot
from domains.remote_sensing.inputs import SENSOR_NAMES
from domains.remote_sensing.run_model import SceneRun
from domains.remote_sensing.scene_io import (
    SceneError,
    SceneInfo,
    read_array_info,
    read_scene_info,
)

Scene = str | Path | np.ndarray | torch.Tensor


@pd.api.extensions.register_dataframe_accessor("zero_shot")
class ZeroShotAccessor:
    """``frame.zero_shot.sensors``: the sensor of each row of a :meth:`predict` result."""

    def __init__(self, frame: pd.DataFrame) -> None:
        if "sensors" not in frame.attrs:
            raise AttributeError("not a LandCoverClassifier.predict result (no attrs['sensors'])")
        self._frame = frame

    @property
    def sensors(self) -> pd.Series:
        """The sensor (``"s2"`` / ``"s1"``) of each scene, indexed like the frame."""
        return pd.Series(self._frame.attrs["sensors"], index=self._frame.index, name="sensor")

    @property
    def input_notes(self) -> pd.Series:
        """What the input check converted or assumed per scene ("" when nothing)."""
        notes = self._frame.attrs.get("input_notes", [""] * len(self._frame))
        return pd.Series(notes, index=self._frame.index, name="input_notes")

    @property
    def multi_label(self) -> bool:
        """Whether the values are independent cosine scores rather than probabilities."""
        return bool(self._frame.attrs.get("multi_label", False))


def _fold(name: str) -> str:
    return " ".join(str(name).lower().replace("_", " ").split())


def vocabulary_class(name: str) -> str | None:
    """The training-vocabulary class a user class stands for, or ``None``.

    Tries :func:`cards.canonical_label` (vocabulary, Dynamic World, CORINE and BigEarthNet
    spellings), then the card synonyms ("forest" -> "trees", "snow" -> "snow and ice").
    """
    label = cards.canonical_label(name)
    if label is not None:
        return label
    for cls, names in cards.class_synonyms().items():
        if _fold(name) in {_fold(n) for n in names}:
            return cls
    return None


def default_synonyms(classes: Sequence[str],
                     synonyms: Mapping[str, Sequence[str]] | None = None) -> dict[str, list[str]]:
    """Extra names per class for the prompt ensemble (the class name itself is always used).

    A class standing for a vocabulary class (see :func:`vocabulary_class`) gets that class's
    vocabulary name and the synonyms of :func:`~domains.remote_sensing.captions.
    default_zero_shot` (the run's own evaluation prompts; none by default, see
    docs/zero_shot.md), so the 9 vocabulary classes are prompted exactly as the evaluation
    prompts them. A class in ``synonyms`` gets exactly the names given there instead
    (``[]``: its own name only).

    Args:
        classes: The class names.
        synonyms: User synonyms overriding the defaults for the classes they name.

    Returns:
        Class -> extra names (without the class name, no duplicates).
    """
    card, synonyms = default_zero_shot()[2], synonyms or {}
    resolved: dict[str, list[str]] = {}
    for name in classes:
        if name in synonyms:
            extra = list(synonyms[name])
        else:
            vocab = vocabulary_class(name)
            extra = [] if vocab is None else [vocab, *card.get(vocab, [])]
        resolved[name] = [n for i, n in enumerate(extra) if n != name and n not in extra[:i]]
    return resolved


class LandCoverClassifier:
    """Zero-shot classifier over any class vocabulary, on top of a loaded run.

    Args:
        run: The loaded run (model, band orders, training size).
        templates: Default prompt templates (default: :func:`~domains.remote_sensing.
            captions.default_zero_shot`'s).
        synonyms: Default synonyms overriding the card's (see :func:`default_synonyms`).
        batch_size: Scenes read per chunk and tiles per forward pass.
    """

    def __init__(self, run: SceneRun, templates: Sequence[str] | None = None,
                 synonyms: Mapping[str, Sequence[str]] | None = None, batch_size: int = 64) -> None:
        self.run = run
        self.templates = list(templates or default_zero_shot()[1])
        self.synonyms = {k: list(v) for k, v in (synonyms or {}).items()}
        self.batch_size = batch_size
        self.head = PromptClassifier(run.model)

    @classmethod
    def from_run(cls, run: str | Path, variant: str = "main", device: str | torch.device = "cpu",
                 templates: Sequence[str] | None = None,
                 synonyms: Mapping[str, Sequence[str]] | None = None,
                 batch_size: int = 64) -> LandCoverClassifier:
        """Load a run folder written by ``domains.remote_sensing.train``.

        Args:
            run: The run folder.
            variant: ``main`` or a companion (``rgb``, ``s1_alone``, ``geo``).
            device: Where the model runs.
            templates: Default prompt templates.
            synonyms: Default synonyms (per class, overriding the card's).
            batch_size: Scenes per chunk and tiles per forward pass.
        """
        return cls(SceneRun.load(run, variant, device), templates, synonyms, batch_size)

    @property
    def sensors(self) -> list[str]:
        """The sensors the model embeds."""
        return self.run.sensors

    def class_embeddings(self, classes: Sequence[str], templates: Sequence[str] | None = None,
                         synonyms: Mapping[str, Sequence[str]] | None = None) -> torch.Tensor:
        """(D, C) normalised class embeddings, cached per (classes, templates, synonyms)."""
        extra = default_synonyms(classes, {**self.synonyms, **(synonyms or {})})
        return self.head.class_embeddings(classes, list(templates or self.templates), extra)

    def detect_sensor(self, name: str, count: int, descriptions: Sequence[str | None] = (),
                      tags: Mapping[str, Any] | None = None, dtype: str | None = None) -> str:
        """The sensor of a scene from its band descriptions and tags, else its band count.

        Uses :func:`~domains.remote_sensing.band_layout.identify_bands` (the datasets' check),
        accepting this model's own band lists by count as well.

        Raises:
            SensorMismatchError: Naming the scene, what was found and what is expected.
        """
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", inputs.AssumedBandOrderWarning)  # warned on read
            return band_layout.identify_bands(name, count, descriptions, tags, dtype=dtype,
                                         model_bands=self.run.bands).sensor

    def _check_sensor(self, name: str, sensor: str) -> None:
        if sensor not in SENSOR_NAMES:
            raise ValueError(f"unknown sensor {sensor!r}; known: {', '.join(SENSOR_NAMES)}")
        if sensor not in self.run.bands:
            raise SceneError(f"{name}: a {SENSOR_NAMES[sensor]} ({sensor}) scene, but the model "
                             f"in {self.run.folder} embeds only {', '.join(self.sensors)} scenes")

    def _array_sensor(self, name: str, image: np.ndarray, sensor: str | None) -> str:
        sensor = sensor or self.detect_sensor(name, image.shape[0])
        self._check_sensor(name, sensor)
        return sensor

    def _path_sensor(self, path: Path, sensor: str | None) -> str:
        if sensor is None:
            try:
                with rasterio.open(path) as src:
                    sensor = self.detect_sensor(str(path), src.count, src.descriptions,
                                                src.tags(), src.dtypes[0])
            except (rasterio.errors.RasterioError, OSError) as error:
                raise SceneError(f"{path}: unreadable GeoTIFF ({error})") from error
        self._check_sensor(str(path), sensor)
        return sensor

    def _raw(self, name: str, source: Path | np.ndarray, sensor: str,
             offset: float | None = None) -> tuple[torch.Tensor, SceneInfo]:
        """(C, H, W) scene in the model's band order through the shared input check."""
        options = {"offset": offset} if sensor == "s2" else {}
        if isinstance(source, Path):
            image, info = read_scene_info(source, sensor, self.run.bands[sensor], **options)
        else:
            own = len(source) == len(self.run.bands[sensor])
            image, info = read_array_info(name, source, sensor, self.run.bands[sensor],
                                          level=self.run.s2_level if own else None, **options)
        for warning in info.warnings:
            warnings.warn(warning, stacklevel=4)
        return torch.from_numpy(image), info

    def _embed(self, scenes: Scene | Sequence[Scene], sensor: str | Sequence[str] | None,
               batch_size: int | None, offset: float | None = None
               ) -> tuple[torch.Tensor, list[str], list[str], list[str]]:
        """:meth:`embed`, plus each scene's input notes."""
        items = _scene_list(scenes)
        sensors_in = [sensor] * len(items) if sensor is None or isinstance(sensor, str) \
            else list(sensor)
        if len(sensors_in) != len(items):
            raise ValueError(f"{len(sensors_in)} sensors given for {len(items)} scenes")
        sensors = [self._path_sensor(src, s) if isinstance(src, Path)
                   else self._array_sensor(name, src, s)
                   for (name, src), s in zip(items, sensors_in, strict=True)]
        size = batch_size or self.batch_size
        embeddings = torch.zeros(len(items), self.run.model.embed_dim)  # (N, D)
        notes = [""] * len(items)
        for group in dict.fromkeys(sensors):
            positions = [i for i, s in enumerate(sensors) if s == group]
            for start in range(0, len(positions), size):
                chunk = positions[start:start + size]
                images = []
                for i in chunk:
                    image, info = self._raw(*items[i], group, offset)
                    notes[i] = "; ".join(info.notes)
                    images.append(self.run.normalise(group, image, info.level))
                embeddings[chunk] = self.run.embed_images(group, images, size)  # (n, D)
        return embeddings, [name for name, _ in items], sensors, notes

    def embed(self, scenes: Scene | Sequence[Scene], sensor: str | Sequence[str] | None = None,
              batch_size: int | None = None,
              offset: float | None = None) -> tuple[torch.Tensor, list[str], list[str]]:
        """Embed scenes (grouped per sensor, read in chunks, tiled when large).

        Args:
            scenes: GeoTIFF paths, (C, H, W) or (N, C, H, W) arrays/tensors (S2 reflectance,
                or digital numbers converted with offset 0; in the model's band order or a
                full 13/12-band scene; S1 σ0 in dB, linear power or amplitude; NaN where
                nodata), or a list of them. Everything goes through the shared input check.
            sensor: ``"s2"``/``"s1"`` for all scenes, one per scene, or ``None``: detected.
            batch_size: Scenes per chunk and tiles per forward pass.
            offset: Sentinel-2 radiometric offset in DN, overriding what the scenes' metadata
                or dates say (e.g. -1000 for digital-number arrays of products from baseline
                04.00 on; arrays carry no metadata, so their default is 0).

        Returns:
            (N, D) normalised embeddings, the scene names, the scene sensors (input order).
        """
        embeddings, names, sensors, _ = self._embed(scenes, sensor, batch_size, offset)
        return embeddings, names, sensors

    def predict(self, scenes: Scene | Sequence[Scene], classes: Sequence[str] | None = None,
                sensor: str | Sequence[str] | None = None,
                templates: Sequence[str] | None = None,
                synonyms: Mapping[str, Sequence[str]] | None = None, multi_label: bool = False,
                batch_size: int | None = None, offset: float | None = None) -> pd.DataFrame:
        """Class probabilities (or multi-label scores) per scene.

        Args:
            scenes: See :meth:`embed`; a single path or array is one scene.
            classes: Class names (default: the 9 Dynamic World classes).
            sensor: See :meth:`embed`.
            templates: Prompt templates with one ``{}`` (default: the classifier's).
            synonyms: Extra names per class, overriding the defaults for the classes named.
            multi_label: Return independent per-class scores instead of probabilities: the
                cosine similarity (in [-1, 1]) of each scene to each class embedding. They do
                not sum to one; rank scenes per class or threshold them (a threshold is
                model-specific: pick it on labelled scenes).
            batch_size: Scenes per chunk and tiles per forward pass.
            offset: Sentinel-2 radiometric offset, overriding the scenes' own (see
                :meth:`embed`).

        Returns:
            One row per scene (index "scene": the path, or ``array[i]``), one column per
            class. Probabilities sum to one per row. ``frame.zero_shot.sensors`` (also
            ``frame.attrs["sensors"]``) gives each row's sensor, ``frame.zero_shot.input_notes``
            what the input check converted or assumed (S1 units, band order).
        """
        classes = list(cards.land_cover_classes() if classes is None else classes)
        if not classes or len(set(classes)) != len(classes):
            raise ValueError(f"classes must be distinct names, at least one; got {classes}")
        features, names, sensors, notes = self._embed(scenes, sensor, batch_size,
                                                      offset)  # (N, D)
        extra = default_synonyms(classes, {**self.synonyms, **(synonyms or {})})
        values = self.head.scores(features, classes, list(templates or self.templates), extra,
                                  multi_label)  # (N, C)
        frame = pd.DataFrame(values.numpy(), index=pd.Index(names, name="scene"),
                             columns=pd.Index(classes, name="class"))
        frame.attrs.update(sensors=sensors, multi_label=multi_label, input_notes=notes)
        return frame


def _scene_list(scenes: Scene | Sequence[Scene]) -> list[tuple[str, Path | np.ndarray]]:
    """Flatten inputs into (name, path or (C, H, W) numpy array in its own dtype), in order.

    Arrays keep their dtype (complex SLC and integer DN are recognised from it).
    """
    if isinstance(scenes, (str, Path, np.ndarray, torch.Tensor)):
        scenes = [scenes]
    items: list[tuple[str, Path | np.ndarray]] = []
    for scene in scenes:
        if isinstance(scene, (str, Path)):
            items.append((str(scene), Path(scene)))
            continue
        if not isinstance(scene, (np.ndarray, torch.Tensor)):
            raise TypeError(f"scene {len(items)}: expected a GeoTIFF path, numpy array or "
                            f"tensor, got {type(scene).__name__}")
        array = scene.detach().cpu().numpy() if isinstance(scene, torch.Tensor) \
            else np.asarray(scene)
        if array.ndim not in (3, 4):
            raise SceneError(f"array[{len(items)}]: shape {tuple(array.shape)}; expected "
                             "(C, H, W) or (N, C, H, W)")
        for image in array if array.ndim == 4 else [array]:  # (C, H, W) each
            items.append((f"array[{len(items)}]", image))
    return items
