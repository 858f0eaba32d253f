"""VideoDataset: an indexed, labelled list of VideoInfo built from a folder tree or a manifest."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from .._errors import ConfigError, ProbeError
from .._redact import redact
from .._validate import check_choice
from ._cache import ProbeCache
from ._info import VideoInfo
from ._manifest import known_info, labels_to_ints, read_manifest
from ._probe import probe_video

log = logging.getLogger("vidloader")

OnError = Literal["raise", "skip"]
ON_ERROR_CHOICES: tuple[str, ...] = ("raise", "skip")
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


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason}


class VideoDataset(Sequence[VideoInfo]):
    """Indexed videos with integer labels. ``ds[i]`` is a VideoInfo; ``ds.skipped`` lists unusable files.

    Args:
        videos: the probed videos (``VideoInfo``, with their labels).
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
        self._videos = tuple(videos)
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
        if isinstance(i, slice):
            return self._videos[i]
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
        return [(v.path, v.label) for v in self._videos]

    def fingerprint_items(self) -> list[tuple[str, int, int]]:
        """What identifies the dataset for resume checks: per video (path, first frame, frame count)."""
        return [(v.path, v.first_frame, v.num_frames) for v in self._videos]

    def summary(self) -> dict:
        from collections import Counter

        return {
            "videos": len(self._videos),
            "classes": len(self.classes),
            "codecs": dict(Counter(v.codec for v in self._videos)),
            "resolutions": dict(Counter(f"{v.width}x{v.height}" for v in self._videos)),
            "fps": dict(Counter(round(v.fps, 3) for v in self._videos)),
            "duration_s": {
                "min": min(v.duration for v in self._videos),
                "max": max(v.duration for v in self._videos),
                "total": sum(v.duration for v in self._videos),
            },
            "skipped": [s.to_json() for s in self.skipped],
        }

    # ---- constructors -------------------------------------------------------------------------------

    @classmethod
    def from_folder(
        cls,
        root: str | Path,
        *,
        on_error: OnError = "raise",
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        num_workers: int | None = None,
        video_stream: int | None = None,
        progress: bool = True,
    ) -> VideoDataset:
        """``root/<class_name>/**/<file>`` with a video extension; labels = positions in sorted class names."""
        check_choice("on_error", on_error, ON_ERROR_CHOICES)
        root = Path(root)
        if not root.is_dir():
            raise ConfigError(f"dataset folder {root} does not exist or is not a folder")
        classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
        if not classes:
            raise ConfigError(
                f"dataset folder {root} has no class sub-folders (expected root/<class>/<video>)"
            )
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
        segments = [(None, None)] * len(paths)
        return cls._build(
            paths,
            labels,
            segments,
            classes,
            on_error,
            cache_dir,
            use_cache,
            num_workers,
            video_stream,
            progress,
            str(root),
        )

    @classmethod
    def from_manifest(
        cls,
        path: str | Path,
        *,
        on_error: OnError = "raise",
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        num_workers: int | None = None,
        video_stream: int | None = None,
        progress: bool = True,
    ) -> VideoDataset:
        """CSV (``path,label[,start_sec,end_sec]`` header) or JSONL with those keys, local or at any fsspec
        URL; rows may name tar shard members and carry probed info (see ``read_manifest``)."""
        check_choice("on_error", on_error, ON_ERROR_CHOICES)
        rows = read_manifest(path)
        labels, classes = labels_to_ints([r.label for r in rows])
        known = [known_info(r) for r in rows]
        return cls._build(
            [r.path for r in rows],
            labels,
            [(r.start, r.end) for r in rows],
            classes,
            on_error,
            cache_dir,
            use_cache,
            num_workers,
            video_stream,
            progress,
            str(path),
            known,
        )

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | Path],
        *,
        labels: Sequence[int] | None = None,
        on_error: OnError = "raise",
        cache_dir: str | Path | None = None,
        use_cache: bool = True,
        num_workers: int | None = None,
        video_stream: int | None = None,
        progress: bool = False,
    ) -> VideoDataset:
        """Files given directly; labels default to 0."""
        check_choice("on_error", on_error, ON_ERROR_CHOICES)
        labels = list(labels) if labels is not None else [0] * len(paths)
        if len(labels) != len(paths):
            raise ConfigError(f"labels has {len(labels)} entries for {len(paths)} paths")
        return cls._build(
            [str(p) for p in paths],
            labels,
            [(None, None)] * len(paths),
            tuple(str(i) for i in sorted(set(labels))),
            on_error,
            cache_dir,
            use_cache,
            num_workers,
            video_stream,
            progress,
            None,
        )

    @classmethod
    def _build(
        cls,
        paths,
        labels,
        segments,
        classes,
        on_error,
        cache_dir,
        use_cache,
        num_workers,
        video_stream,
        progress,
        root,
        known: Sequence[VideoInfo | ConfigError | None] | None = None,
    ) -> VideoDataset:
        # Rows whose manifest carried their probed info (a shard manifest) are not probed again.
        infos: list[VideoInfo | ProbeError | ConfigError | None] = list(known or [None] * len(paths))
        todo = [i for i, k in enumerate(infos) if k is None]
        probed = probe_many(
            [paths[i] for i in todo],
            cache_dir=cache_dir,
            use_cache=use_cache,
            num_workers=num_workers,
            video_stream=video_stream,
            progress=progress,
        )
        for i, found in zip(todo, probed, strict=True):
            infos[i] = found
        videos: list[VideoInfo] = []
        skipped: list[SkippedFile] = []
        for p, label, (start, end), res in zip(paths, labels, segments, infos, strict=True):
            try:
                if not isinstance(res, VideoInfo):
                    raise res or ConfigError(f"{redact(p)}: neither probed nor known")
                if res.start is not None or res.end is not None:
                    videos.append(replace(res, label=label))  # a known segment, as probed and cut
                else:
                    videos.append(res.with_segment(label=label, start=start, end=end))
            except (ProbeError, ConfigError) as exc:
                if on_error == "raise":
                    raise
                reason = exc.reason if isinstance(exc, ProbeError) else str(exc)
                # A signed URL's signature stays out of logs and skip reports.
                log.warning("vidloader: skipping %s: %s", redact(p), redact(reason))
                skipped.append(SkippedFile(redact(p), redact(reason)))
        return cls(videos=videos, classes=classes, skipped=skipped, root=root)


def probe_many(
    paths: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    num_workers: int | None = None,
    video_stream: int | None = None,
    progress: bool = True,
) -> list[VideoInfo | ProbeError]:
    """Probe files in parallel (threads: demuxing is I/O-bound and PyAV drops the GIL), through the cache.

    Args:
        paths: the files.
        cache_dir: the probe cache folder (default: ``default_cache_dir()``).
        use_cache: read and write the probe cache.
        num_workers: probing threads (default: twice the CPUs, at most 8).
        video_stream: the video stream to index (default: FFmpeg's best).
        progress: show a progress bar.

    Returns:
        One VideoInfo, or the ProbeError saying why not, per path, in order.
    """
    from tqdm import tqdm

    workers = num_workers or min(8, (os.cpu_count() or 2) * 2)
    cache = ProbeCache(cache_dir) if use_cache else None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # A remote file's key needs its size and ETag: one request each, made in parallel.
        keys = (
            list(pool.map(lambda p: ProbeCache.key(p, video_stream), paths)) if cache else [None] * len(paths)
        )
    cached = cache.get_many([k for k in keys if k]) if cache else {}
    results: list[VideoInfo | ProbeError | None] = [None] * len(paths)
    todo: list[int] = []
    for i, (p, k) in enumerate(zip(paths, keys, strict=True)):
        if k is not None and k in cached:
            results[i] = _rebase(cached[k], p)
        else:
            todo.append(i)

    def one(i: int) -> VideoInfo | ProbeError:
        try:
            return probe_video(paths[i], video_stream=video_stream)
        except ProbeError as exc:
            return exc

    fresh: dict[str, VideoInfo] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        bar = tqdm(total=len(todo), desc="indexing", unit="file", disable=not progress or len(todo) < 2)
        for i, res in zip(todo, pool.map(one, todo), strict=True):
            results[i] = res
            k = keys[i]
            if isinstance(res, VideoInfo) and k is not None:
                fresh[k] = res
            bar.update(1)
        bar.close()
    if cache:
        cache.put_many(fresh)
        cache.close()
    return [r for r in results if r is not None]


def _rebase(info: VideoInfo, path: str) -> VideoInfo:
    # The cache is keyed by absolute path; keep the spelling the caller used.
    return replace(info, path=path)
