"""VideoDataset: an indexed, labelled list of VideoInfo built from a folder tree or a manifest."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Unpack

from .._errors import ConfigError
from .._main_guard import refuse_while_importing_main
from ._building import OnError, SkippedFile, build_videos
from ._columns import InfoColumns, VideoColumns
from ._damaged import DamagedFile, damaged_files, warn_damaged
from ._folder import VIDEO_EXTENSIONS, folder_videos
from ._index_reader import CheckFiles, open_index
from ._index_rows import IndexRows
from ._index_writer import write_index
from ._info import VideoInfo
from ._manifest import known_info, labels_to_ints, read_manifest
from ._probe_many import ProbeOptions


class VideoDataset(Sequence[VideoInfo]):
    """Indexed videos with integer labels. ``ds[i]`` is a VideoInfo; ``ds.skipped`` lists unusable files,
    ``ds.damaged`` the damaged files kept with the frames that decode.

    Built by probing (``from_folder``, ``from_manifest``, ``from_paths``) the videos are held as VideoInfo
    objects; opened from an index file (``from_index``) they stay rows of a memory-mapped table and ``ds[i]``
    builds the VideoInfo of row ``i`` when asked.

    Args:
        videos: the videos (``VideoInfo`` with their labels, or the rows of an index).
        classes: class names, label ``i`` being ``classes[i]``.
        skipped: files left out at indexing, with their reasons.
        root: the folder the dataset came from, for messages.

    Raises:
        ConfigError: no usable video.
    """

    def __init__(
        self,
        *,
        videos: Sequence[VideoInfo],
        classes: Sequence[str] = (),
        skipped: Sequence[SkippedFile] = (),
        root: str | None = None,
    ) -> None:
        refuse_while_importing_main("a VideoDataset")
        self._videos: Sequence[VideoInfo] = videos if isinstance(videos, IndexRows) else tuple(videos)
        self.classes = tuple(classes)
        self.skipped = tuple(skipped)
        self.root = root
        if not self._videos:
            detail = (
                f"; {len(self.skipped)} file(s) skipped, first: {self.skipped[0].path}: {self.skipped[0].reason}"
                if self.skipped
                else ""
            )
            raise ConfigError(f"dataset{' at ' + root if root else ''} has no usable video{detail}")

    def __len__(self) -> int:
        return len(self._videos)

    def __getitem__(self, i):
        return self._videos[i]

    def __iter__(self) -> Iterator[VideoInfo]:
        return iter(self._videos)

    def __repr__(self) -> str:
        return (
            f"VideoDataset(videos={len(self._videos)}, classes={len(self.classes)}, "
            f"skipped={len(self.skipped)}, root={self.root!r})"
        )

    @property
    def samples(self) -> list[tuple[str, int]]:
        """``(path, label)`` per video, as torchvision's ``DatasetFolder`` / ``Kinetics`` name it."""
        return list(zip(self.column("path"), self.column("label"), strict=True))

    @functools.cached_property
    def damaged(self) -> tuple[DamagedFile, ...]:
        """The files indexing found damaged (cut off, or with ``verify`` frames that do not decode), kept
        with the frames that decode: each with how many frames decode and FFmpeg's first error."""
        rows = self.rows
        if rows is None:
            return damaged_files(self._videos)
        return damaged_files(rows[i] for i in rows.where_set("damage"))

    @property
    def rows(self) -> IndexRows | None:
        """The memory-mapped index rows behind this dataset, or None when it was built by probing."""
        return self._videos if isinstance(self._videos, IndexRows) else None

    def column(self, name: str) -> list[Any]:
        """One VideoInfo field for every video, read column-wise from an index (no VideoInfo is built).

        Args:
            name: a VideoInfo field.

        Returns:
            Its value for every video, in order.
        """
        rows = self.rows
        if rows is None:
            return [getattr(v, name) for v in self._videos]
        if name == "path":
            return rows.paths()
        return rows.values(name)

    @property
    def columns(self) -> VideoColumns:
        """Every video's facts as arrays (``array``, ``pts_at``, ``paths_of``): an index reads them from its
        columns, so a pass over all videos (plans, short videos, audio lengths) builds no VideoInfo."""
        return self.rows if self.rows is not None else InfoColumns(self._videos)

    def frame_ranges(self) -> tuple[Any, Any]:
        """(first_frame, num_frames) of every video as int64 numpy arrays: what stride plans need.

        Returns:
            The two arrays.
        """
        import numpy as np

        cols = self.columns
        return np.asarray(cols.array("first_frame"), np.int64), np.asarray(cols.array("num_frames"), np.int64)

    def fingerprint_items(self) -> list[tuple[str, int, int]]:
        """What identifies the dataset for resume checks: per video (path, first frame, frame count)."""
        first, num = self.frame_ranges()
        return list(zip(self.column("path"), first.tolist(), num.tolist(), strict=True))

    def fingerprint(self) -> str:
        """The digest of ``fingerprint_items`` (16 hex digits, what a loader state checks), column-wise."""
        return self.columns.fingerprint()

    def summary(self) -> dict:
        sizes = zip(self.column("width"), self.column("height"), strict=True)
        durations = self.column("duration")
        return {
            "videos": len(self._videos),
            "classes": len(self.classes),
            "codecs": dict(Counter(self.column("codec"))),
            "resolutions": dict(Counter(f"{w}x{h}" for w, h in sizes)),
            "fps": dict(Counter(round(f, 3) for f in self.column("fps"))),
            "duration_s": {"min": min(durations), "max": max(durations), "total": sum(durations)},
            "skipped": [s.to_json() for s in self.skipped],
            "damaged": [d.to_json() for d in self.damaged],
        }

    def to_index(self, path: str | Path, *, video_stream: int | None = None) -> Path:
        """Write this dataset as a portable index file (Parquet) that ``from_index`` opens without probing.

        Args:
            path: where to write; must end in ``.parquet``. Local video paths are stored relative to its
                folder, so the index travels with the data.
            video_stream: the stream choice the videos were probed with (recorded in the index).

        Returns:
            The path written.

        Raises:
            ConfigError: the path is not a ``.parquet`` file or cannot be written.
        """
        return write_index(
            iter(self._videos),
            path,
            classes=self.classes,
            skipped=[(s.path, s.reason) for s in self.skipped],
            root=self.root,
            video_stream=video_stream,
        )

    # ---- constructors -------------------------------------------------------------------------------

    @classmethod
    def from_index(
        cls,
        path: str | Path,
        *,
        check_files: CheckFiles = "all",
        strict: bool = False,
        cache_dir: str | Path | None = None,
    ) -> VideoDataset:
        """Open an index file written by ``vidloader index`` or ``to_index``, memory-mapped, without probing.

        Args:
            path: the ``.parquet`` index.
            check_files: compare each file with what was indexed: "all" (the size; where only the
                modification time differs, as after ``cp -r``, a hash of its first and last 4 KiB), "size",
                or "none" (no check: the fastest open). Objects named by URL: existence and size, a folder
                listed once.
            strict: raise instead of leaving changed or missing files out with a warning.
            cache_dir: where the memory-mapped Arrow copy lives (default: the probe cache folder).

        Returns:
            The dataset; files that changed since indexing are in ``skipped``, not used; damaged files
            (named in one warning) in ``damaged``.

        Raises:
            ConfigError: the index is missing, unreadable, of another schema version, or (with
                ``strict``) does not match the files.
        """
        rows, meta, left_out = open_index(path, check_files=check_files, strict=strict, cache_dir=cache_dir)
        skipped = [SkippedFile(p, reason) for p, reason in left_out]
        ds = cls(videos=rows, classes=meta.classes, skipped=skipped, root=meta.root or str(path))
        warn_damaged(ds.damaged)
        return ds

    @classmethod
    def from_folder(
        cls,
        root: str | Path,
        *,
        on_error: OnError = "raise",
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        reuse_index: str | Path | None = None,
        **probe: Unpack[ProbeOptions],
    ) -> VideoDataset:
        """``root/<class_name>/**/<file>`` with a video extension; labels = positions in sorted class names.

        Args:
            root: the dataset folder.
            on_error: "raise" the first unusable or damaged file's error, or "skip": leave unusable files out
                (listed in ``skipped``) and keep damaged ones with the frames that decode (listed in
                ``damaged``).
            extensions: the file name endings that are videos.
            reuse_index: an earlier index whose rows are reused for files unchanged since (size and mtime),
                so only new or changed files are probed.
            **probe: how files are probed (``ProbeOptions``: the probe cache, workers, stream, progress bar,
                and the engine: "thread", "process", or "ray" with ``address`` for a Ray cluster).

        Returns:
            The dataset.

        Raises:
            ConfigError: no such folder, no class folder or video in it, or a bad option.
            ProbeError: a file cannot be used, or is damaged, and ``on_error="raise"``.
        """
        root = Path(root)
        classes, paths, labels = folder_videos(root, extensions)
        segments = [(None, None)] * len(paths)
        videos, skipped = build_videos(
            paths, labels, segments, on_error=on_error, probe=probe, reuse_index=reuse_index
        )
        return cls(videos=videos, classes=classes, skipped=skipped, root=str(root))

    @classmethod
    def from_manifest(
        cls,
        path: str | Path,
        *,
        on_error: OnError = "raise",
        reuse_index: str | Path | None = None,
        **probe: Unpack[ProbeOptions],
    ) -> VideoDataset:
        """CSV (``path,label[,start_sec,end_sec]`` header) or JSONL with those keys, local or at any fsspec
        URL; rows may name tar shard members and carry probed info (see ``read_manifest``).

        Args:
            path: the manifest.
            on_error, reuse_index, **probe: as for ``from_folder``.

        Returns:
            The dataset.

        Raises:
            ConfigError: the manifest is missing or malformed, or a bad option.
            ProbeError: a file cannot be used, or is damaged, and ``on_error="raise"``.
        """
        rows = read_manifest(path)
        labels, classes = labels_to_ints([r.label for r in rows])
        videos, skipped = build_videos(
            [r.path for r in rows],
            labels,
            [(r.start, r.end) for r in rows],
            on_error=on_error,
            probe=probe,
            reuse_index=reuse_index,
            known=[known_info(r) for r in rows],
        )
        return cls(videos=videos, classes=classes, skipped=skipped, root=str(path))

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | Path],
        *,
        labels: Sequence[int] | None = None,
        on_error: OnError = "raise",
        **probe: Unpack[ProbeOptions],
    ) -> VideoDataset:
        """Files given directly; labels default to 0.

        Args:
            paths: the files.
            labels: one integer label per file (default: all 0).
            on_error: as for ``from_folder``.
            **probe: as for ``from_folder``; no progress bar unless ``progress=True``.

        Returns:
            The dataset.

        Raises:
            ConfigError: as many labels as paths are not given, or a bad option.
            ProbeError: a file cannot be used, or is damaged, and ``on_error="raise"``.
        """
        labels = list(labels) if labels is not None else [0] * len(paths)
        if len(labels) != len(paths):
            raise ConfigError(f"labels has {len(labels)} entries for {len(paths)} paths")
        probe.setdefault("progress", False)
        segments = [(None, None)] * len(paths)
        videos, skipped = build_videos(
            [str(p) for p in paths], labels, segments, on_error=on_error, probe=probe
        )
        classes = tuple(str(i) for i in sorted(set(labels)))
        return cls(videos=videos, classes=classes, skipped=skipped)
