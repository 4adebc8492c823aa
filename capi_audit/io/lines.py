"""Physical lines of a text file, streamed with bounded memory.

Every line-based reader counts lines the same way: a physical line ends at LF, CRLF or a lone CR
(mixed endings allowed). Files are opened by content, not by name: gzip (by its magic bytes,
so `.jsonl.gz` and a gzip without the suffix both work), UTF-16 with a BOM (LE/BE), else UTF-8
with an optional BOM. A line that is not valid UTF-8 is refused with that reason; a line longer
than MAX_LINE_BYTES is refused with its length, streamed past without being held in memory, and
the payload events it held are counted by their `"event_name"` keys.

Limits (docs/loading.md): one line up to 32 MiB (a logged Conversions API batch of 1,000 events
with long URLs is 2-5 MB; 32 MiB leaves a wide margin). Memory stays within a few chunks of
CHUNK bytes plus one line.
"""

from __future__ import annotations

import codecs
import gzip
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from capi_audit.errors import InputError

MAX_LINE_BYTES = 32 * 1024 * 1024
# A payload-log line is one request: Meta takes at most 1,000 events per request
# (https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api), GA4
# Measurement Protocol at most 25 events and 130 kB
# (https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events).
# 16 MiB is three times the largest real batch; a line near 32 MiB of 200,000 tiny events
# needed about 1 GB to stage.
PAYLOAD_MAX_LINE_BYTES = 16 * 1024 * 1024
CHUNK = 4 * 1024 * 1024
_SPLIT = re.compile(r"\r\n|\r|\n")
_SEP_B = re.compile(rb"\r\n|\r|\n")
_EVENT_KEY = b'"event_name"'


@dataclass
class Refused:
    """A physical line the reader could not take as text."""

    line: int
    reason: str
    events: int | None = None  # payload events the line held (counted by key), when known


@dataclass
class LineStats:
    """What a pass over a file saw."""

    physical: int = 0
    blank: int = 0
    endings: set[str] = field(default_factory=set)
    encoding: str = "utf-8"


def open_binary(file: Path) -> BinaryIO:
    """Open a file for reading bytes; gzip is recognised by its magic bytes."""
    try:
        fh = open(file, "rb")  # noqa: SIM115 - returned to the caller
        magic = fh.read(6)
        fh.seek(0)
    except IsADirectoryError as exc:
        raise InputError(f"{file}: not a file") from exc
    except PermissionError as exc:
        raise InputError(f"{file}: cannot read the file (permission denied)") from exc
    except OSError as exc:
        raise InputError(f"{file}: cannot read the file: {exc.strerror or exc}") from exc
    if magic[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=fh, mode="rb")  # type: ignore[return-value]
    for kind, test in _OTHER_CONTAINERS:
        if test(magic):
            fh.close()
            raise InputError(f"{file}: the file is {kind}, not text; " + _CONTAINER_FIX[kind])
    return fh  # type: ignore[return-value]


# Containers other than gzip, told by their first bytes: their content read as text was a
# header "not valid UTF-8" or every line rejected as such.
_OTHER_CONTAINERS = (
    ("a ZIP archive", lambda m: m[:4] == b"PK\x03\x04"),
    ("zstd-compressed", lambda m: m[:4] == b"\x28\xb5\x2f\xfd"),
    ("bzip2-compressed", lambda m: m[:3] == b"BZh" and m[3:4].isdigit()),
    ("xz-compressed", lambda m: m[:6] == b"\xfd7zXZ\x00"),
)
_CONTAINER_FIX = {
    "a ZIP archive": "an Excel workbook (.xlsx) is one: export the sheet as CSV, or unzip the archive and name the file in it",
    "zstd-compressed": "decompress it (`zstd -d`) or re-compress it with gzip",
    "bzip2-compressed": "decompress it (`bunzip2`) or re-compress it with gzip",
    "xz-compressed": "decompress it (`unxz`) or re-compress it with gzip",
}


def _read(fh: BinaryIO, file: Path, n: int) -> bytes:
    try:
        return fh.read(n)
    except (gzip.BadGzipFile, EOFError, zlib.error) as exc:
        raise InputError(f"{file}: the gzip stream is corrupt or truncated ({exc.__class__.__name__}); "
                         "re-export or re-compress the file") from exc
    except OSError as exc:
        raise InputError(f"{file}: cannot read the file: {exc.strerror or exc}") from exc


def head_bytes(file: Path, n: int = 65536) -> bytes:
    """The first n (decompressed) bytes."""
    with open_binary(file) as fh:
        return _read(fh, file, n)


def detect_encoding(head: bytes) -> str:
    """'utf-16' for a UTF-16 BOM, else 'utf-8'."""
    return "utf-16" if head.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8"


def is_gzip(file: Path) -> bool:
    """True when the file starts with the gzip magic bytes."""
    try:
        with open(file, "rb") as fh:
            return fh.read(2) == b"\x1f\x8b"
    except OSError:
        return False


def head_text(file: Path, n: int = 65536) -> str:
    """The first n (decompressed) bytes decoded by the detected encoding, BOM removed."""
    head = head_bytes(file, n)
    return head.decode(detect_encoding(head), errors="replace").lstrip("\ufeff")


def is_empty(file: Path) -> bool:
    """True when a file holds nothing but whitespace (and a BOM): an empty source."""
    try:
        if file.stat().st_size == 0:
            return True
    except OSError:
        return False
    head = head_bytes(file, 1 << 16)
    if len(head) >= 1 << 16:
        return False
    enc = detect_encoding(head)
    text = head.decode(enc, errors="replace").lstrip("\ufeff")
    return not text.strip()


def iter_lines(file: Path, stats: LineStats | None = None, *, max_line: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[int, str | None, Refused | None]]:
    """Yield (line number from 1, text or None for an empty line, refusal or None) per physical line."""
    stats = stats if stats is not None else LineStats()
    with open_binary(file) as fh:
        first = _read(fh, file, CHUNK)
        enc = detect_encoding(first)
        stats.encoding = enc
        if enc == "utf-16":
            yield from _iter_utf16(fh, file, first, stats, max_line)
        else:
            if first.startswith(b"\xef\xbb\xbf"):
                first = first[3:]
            yield from _iter_utf8(fh, file, first, stats, max_line)


def _endings(seps: list[str], stats: LineStats) -> None:
    for s in set(seps):
        stats.endings.add({"\r\n": "CRLF", "\r": "CR", "\n": "LF"}[s])


def _iter_utf8(fh: BinaryIO, file: Path, chunk: bytes, stats: LineStats, max_line: int
               ) -> Iterator[tuple[int, str | None, Refused | None]]:
    n = 0
    carry = b""
    limit = f"the limit is {max_line // 1048576} MiB"
    while True:
        at_eof = not chunk
        data = carry + chunk
        carry = b""
        if not at_eof and data.endswith(b"\r"):
            data, carry = data[:-1], b"\r"  # a CR at the end of a chunk may start a CRLF
        parts = re.split(rb"(\r\n|\r|\n)", data)  # [line, sep, line, sep, ..., tail]
        if at_eof:
            body, tail = parts, b""
            if len(body) > 1 and body[-1] == b"":
                body = body[:-1]  # nothing after the final separator
            elif body == [b""]:
                body = []
        else:
            body, tail = parts[:-1], parts[-1]
        for i in range(0, len(body), 2):
            raw = body[i]
            if i + 1 < len(body):
                stats.endings.add({b"\r\n": "CRLF", b"\r": "CR", b"\n": "LF"}[body[i + 1]])
            n += 1
            stats.physical += 1
            if len(raw) > max_line:
                yield n, None, Refused(n, f"line too long ({len(raw):,} bytes; {limit})", raw.count(_EVENT_KEY))
            elif not raw:
                stats.blank += 1
                yield n, None, None
            else:
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield n, None, Refused(n, "invalid UTF-8", raw.count(_EVENT_KEY))
                else:
                    # files joined with `cat` carry each one's byte-order mark into a line's start:
                    # not part of the record (JSON lines with it were rejected as broken JSON)
                    yield n, (text[1:] if text.startswith("\ufeff") and len(text) > 1 else text), None
        if at_eof:
            break
        if carry and tail:
            tail, carry = tail + carry, b""
        carry = tail + carry
        chunk = _read(fh, file, CHUNK)
        if len(carry) > max_line:
            # stream past the rest of an over-long line without holding it
            n += 1
            stats.physical += 1
            events, size = carry.count(_EVENT_KEY), len(carry)
            prev = carry[-(len(_EVENT_KEY) - 1):]
            carry = b""
            while chunk:
                m = re.search(rb"\r\n|\r|\n", chunk)
                part = chunk if m is None else chunk[: m.start()]
                events += (prev + part).count(_EVENT_KEY)
                prev = (prev + part)[-(len(_EVENT_KEY) - 1):]
                size += len(part)
                if m is not None:
                    sep = chunk[m.start():m.end()]
                    stats.endings.add({b"\r\n": "CRLF", b"\r": "CR", b"\n": "LF"}[sep])
                    chunk = chunk[m.end():]
                    if sep == b"\r" and not chunk:
                        chunk = _read(fh, file, CHUNK)
                        if chunk.startswith(b"\n"):
                            chunk = chunk[1:]
                    if not chunk:
                        chunk = _read(fh, file, CHUNK)
                    break
                chunk = _read(fh, file, CHUNK)
            yield n, None, Refused(n, f"line too long ({size:,} bytes; {limit})", events)


def _iter_utf16(fh: BinaryIO, file: Path, first: bytes, stats: LineStats, max_line: int
                ) -> Iterator[tuple[int, str | None, Refused | None]]:
    dec = codecs.getincrementaldecoder("utf-16")(errors="replace")
    n = 0
    carry = ""
    chunk = first
    while True:
        at_eof = not chunk
        text = carry + dec.decode(chunk, final=at_eof)
        if not at_eof and text.endswith("\r"):
            text, carry = text[:-1], "\r"
        else:
            carry = ""
        parts = _SPLIT.split(text)
        seps = _SPLIT.findall(text)
        _endings(seps, stats)
        if at_eof:
            lines = parts if parts[-1] != "" else parts[:-1]
        else:
            lines, tail = parts[:-1], parts[-1]
            carry = tail + carry
        for raw in lines:
            n += 1
            stats.physical += 1
            if len(raw) * 2 > max_line:
                yield n, None, Refused(n, f"line too long (over {max_line // 1048576} MiB)", None)
            elif not raw:
                stats.blank += 1
                yield n, None, None
            else:
                yield n, raw, None
        if at_eof:
            break
        if len(carry) * 2 > max_line * 2:
            raise InputError(f"{file}: a UTF-16 line is longer than {max_line // 1048576} MiB")
        chunk = _read(fh, file, CHUNK)


def count_lines(file: Path, start: int = 1) -> tuple[int, LineStats]:
    """(non-empty physical lines from line `start` on, stats of the whole file), at C speed."""
    stats = LineStats()
    with open_binary(file) as fh:
        chunk = _read(fh, file, CHUNK)
        stats.encoding = detect_encoding(chunk)
        if stats.encoding == "utf-16":
            nonempty = sum(1 for n, txt, ref in iter_lines(file, stats) if n >= start and (txt or ref))
            return nonempty, stats
        total = nonempty = 0
        carry = b""
        while True:
            at_eof = not chunk
            data = carry + chunk
            carry = b""
            if not at_eof and data.endswith(b"\r"):
                data, carry = data[:-1], b"\r"
            seps = _SEP_B.findall(data)
            for s in set(seps):
                stats.endings.add({b"\r\n": "CRLF", b"\r": "CR", b"\n": "LF"}[s])
            parts = _SEP_B.split(data)
            if not at_eof:
                carry = parts.pop() + carry
                if len(carry) > MAX_LINE_BYTES:  # only whether the line is empty matters here
                    carry = b"x" + (b"\r" if carry.endswith(b"\r") else b"")
            elif parts and parts[-1] == b"":
                parts.pop()
            if total + len(parts) >= start:
                skip = max(0, start - 1 - total)
                sub = parts[skip:]
                nonempty += len(sub) - sub.count(b"")
            total += len(parts)
            if at_eof:
                break
            chunk = _read(fh, file, CHUNK)
    stats.physical = total
    return nonempty, stats
