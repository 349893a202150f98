"""Which streams this host's code writes and reads: the evidence `qtctl fleet` uses to show a
stream produced on one host and consumed on another.

Evidence, not certainty: a file under the code roots (or a fleet env file) that names the stream
as a whole token and calls XADD is a producer, one that calls XREADGROUP/XREAD/XRANGE a reader.
Files are read through the root-safe walk (no symlink is followed), each one capped."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from qtctl.adapters import safe_walk
from qtctl.diagnosis.stream_names import TEXT_LIMIT, bare, references

WRITES = re.compile(rb"\bxadd\b", re.IGNORECASE)
READS = re.compile(rb"\b(?:xreadgroup|xread|xrange|xrevrange|xautoclaim)\b", re.IGNORECASE)
MAX_STREAMS = 500  # a host names more than this many streams only in a hostile Redis


@dataclass(frozen=True)
class StreamUse:
    """How this host's code uses one stream (its bare name, without the fleet prefix)."""

    name: str
    writes: bool
    reads: bool

    def as_dict(self) -> dict[str, object]:
        """The JSON shape in a host record."""
        return {"name": self.name, "writes": self.writes, "reads": self.reads}


def stream_use(keys: Sequence[str], prefix: str, roots: Sequence[str]) -> list[StreamUse]:
    """For each stream key, whether files that name it (by its key or its bare name) write or
    read it."""
    bare_names = {key: bare(key, prefix) for key in sorted(set(keys))[:MAX_STREAMS]}
    found, _complete = references([*bare_names, *bare_names.values()], roots)
    uses = []
    for key, name in bare_names.items():
        writes = reads = False
        for path in dict.fromkeys([*found.get(key, ()), *found.get(name, ())]):
            data = safe_walk.read_head(path, TEXT_LIMIT)  # b'' when gone or not plain
            writes = writes or bool(WRITES.search(data))
            reads = reads or bool(READS.search(data))
        if writes or reads:
            uses.append(StreamUse(name, writes, reads))
    return uses
