"""`vidloader index`: what a dataset holds, and which files cannot be used and why."""

from __future__ import annotations

from ..dataset import VideoDataset


def format_summary(ds: VideoDataset) -> str:
    s = ds.summary()
    d = s["duration_s"]
    lines = [
        f"videos:      {s['videos']}",
        f"classes:     {s['classes']} ({', '.join(ds.classes[:8])}{', ...' if len(ds.classes) > 8 else ''})",
        f"codecs:      {s['codecs']}",
        f"resolutions: {s['resolutions']}",
        f"fps:         {s['fps']}",
        f"duration:    min {d['min']:.2f}s, max {d['max']:.2f}s, total {d['total']:.1f}s ({d['total'] / 3600:.2f}h)",
        f"unreadable:  {len(s['skipped'])}",
    ]
    lines += [f"  {f['path']}: {f['reason']}" for f in s["skipped"]]
    return "\n".join(lines)
