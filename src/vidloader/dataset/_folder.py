"""Finding a dataset's videos in a ``root/<class>/**/<file>`` folder tree."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from .._errors import ConfigError

# What datasets in the wild hold: MP4/MOV family, Matroska/WebM, AVI, broadcast and camcorder transport
# streams (.ts/.m2ts/.mts), MPEG program streams, FLV, 3GP, ASF/WMV, Ogg.
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4",
    ".mkv",
    ".webm",
    ".avi",
    ".mov",
    ".m4v",
    ".ts",
    ".m2ts",
    ".mts",
    ".mpg",
    ".mpeg",
    ".flv",
    ".3gp",
    ".wmv",
    ".asf",
    ".ogv",
)


def folder_videos(root: Path, extensions: Sequence[str]) -> tuple[list[str], list[str], list[int]]:
    """(class names, video paths, labels) under ``root``: classes are the sorted non-hidden sub-folders, a
    label is its class's position, and files come in sorted walk order.

    Raises:
        ConfigError: ``root`` is not a folder, or has no class sub-folder or no file with an extension.
    """
    if not root.is_dir():
        raise ConfigError(f"dataset folder {root} does not exist or is not a folder")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise ConfigError(f"dataset folder {root} has no class sub-folders (expected root/<class>/<video>)")
    exts = tuple(e.lower() for e in extensions)
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(root / name)):
            for f in sorted(files):
                if f.lower().endswith(exts):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(label)
    if not paths:
        raise ConfigError(f"dataset folder {root} has no files with extensions {list(exts)}")
    return classes, paths, labels
