"""Which clips of one video a single decode pass serves: clips whose keyframe runs meet are decoded together
from the first one's keyframe, clips further apart keep their own seek."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from ..dataset import VideoInfo


def shared_decode_groups(info: VideoInfo, clips: Sequence[Sequence[int]]) -> list[list[int]]:
    """Clips of one video that one decode pass serves better than separate ones, as groups of positions
    in ``clips`` (each group sorted by first frame).

    A clip joins the group before it when the keyframe its own seek would start from is at or before the
    group's last frame: decoding on from there then costs no more than seeking (usually much less: with
    long GOPs every clip of a multiview or sliding plan starts from the same keyframe). Clips further apart
    keep their own seek, so two clips minutes apart never decode the minutes between them.

    Args:
        info: the probed video.
        clips: each clip's frame indices.

    Returns:
        Groups of positions in ``clips``.
    """
    order = sorted(range(len(clips)), key=lambda i: min(clips[i]))
    groups: list[list[int]] = []
    end = -1
    for i in order:
        first = info.frame_pts[min(clips[i])]
        last = max(info.frame_pts[j] for j in clips[i])
        k = bisect.bisect_right(info.keyframe_pts, first) - 1
        key = info.keyframe_pts[max(k, 0)] if info.keyframe_pts else first
        if groups and key <= end:
            groups[-1].append(i)
            end = max(end, last)
        else:
            groups.append([i])
            end = last
    return groups
