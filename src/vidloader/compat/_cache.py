"""The dataset cache of torchvision's reference scripts, which the port and torchvision write under one name.

``references/video_classification/train.py --cache-dataset`` saves ``(dataset, dir)`` with ``torch.save``
to ``~/.torch/vision/datasets/kinetics/<sha1 of the split folder, clip length, Kinetics version and frame
rate>.pt`` and, when that file exists, loads it instead of building the dataset. The script names the file,
so after the port it is the same name: a file torchvision left holds torchvision's objects, one the port left
holds the port's. Neither can serve the other, so each side says so, naming the cache, instead of failing on
a type: the port when torchvision's objects reach it (``check_ours``), and a port's cache read by a script
that does not use the port (``check_reader``).
"""

from __future__ import annotations

import sys
from typing import Any

from .._errors import ConfigError

CACHE_FOLDER = "~/.torch/vision/datasets/kinetics/"
PORT_MODULE = "vidloader.compat.torchvision"


def made_by_torchvision(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a torchvision class (or of a script's subclass of one, such as the
    reference scripts' ``KineticsWithVideoId``)."""
    return any(c.__module__.partition(".")[0] == "torchvision" for c in type(obj).__mro__)


def check_ours(obj: Any, *, what: str, expected: str) -> None:
    """Refuse an object of torchvision's where the port needs its own, naming the likely cause.

    Args:
        obj: the object given.
        what: where it was given, e.g. ``"video_clips"``.
        expected: the port's class, e.g. ``"vidloader.compat.torchvision VideoClips (dataset.video_clips)"``.

    Raises:
        ConfigError: ``obj`` is torchvision's: the message names the dataset cache; any other foreign object:
            the message names the class expected and the one given.
    """
    name = type(obj).__name__
    if made_by_torchvision(obj):
        raise ConfigError(
            f"{what} is torchvision's own {name}, not the port's: the dataset was made by torchvision, most "
            f"likely read back from a dataset cache torchvision wrote (train.py --cache-dataset keeps one per "
            f"split under {CACHE_FOLDER}, and after the port the script looks for the same file). Delete that "
            "file (the next --cache-dataset run writes the port's own), or run without --cache-dataset"
        )
    raise ConfigError(f"expected a {expected}, got {name}")


def check_reader() -> None:
    """Refuse to unpickle a port's dataset in a process that does not use the port.

    A script reading the port's ``Kinetics`` back from a cache has imported ``vidloader.compat.torchvision``
    (it builds its samplers and loader from there); torchvision's own script has not, and its samplers would
    fail on the port's objects with a bare TypeError.

    Raises:
        ConfigError: ``vidloader.compat.torchvision`` is not imported; the message names the cache.
    """
    if PORT_MODULE in sys.modules:
        return
    raise ConfigError(
        "this is a dataset cache written by vidloader's torchvision port (a vidloader.compat.torchvision "
        "Kinetics, e.g. saved by train.py --cache-dataset after the port), and this script does not use the "
        f"port: torchvision's samplers cannot read it. Delete the file (train.py keeps it under {CACHE_FOLDER}; "
        f"the next --cache-dataset run writes torchvision's own) or run without --cache-dataset; to load it on "
        f"purpose, import {PORT_MODULE} first"
    )
