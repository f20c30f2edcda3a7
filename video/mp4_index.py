"""An MP4/MOV file's own sample index: how many frames its video track holds and which are keyframes.

Opening a video a second time just to count its packets costs an FFmpeg stream probe (about
25 ms for a 720p H.264 clip, more than reading the packets). MP4 and MOV files list every
sample in the `moov` box (`stsz` sizes, `stss` sync samples), so for them the count and the
keyframes are read from the index, without decoding or opening a capture.

Only the plain case is trusted; anything else returns None and the caller counts packets:
a file that is not ISO-BMFF, a fragmented file (`moof`), a box reaching past the end of the
file (truncated), not exactly one video track, or an edit list that could drop samples (FFmpeg
removes samples before an edit's start from the packet stream; a single edit that starts no
later than the largest composition offset only shifts the timeline, as encoders write it for
B-frames).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["read_mp4_index"]

# Index boxes larger than this are not read into memory (a 10-hour video's `moov` is a few MB).
_MAX_MOOV_BYTES = 64 << 20


class _NotPlain(Exception):
    """The file is not the plain case this reader trusts."""


def _boxes(
    data: memoryview, start: int = 0, end: int | None = None
) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in `data[start:end]`."""
    end = len(data) if end is None else end
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise _NotPlain
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise _NotPlain
        yield bytes(kind), pos + header, pos + size
        pos += size


def _top_level(handle: BinaryIO, file_size: int) -> tuple[list[bytes], bytes]:
    """Types of the file's top-level boxes and the `moov` box's payload."""
    kinds, moov, pos = [], None, 0
    while pos < file_size:
        handle.seek(pos)
        head = handle.read(16)
        if len(head) < 8:
            raise _NotPlain
        size, kind = struct.unpack_from(">I4s", head)
        header = 8
        if size == 1:
            if len(head) < 16:
                raise _NotPlain
            (size,) = struct.unpack_from(">Q", head, 8)
            header = 16
        elif size == 0:
            size = file_size - pos
        if size < header or pos + size > file_size:  # cut off: a truncated file
            raise _NotPlain
        kinds.append(kind)
        if kind == b"moov":
            if size > _MAX_MOOV_BYTES:
                raise _NotPlain
            handle.seek(pos + header)
            moov = handle.read(size - header)
        pos += size
    if moov is None or len(moov) == 0:
        raise _NotPlain
    return kinds, moov


def _find(data: memoryview, start: int, end: int, path: list[bytes]) -> list[tuple[int, int]]:
    """Payload ranges of the boxes at `path` below `data[start:end]`."""
    found = []
    for kind, a, b in _boxes(data, start, end):
        if kind == path[0]:
            found.extend([(a, b)] if len(path) == 1 else _find(data, a, b, path[1:]))
    return found


def _full_box(data: memoryview, a: int) -> tuple[int, int]:
    """(version, payload start after version and flags) of a full box."""
    return data[a], a + 4


def _video_track(data: memoryview) -> tuple[int, int]:
    """Payload range of the one video track (handler "vide") in the `moov` payload `data`."""
    tracks = [
        (a, b)
        for a, b in _find(data, 0, len(data), [b"trak"])
        if any(
            bytes(data[h + 8 : h + 12]) == b"vide" for h, _ in _find(data, a, b, [b"mdia", b"hdlr"])
        )
    ]
    if len(tracks) != 1:
        raise _NotPlain
    return tracks[0]


def _sample_count(data: memoryview, stbl: tuple[int, int]) -> int:
    """Samples in the track, from its sample size table."""
    for kind in (b"stsz", b"stz2"):
        boxes = _find(data, *stbl, [kind])
        if boxes:
            ((a, _),) = boxes
            _, p = _full_box(data, a)
            # stsz: sample_size, sample_count; stz2: reserved + field_size, sample_count
            return struct.unpack_from(">I", data, p + 4)[0]
    raise _NotPlain


def _keyframes(data: memoryview, stbl: tuple[int, int], count: int) -> tuple[int, ...]:
    """0-based indices of the sync samples (all of them without a sync sample table)."""
    boxes = _find(data, *stbl, [b"stss"])
    if not boxes:
        return tuple(range(count))  # no sync table: every sample is a keyframe
    ((a, b),) = boxes
    _, p = _full_box(data, a)
    (entries,) = struct.unpack_from(">I", data, p)
    if p + 4 + 4 * entries > b:
        raise _NotPlain
    numbers = struct.unpack_from(f">{entries}I", data, p + 4)
    return tuple(n - 1 for n in numbers if 1 <= n <= count)  # 1-based sample numbers


def _max_composition_offset(data: memoryview, stbl: tuple[int, int]) -> int:
    """The largest presentation-minus-decode time offset (`ctts`), 0 without one."""
    boxes = _find(data, *stbl, [b"ctts"])
    if not boxes:
        return 0
    ((a, b),) = boxes
    version, p = _full_box(data, a)
    (entries,) = struct.unpack_from(">I", data, p)
    if p + 4 + 8 * entries > b:
        raise _NotPlain
    pairs = struct.unpack_from(f">{2 * entries}{'i' if version else 'I'}", data, p + 4)
    return max(pairs[1::2], default=0)


def _check_edits(data: memoryview, track: tuple[int, int], stbl: tuple[int, int]) -> None:
    """Raise `_NotPlain` unless the track's edit list (if any) keeps every sample."""
    lists = _find(data, *track, [b"edts", b"elst"])
    if not lists:
        return
    ((a, _),) = lists
    version, p = _full_box(data, a)
    (entries,) = struct.unpack_from(">I", data, p)
    if entries != 1:
        raise _NotPlain
    if version == 1:
        _, media_time, rate = struct.unpack_from(">Qqi", data, p + 4)
    else:
        _, media_time, rate = struct.unpack_from(">Iii", data, p + 4)
    if rate != 1 << 16 or not 0 <= media_time <= _max_composition_offset(data, stbl):
        raise _NotPlain


def read_mp4_index(path: str | os.PathLike) -> tuple[int, tuple[int, ...]] | None:
    """(frame count, keyframe indices) of an MP4/MOV file's video track, from its index.

    Keyframes are sample indices in decode order, as a packet scan reports them. None when the
    file is not the plain case this reader trusts (see the module docstring): count packets then.
    """
    try:
        file_size = os.path.getsize(path)
        with open(path, "rb") as handle:
            head = handle.read(12)
            if len(head) < 12 or head[4:8] not in (b"ftyp", b"moov", b"wide", b"free", b"mdat"):
                return None
            kinds, moov = _top_level(handle, file_size)
        if b"moof" in kinds:  # fragmented: the samples are listed in the fragments
            return None
        data = memoryview(moov)
        track = _video_track(data)
        stbls = _find(data, *track, [b"mdia", b"minf", b"stbl"])
        if len(stbls) != 1:
            return None
        count = _sample_count(data, stbls[0])
        if count <= 0:
            return None
        _check_edits(data, track, stbls[0])
        return count, _keyframes(data, stbls[0], count)
    except (_NotPlain, OSError, struct.error, ValueError):
        return None
