"""The commit after a checkpoint: one server-side call acknowledges, dead-letters and counts.

A rejected entry is dead-lettered by the same call that acknowledges it, and only if that
XACK acknowledged it (returned 1): a commit that already happened before a crash acknowledged
it then, so the replayed commit writes nothing. So each rejected record appears in the
dead-letter stream exactly once, across crashes, as it is counted once in the checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

# KEYS: stats hash, seen-trades set, dead-letter stream, then the streams.
# ARGV: group, dead-letter maxlen; per stream: n, ids...; per stream: m, (id, reason, detail)...;
# then n_seen, trade ids...; then counter field/values.
COMMIT = """
local streams = #KEYS - 3
local at, acked, dead = 3, 0, 0
for k = 1, streams do
  local n = tonumber(ARGV[at])
  for i = at + 1, at + n, 500 do
    local last = math.min(i + 499, at + n)
    acked = acked + redis.call('XACK', KEYS[3 + k], ARGV[1], unpack(ARGV, i, last))
  end
  at = at + n + 1
end
for k = 1, streams do
  local m = tonumber(ARGV[at])
  for i = at + 1, at + 3 * m, 3 do
    if redis.call('XACK', KEYS[3 + k], ARGV[1], ARGV[i]) == 1 then
      redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*', 'source_id', ARGV[i],
        'reason', ARGV[i + 1], 'detail', ARGV[i + 2], 'stream', KEYS[3 + k])
      dead = dead + 1
    end
  end
  at = at + 3 * m + 1
end
local s = tonumber(ARGV[at])
for i = at + 1, at + s, 500 do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + 499, at + s)))
end
at = at + s + 1
if #ARGV >= at then redis.call('HSET', KEYS[1], unpack(ARGV, at, #ARGV)) end
return {acked, dead}
"""
DEAD_LETTER_MAXLEN = 100_000


@dataclass(frozen=True)
class DeadLetter:
    """A rejected entry waiting for the commit that acknowledges it."""

    entry_id: str
    reason: str
    detail: str


def commit(
    client: redis.Redis,
    keys: tuple[str, str, str],
    group: str,
    streams: Sequence[str],
    to_ack: dict[str, list[str]],
    dead: dict[str, list[DeadLetter]],
    seen: Sequence[str],
    counters: dict[str, str],
) -> None:
    """Acknowledge the learned entries, dead-letter the rejected ones, record the seen trade
    ids and write the counters: all in one call."""
    args: list[str | int] = [group, DEAD_LETTER_MAXLEN]
    for stream in streams:
        rejected = {d.entry_id for d in dead[stream]}
        plain = [i for i in to_ack[stream] if i not in rejected]
        args += [len(plain), *plain]
    for stream in streams:
        args.append(len(dead[stream]))
        for letter in dead[stream]:
            args += [letter.entry_id, letter.reason, letter.detail[:500]]
    args += [len(seen), *seen]
    args += [x for kv in counters.items() for x in kv]
    client.eval(COMMIT, 3 + len(streams), *keys, *streams, *args)
