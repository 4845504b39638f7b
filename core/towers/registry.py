"""Tower registry: tower type name -> (config dataclass, tower module class).

The built-in towers (``image``, ``text``, ``location``) register themselves when
imported; a domain registers its own tower types the same way, without editing the
core::

    from dataclasses import dataclass
    import core

    @dataclass
    class SpectrumTowerConfig:
        bands: int = 200
        embed_dim: int = 384

    class SpectrumTower(torch.nn.Module):
        def __init__(self, config: SpectrumTowerConfig) -> None: ...
        output_dim = property(lambda self: self.config.embed_dim)

    core.register_tower("spectrum", SpectrumTowerConfig, SpectrumTower)

A model config then names ``type: spectrum`` for one of its towers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from torch import nn

_TOWERS: dict[str, tuple[type, type[nn.Module]]] = {}


def register_tower(name: str, config_cls: type, tower_cls: type[nn.Module]) -> None:
    """Register a tower type under ``name`` for model configs (``type: <name>``).

    Registering the same name again with the same two classes is a no-op (modules may
    be imported twice); with different classes it is an error.

    Args:
        name: The tower type name used in model configs.
        config_cls: A dataclass holding the tower's configuration.
        tower_cls: An ``nn.Module`` subclass built as ``tower_cls(config_cls(**spec))``;
            its instances expose ``output_dim`` (width of the returned embedding).

    Raises:
        TypeError: If ``config_cls`` is not a dataclass or ``tower_cls`` not a module class.
        ValueError: If ``name`` is empty or already registered with other classes.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"a tower type name must be a non-empty string, got {name!r}")
    if not (isinstance(config_cls, type) and dataclasses.is_dataclass(config_cls)):
        raise TypeError(f"tower type {name!r}: config_cls must be a dataclass, got {config_cls!r}")
    if not (isinstance(tower_cls, type) and issubclass(tower_cls, nn.Module)):
        raise TypeError(f"tower type {name!r}: tower_cls must be an nn.Module subclass, "
                        f"got {tower_cls!r}")
    existing = _TOWERS.get(name)
    if existing is not None and existing != (config_cls, tower_cls):
        old_config, old_tower = existing
        raise ValueError(
            f"tower type {name!r} is already registered as "
            f"({old_config.__module__}.{old_config.__qualname__}, "
            f"{old_tower.__module__}.{old_tower.__qualname__}); choose another name"
        )
    _TOWERS[name] = (config_cls, tower_cls)


def list_towers() -> list[str]:
    """Names of every registered tower type, sorted."""
    return sorted(_TOWERS)


def get_tower_type(name: str) -> tuple[type, type[nn.Module]]:
    """The (config dataclass, tower class) registered under exactly ``name``.

    Args:
        name: A tower type name.

    Returns:
        The config class and the tower class.

    Raises:
        ValueError: If no tower type has that name (the message lists the known ones).
    """
    if not isinstance(name, str) or name not in _TOWERS:
        raise ValueError(f"unknown tower type {name!r}; known tower types: "
                         f"{', '.join(list_towers())}")
    return _TOWERS[name]


def build_tower(name: str, spec: dict[str, Any]) -> nn.Module:
    """Build one tower from ``{"type": ..., **config}``.

    Args:
        name: The tower's name in the model (for error messages).
        spec: The tower spec: its registered ``type`` plus fields of its config dataclass.

    Returns:
        The tower module.

    Raises:
        ValueError: If the type is missing or unknown, or the spec has unknown keys.
    """
    spec = dict(spec)
    kind = spec.pop("type", None)
    if kind is None:
        raise ValueError(f"tower {name!r} has no 'type'; known tower types: "
                         f"{', '.join(list_towers())}")
    try:
        config_cls, tower_cls = get_tower_type(kind)
    except ValueError as error:
        raise ValueError(f"tower {name!r}: {error}") from None
    known = {f.name for f in dataclasses.fields(config_cls)}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise ValueError(f"tower {name!r} ({kind}): unknown keys {unknown}; known: {sorted(known)}")
    tower = tower_cls(config_cls(**spec))
    if not hasattr(tower, "output_dim"):
        raise TypeError(f"tower {name!r} ({kind}): {tower_cls.__qualname__} has no "
                        "'output_dim' (the width of its embedding)")
    return tower
