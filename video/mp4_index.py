"""An MP4/MOV file's own sample index: how many frames its video track holds and which are keyframes.

Opening a video a second time just to count its packets costs an FFmpeg stream probe (about
25 ms for a 720p H.264 clip, more than reading the packets). MP4 and MOV files list every
sample in the `moov` box (`stsz` sizes, `stss` sync samples), so for them the count and the
keyframes are read from the index, without decoding or opening a capture.

Only the plain case is trusted; anything else returns None and the caller counts packets:
a file that is not ISO-BMFF; a fragmented file (`moof`); a box reaching past the end of the
file (truncated); chunks of samples of any track outside the media data or overlapping (a
corrupt index: FFmpeg stops at the first sample it cannot read); not exactly one video track;
compact sample sizes (`stz2`); an edit list that could drop samples (FFmpeg removes samples
before an edit's start from the packet stream; a single edit that starts no later than the
largest composition offset only shifts the timeline, as encoders write it for B-frames).
A corrupt index that still passes (a wrong sample size) makes FFmpeg stop early: reading
then raises the usual `VideoError` naming the file and the frame that cannot be decoded.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from typing import BinaryIO

import numpy as np

__all__ = ["read_mp4_index"]

# Index boxes larger than this are not read into memory (a 10-hour video's `moov` is a few MB).
_MAX_MOOV_BYTES = 64 << 20
# Boxes walked per level: real files have a handful; a file made of millions of tiny boxes
# would otherwise keep this Python loop busy for seconds (the packet scan handles it then).
_MAX_BOXES = 4096


class _NotPlain(Exception):
    """The file is not the plain case this reader trusts."""


def _header(head: bytes | memoryview, pos: int, end: int) -> tuple[bytes, int, int]:
    """(type, header length, box size) of the box whose header starts at `head[0]`, at offset
    `pos` of a region ending at `end`; raises `_NotPlain` when it does not fit there."""
    if len(head) < 8:
        raise _NotPlain
    size, kind = struct.unpack_from(">I4s", head)
    header = 8
    if size == 1:  # a 64-bit size follows
        if len(head) < 16:
            raise _NotPlain
        (size,) = struct.unpack_from(">Q", head, 8)
        header = 16
    elif size == 0:  # to the end
        size = end - pos
    if size < header or pos + size > end:  # cut off (a truncated file) or nonsense
        raise _NotPlain
    return bytes(kind), header, size


def _boxes(data: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes in `data[start:end]`."""
    pos = start
    for _ in range(_MAX_BOXES):
        if pos + 8 > end:
            return
        kind, header, size = _header(data[pos : min(pos + 16, end)], pos, end)
        yield kind, pos + header, pos + size
        pos += size
    raise _NotPlain


def _top_level(handle: BinaryIO, file_size: int) -> tuple[list[tuple[bytes, int, int]], bytes]:
    """(type, payload start, end) of the file's top-level boxes, and the `moov` box's payload."""
    boxes, moov, pos = [], None, 0
    while pos < file_size:
        if len(boxes) >= _MAX_BOXES:
            raise _NotPlain
        handle.seek(pos)
        kind, header, size = _header(handle.read(16), pos, file_size)
        boxes.append((kind, pos + header, pos + size))
        if kind == b"moov":
            if size > _MAX_MOOV_BYTES:
                raise _NotPlain
            handle.seek(pos + header)
            moov = handle.read(size - header)
        pos += size
    if not moov:
        raise _NotPlain
    return boxes, moov


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


def _tracks(data: memoryview) -> list[tuple[bytes, tuple[int, int], tuple[int, int]]]:
    """(handler type, track payload range, sample table payload range) of every track in the
    `moov` payload `data`."""
    tracks = []
    for a, b in _find(data, 0, len(data), [b"trak"]):
        handlers = _find(data, a, b, [b"mdia", b"hdlr"])
        stbls = _find(data, a, b, [b"mdia", b"minf", b"stbl"])
        if len(handlers) != 1 or len(stbls) != 1:
            raise _NotPlain
        h, _ = handlers[0]
        tracks.append((bytes(data[h + 8 : h + 12]), (a, b), stbls[0]))
    return tracks


_CODES = {"I": ">u4", "i": ">i4", "Q": ">u8", "q": ">i8"}


def _table(
    data: memoryview, parent: tuple[int, int], path: list[bytes], formats: tuple[str, str]
) -> np.ndarray | None:
    """The entries of the full box at `path` below `parent`: an entry count, then per entry the
    fields `formats[version]` (I/i: 32-bit, Q/q: 64-bit, unsigned/signed) as an int64 array
    `[entries, fields]`; None when the box is absent. Raises `_NotPlain` when the box is shorter
    than its count says, or appears more than once."""
    boxes = _find(data, *parent, path)
    if not boxes:
        return None
    if len(boxes) > 1:
        raise _NotPlain
    ((a, b),) = boxes
    version, p = _full_box(data, a)
    fields = formats[min(version, 1)]
    dtype = np.dtype([(f"f{i}", _CODES[code]) for i, code in enumerate(fields)])
    (entries,) = struct.unpack_from(">I", data, p)
    if p + 4 + entries * dtype.itemsize > b:
        raise _NotPlain
    raw = np.frombuffer(data, dtype, count=entries, offset=p + 4)
    return np.stack([raw[name].astype(np.int64) for name in dtype.names], 1).reshape(entries, -1)


def _chunks(data: memoryview, stbl: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int]:
    """Byte offset and length of each chunk of a track (int64 `[chunks]` each; a chunk is a run
    of samples stored back to back), and the track's sample count.

    Per chunk, not per sample: a PCM audio track lists a sample per audio frame (tens of
    millions in a long file), in a few hundred chunks."""
    boxes = _find(data, *stbl, [b"stsz"])  # stz2 (compact sizes) is rare: the scan handles it
    if len(boxes) != 1:
        raise _NotPlain
    ((a, b),) = boxes
    _, p = _full_box(data, a)
    constant, count = struct.unpack_from(">II", data, p)
    offsets = _table(data, stbl, [b"stco"], ("I", "I"))
    if offsets is None:
        offsets = _table(data, stbl, [b"co64"], ("Q", "Q"))
    # per run of chunks: first chunk (1-based), samples per chunk, sample description
    runs = _table(data, stbl, [b"stsc"], ("III", "III"))
    if offsets is None or runs is None:
        raise _NotPlain
    if len(offsets) == 0 or len(runs) == 0:
        if count:
            raise _NotPlain
        return np.zeros(0, np.int64), np.zeros(0, np.int64), 0
    first = runs[:, 0] - 1
    if first[0] != 0 or (np.diff(first) <= 0).any() or (runs[:, 1] <= 0).any():
        raise _NotPlain
    per_chunk = runs[np.searchsorted(first, np.arange(len(offsets)), "right") - 1, 1]
    if per_chunk.sum() != count:
        raise _NotPlain
    if constant:
        lengths = per_chunk * constant
    else:
        if p + 8 + 4 * count > b:
            raise _NotPlain
        sizes = np.frombuffer(data, ">u4", count=count, offset=p + 8).astype(np.int64)
        lengths = np.add.reduceat(sizes, np.concatenate([[0], np.cumsum(per_chunk)[:-1]]))
    return offsets[:, 0], lengths, int(count)


def _check_layout(chunks: list[tuple[np.ndarray, np.ndarray]], media: np.ndarray) -> None:
    """Raise `_NotPlain` unless all chunks (offset, length) of all tracks lie inside the media
    data boxes `media` (`[M, 2]` payload start, end; in file order) without overlapping: a
    corrupt or cut index is not believed (FFmpeg stops at the first sample it cannot read, of
    any track)."""
    if len(media) == 0:  # the samples live elsewhere (another file) or nowhere
        raise _NotPlain
    starts = np.concatenate([start for start, _ in chunks])
    ends = starts + np.concatenate([length for _, length in chunks])
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    box = np.searchsorted(media[:, 0], starts, "right") - 1
    inside = (box >= 0) & (ends <= media[box.clip(min=0), 1])
    if not inside.all() or (ends[:-1] > starts[1:]).any():
        raise _NotPlain


def _keyframes(data: memoryview, stbl: tuple[int, int], count: int) -> tuple[int, ...]:
    """0-based indices of the sync samples (all of them without a sync sample table)."""
    sync = _table(data, stbl, [b"stss"], ("I", "I"))
    if sync is None:
        return tuple(range(count))  # no sync table: every sample is a keyframe
    numbers = sync[:, 0]  # 1-based sample numbers
    return tuple((numbers[(numbers >= 1) & (numbers <= count)] - 1).tolist())


def _check_edits(data: memoryview, track: tuple[int, int], stbl: tuple[int, int]) -> None:
    """Raise `_NotPlain` unless the track's edit list (if any) keeps every sample."""
    edits = _table(data, track, [b"edts", b"elst"], ("Iii", "Qqi"))  # duration, start, rate
    if edits is None:
        return
    if len(edits) != 1:
        raise _NotPlain
    _, media_time, rate = edits[0]
    shifts = _table(data, stbl, [b"ctts"], ("II", "Ii"))  # count, composition offset
    largest_shift = int(shifts[:, 1].max()) if shifts is not None and len(shifts) else 0
    if rate != 1 << 16 or not 0 <= media_time <= largest_shift:
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
            boxes, moov = _top_level(handle, file_size)
        kinds = [kind for kind, _, _ in boxes]
        if b"moof" in kinds:  # fragmented: the samples are listed in the fragments
            return None
        media = np.array([(a, b) for kind, a, b in boxes if kind == b"mdat"], np.int64)
        data = memoryview(moov)
        tracks = _tracks(data)
        videos = [i for i, (handler, _, _) in enumerate(tracks) if handler == b"vide"]
        if len(videos) != 1:
            return None
        _, track, stbl = tracks[videos[0]]
        chunks = [_chunks(data, table) for _, _, table in tracks]
        _check_layout([(start, length) for start, length, _ in chunks], media.reshape(-1, 2))
        count = chunks[videos[0]][2]
        if count <= 0:
            return None
        _check_edits(data, track, stbl)
        return count, _keyframes(data, stbl, count)
    except (_NotPlain, OSError, struct.error, ValueError):
        return None
