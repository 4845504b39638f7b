"""Loading a trained image <-> text run (radiology, pathology) for inference.

A domain's run class (``ChestXrayRun``, ``TissueRun``) is an :class:`ImageTextRun`: a
:class:`core.inference.LoadedRun` whose model has one ``image`` and one ``text`` tower.
Its ``load`` (:func:`open_image_text_run`) opens the run folder and refuses, with the
folder's name, a model of another shape (or of another domain) before any image is
read. The domain adds only its name and its image transform.
:class:`ImageTextClassifier` is the shared part of the domains' zero-shot classifiers
(loading, the prompt classifier). No Lightning here: inference never imports training
code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import torch

from core.inference import LoadedRun
from core.zero_shot import PromptClassifier

IMAGE_TOWER = "image"


def open_image_text_run(run: str | Path, variant: str, device: str | torch.device, *,
                        domain: str, require_domain: bool = False) -> dict[str, Any]:
    """The fields of a loaded image <-> text run (see :meth:`core.inference.LoadedRun.open`).

    Args:
        run: The run folder.
        variant: ``main`` or a companion (``clip``).
        device: Where to run the model.
        domain: The domain the run should be of (for messages and ``require_domain``).
        require_domain: Also refuse a run that its saved config says is of another domain.

    Returns:
        ``folder``, ``model``, ``config``, ``image_size`` and ``fingerprint``.

    Raises:
        ValueError: The model lacks the ``image`` or ``text`` tower, or (``require_domain``)
            the run is of another domain.
    """
    fields = LoadedRun.open(run, variant, device, image_towers=(IMAGE_TOWER,))
    model = fields["model"]
    if IMAGE_TOWER not in model.towers or "text" not in model.towers:
        raise ValueError(f"{fields['folder']}: not a {domain} model (needs 'image' and "
                         f"'text' towers, has {sorted(model.towers)})")
    if require_domain and fields["config"].get("domain") not in (None, domain):
        raise ValueError(f"{fields['folder']}: a {fields['config']['domain']} run, not a "
                         f"{domain} one")
    return fields


@dataclass
class ImageTextRun(LoadedRun):
    """A trained image <-> text model ready for inference (a domain names itself and its
    image transform).

    Attributes (of the class):
        domain: The domain's name (messages; the run's saved ``domain``).
        require_domain: Refuse a run whose saved config names another domain.
    """

    domain: ClassVar[str] = "image-text"
    require_domain: ClassVar[bool] = False

    @staticmethod
    def image_transform(model_extra: dict[str, Any]) -> Callable[[dict[str, Any]],
                                                                 dict[str, Any]]:
        """The per-sample transform that prepares a raw image as training did."""
        raise NotImplementedError("a domain's run class gives its image_transform")

    @classmethod
    def load(cls, run: str | Path, variant: str = "main",
             device: str | torch.device = "cpu") -> Self:
        """Load a run folder written by the domain's ``train``.

        Args:
            run: The run folder.
            variant: ``main`` or a companion (``clip``).
            device: Where to run the model.

        Returns:
            The loaded run.
        """
        fields = open_image_text_run(run, variant, device, domain=cls.domain,
                                     require_domain=cls.require_domain)
        return cls(**fields, transforms={
            IMAGE_TOWER: cls.image_transform(fields["model"].config.extra)})


class ImageTextClassifier:
    """The zero-shot classifier of an image <-> text domain over its loaded run.

    A domain subclasses it, naming its run class (:attr:`run_class`), and adds its
    ``embed`` and ``predict`` (``ChestXrayClassifier``, ``TissueClassifier``).

    Args:
        run: A loaded run (see :meth:`from_run`).
    """

    #: The domain's :class:`core.inference.LoadedRun` subclass (with a ``load``).
    run_class: ClassVar[type[LoadedRun]]

    def __init__(self, run: LoadedRun) -> None:
        self.run = run
        self.prompts = PromptClassifier(run.model)

    @classmethod
    def from_run(cls, run: str | Path, variant: str = "main",
                 device: str | torch.device = "cpu") -> Self:
        """Load the classifier from a run folder written by the domain's ``train``.

        Args:
            run: The run folder.
            variant: ``main`` or a companion's name.
            device: Where to run the model.
        """
        return cls(cls.run_class.load(run, variant, device))
