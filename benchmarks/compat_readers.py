"""The readers benchmarks/compat.py compares (vidloader's PyAV backend and the benchmark's peers), and how
their frames are judged: clip by clip against a sequential PyAV decode of the intact file."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import numpy as np

CLIP = 4
COLOUR_TOLERANCE = 6.0


def truth(path: Path) -> list[np.ndarray]:
    """The intact file's frames in presentation order (a plain sequential PyAV decode, rgb24)."""
    import av

    with av.open(str(path)) as c:
        stream = c.streams.best("video")
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in c.decode(stream)]
    return [f for _, f in sorted(frames, key=lambda t: t[0])]


def clips_for(n: int) -> list[list[int]]:
    slide = [list(range(s, min(s + CLIP, n))) for s in range(0, n, CLIP)]
    rng = random.Random(n)
    rand = []
    for _ in range(8):
        start, stride = rng.randrange(n), rng.choice([1, 2, 3])
        rand.append(sorted({min(start + stride * j, n - 1) for j in range(CLIP)}))
    return slide + rand


class VidloaderReader:
    def __init__(self, path: Path) -> None:
        import vidloader as vl
        from vidloader.backends import PyAVBackend

        self.info = vl.probe_video(path)
        self.backend = PyAVBackend()
        self.count = self.info.num_frames

    def position(self, i: int) -> int:
        return i  # resolved by pts in run(); vidloader's index may skip undecodable frames

    def decode(self, indices: list[int]) -> np.ndarray:
        return self.backend.decode_clip(self.info, indices).frames


class PeerReader:
    def __init__(self, path: Path, name: str) -> None:
        import av

        from vidloader.cli import PEERS

        with av.open(str(path)) as c:
            stream = c.streams.best("video")
            index = stream.index
        self.info = SimpleNamespace(path=str(path), stream_index=index)
        self.peer = PEERS[name]()
        self.count = frame_count(name, path, index)

    def decode(self, indices: list[int]) -> np.ndarray:
        return np.asarray(self.peer.decode(self.info, indices, None))


def frame_count(name: str, path: Path, index: int) -> int | None:
    """What the reader's own index says (None where it has none)."""
    if name == "opencv":
        import cv2

        cap = cv2.VideoCapture(str(path))
        try:
            return int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        finally:
            cap.release()
    if name == "decord":
        import decord

        return len(decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1))
    if name == "torchcodec":
        from torchcodec.decoders import VideoDecoder

        return int(VideoDecoder(str(path), stream_index=index, seek_mode="exact").metadata.num_frames)
    if name == "pyav-naive":
        import av

        with av.open(str(path)) as c:
            return int(c.streams[index].frames) or None
    return None


def judge(got: np.ndarray, want: list[np.ndarray], i: int) -> str:
    """'exact', 'close' (same frame, another colour conversion), 'rotated' (the display matrix applied)
    or 'wrong'."""
    if got.shape == want[i].shape and np.array_equal(got, want[i]):
        return "exact"
    if got.shape != want[i].shape:
        for k in (1, 3, 2):
            if got.shape == np.rot90(want[i], k).shape and judge(np.rot90(got, -k), want, i) != "wrong":
                return "rotated"
        return "wrong"
    diffs = {
        j: float(np.abs(got.astype(np.int16) - want[j]).mean())
        for j in range(max(0, i - 3), min(len(want), i + 4))
    }
    best = min(diffs, key=lambda j: diffs[j])
    return "close" if best == i and diffs[i] <= COLOUR_TOLERANCE else "wrong"


def describe(exc: BaseException, path: Path) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text.replace(str(path), path.name)[:160]}"


def run_reader(name: str, path: Path, source: Path) -> dict:
    want = truth(source)
    n_file = len(want)
    row: dict = {
        "frames_in_file": n_file,
        "served": 0,
        "wrong": 0,
        "clip_errors": 0,
        "exact": True,
        "rotated": False,
    }
    try:
        reader = VidloaderReader(path) if name == "vidloader" else PeerReader(path, name)
    except Exception as exc:  # a peer that cannot open the file: the row says so
        row["error"] = describe(exc, path)
        row["served"], row["count"] = 0, None
        return row
    row["count"] = reader.count
    # vidloader asks for its own index (which leaves undecodable frames out); peers for every frame.
    n = reader.count if name == "vidloader" else n_file
    to_truth = list(range(n))
    if name == "vidloader":
        src_pts = sorted(truth_pts(source))
        to_truth = [src_pts.index(p) if p in src_pts else -1 for p in reader.info.frame_pts]
    served: set[int] = set()
    wrong: set[int] = set()
    errors: list[str] = []
    for indices in clips_for(max(n, 1)) if n else []:
        try:
            frames = reader.decode(indices)
        except Exception as exc:
            row["clip_errors"] += 1
            errors.append(describe(exc, path))
            continue
        for j, i in enumerate(indices):
            t = to_truth[i] if i < len(to_truth) else -1
            verdict = judge(frames[j], want, t) if 0 <= t < n_file else "wrong"
            if verdict == "wrong":
                wrong.add(i)
            else:
                served.add(t)
                row["exact"] &= verdict in ("exact", "rotated")
                row["rotated"] |= verdict == "rotated"
    row["served"], row["wrong"] = len(served), len(wrong)
    if errors:
        row["first_error"] = errors[0]
    return row


def truth_pts(path: Path) -> list[int]:
    import av

    with av.open(str(path)) as c:
        return [int(f.pts) for f in c.decode(c.streams.best("video"))]
