"""The server-side step of the bridge: copy a batch and advance the position in one atomic call.

Destination entries keep their source IDs, so an entry can never be written twice (Redis refuses
an ID at or below a stream's last one) and the route's position in its state hash moves in the
same script as the copy: a crash at any moment leaves either both or neither.
"""

from __future__ import annotations

import hashlib

# KEYS: source, state hash, dead-letter stream, destination(s)
# ARGV: batch, start ('0'|'$'), now_ms, max_entry_bytes, maxlen (0: none), required fields (csv),
#       renames (csv of from=to), kept fields (csv), matches (csv of field=value), minid ('' none),
#       byte budget of the call, the position this bridge last saw ('' none: to report a rewind)
# Returns {'ok', copied, dead-lettered, position, lag, lag_ms, filtered, capped (0: source
# drained, 1: batch full, 2: byte budget spent), events...} or a refusal {kind, details...}.
COPY_BATCH = r"""
local function cmp(a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  if #am ~= #bm then return #am < #bm and -1 or 1 end
  if am ~= bm then return am < bm and -1 or 1 end
  if #as ~= #bs then return #as < #bs and -1 or 1 end
  if as ~= bs then return as < bs and -1 or 1 end
  return 0
end
local function info(key)
  local t = redis.call('TYPE', key)['ok']
  if t ~= 'stream' then return nil, t end
  local raw = redis.call('XINFO', 'STREAM', key)
  local m = {}
  for i = 1, #raw, 2 do m[raw[i]] = raw[i + 1] end
  return m, t
end

local source, state, dead = KEYS[1], KEYS[2], KEYS[3]
local batch, start, now = tonumber(ARGV[1]), ARGV[2], ARGV[3]
local max_bytes, maxlen = tonumber(ARGV[4]), tonumber(ARGV[5])
local events = {}
local src, stype = info(source)
if stype ~= 'stream' and stype ~= 'none' then return {'source-type', stype} end
for i = 4, #KEYS do
  local _, dtype = info(KEYS[i])
  if dtype ~= 'stream' and dtype ~= 'none' then return {'destination-type', KEYS[i], dtype} end
end
-- Every key this call writes is checked before the first write: a script is not rolled back,
-- so a command failing after the copy began would leave it done with the position unmoved.
local htype = redis.call('TYPE', state)['ok']
if htype ~= 'hash' and htype ~= 'none' then return {'state-type', htype} end
local ltype = redis.call('TYPE', dead)['ok']
if ltype ~= 'stream' and ltype ~= 'none' then return {'dead-letter-type', ltype} end

local pos = redis.call('HGET', state, 'position')
local seq = tonumber(redis.call('HGET', state, 'source_seq') or '0')
if not pos then
  if not src then return {'no-source'} end
  if start == '$' then
    pos, seq = src['last-generated-id'], src['entries-added']
  else
    pos, seq = '0-0', 0
  end
  redis.call('HSET', state, 'position', pos, 'source_seq', seq, 'bridged', 0,
             'dead_lettered', 0, 'lost', 0, 'created_ms', now)
  table.insert(events, 'new-route:' .. pos)
end
if not src then return {'no-source'} end
if ARGV[12] ~= '' and #events == 0 and cmp(pos, ARGV[12]) < 0 then
  table.insert(events, 'rewind:' .. ARGV[12] .. ':' .. pos)
end

local bridged = tonumber(redis.call('HGET', state, 'bridged') or '0')
for i = 4, #KEYS do
  local d = info(KEYS[i])
  if d then
    if cmp(d['last-generated-id'], pos) > 0 then
      return {'foreign-writer', KEYS[i], d['last-generated-id'], pos}
    end
  elseif bridged > 0 and redis.call('HGET', state, 'missing:' .. KEYS[i]) ~= pos then
    redis.call('HSET', state, 'missing:' .. KEYS[i], pos)
    table.insert(events, 'destination-missing:' .. KEYS[i])
  end
end
if cmp(src['last-generated-id'], pos) < 0 and redis.call('HGET', state, 'behind') ~= pos then
  redis.call('HSET', state, 'behind', pos)
  table.insert(events, 'source-behind:' .. src['last-generated-id'])
end

local lost = 0
local first = src['first-entry']
if first and cmp(first[1], pos) > 0 then
  local removed = src['entries-added'] - src['length']
  if removed > seq then
    lost = removed - seq
    seq = removed
    table.insert(events, 'gap:' .. lost .. ':' .. pos .. ':' .. first[1])
  end
end

local required, rename, keep, match = {}, {}, {}, {}
for name in string.gmatch(ARGV[6], '[^,]+') do table.insert(required, name) end
for a, b in string.gmatch(ARGV[7], '([^,=]+)=([^,]*)') do rename[a] = b end
local keeping = false
for name in string.gmatch(ARGV[8], '[^,]+') do keep[name] = true; keeping = true end
local matching = false
for a, b in string.gmatch(ARGV[9], '([^,=]+)=([^,]*)') do match[a] = b; matching = true end
local transform = keeping or next(rename) ~= nil
local copied, dead_count, filtered = 0, 0, 0
local function take(id, fields)
  local size = 0
  for j = 1, #fields do size = size + #fields[j] end
  local reason = nil
  if size > max_bytes then reason = 'entry of ' .. size .. ' bytes over ' .. max_bytes end
  if not reason and #required > 0 then
    local present = {}
    for j = 1, #fields, 2 do present[fields[j]] = true end
    for _, name in ipairs(required) do
      if not reason and not present[name] then reason = 'missing field ' .. name end
    end
  end
  local wanted = true
  if not reason and matching then
    local values = {}
    for j = 1, #fields, 2 do values[fields[j]] = fields[j + 1] end
    for a, b in pairs(match) do
      if values[a] ~= b then wanted = false end
    end
  end
  if reason then
    redis.call('XADD', dead, '*', 'source', source, 'source_id', id, 'reason', reason)
    dead_count = dead_count + 1
  elseif not wanted then
    filtered = filtered + 1
  else
    local out = fields
    if transform then
      out = {}
      for j = 1, #fields, 2 do
        if not keeping or keep[fields[j]] then
          table.insert(out, rename[fields[j]] or fields[j])
          table.insert(out, fields[j + 1])
        end
      end
    end
    if #out == 0 then
      redis.call('XADD', dead, '*', 'source', source, 'source_id', id, 'reason',
                 'no field left after keep_fields')
      dead_count = dead_count + 1
    else
      for i = 4, #KEYS do redis.call('XADD', KEYS[i], id, unpack(out)) end
      copied = copied + 1
    end
  end
  return size
end
-- Read in chunks, doubling up to 256, each no more than the byte budget left holds at the
-- largest entry seen so far (the first: at the largest a copyable entry may be, at most 8);
-- stop once the budget is spent. A call holds about `budget` bytes of entries however large
-- they are (entries much larger than all before them can push one chunk past it), and small
-- entries still go 1,000 per call in a few XRANGEs (each seeks its start in a listpack: ~10 us).
local budget = tonumber(ARGV[11])
local seen, bytes, largest, capped = 0, 0, 1, 0
local want = math.max(1, math.min(batch, 8, math.floor(budget / max_bytes)))
while true do
  local entries = redis.call('XRANGE', source, '(' .. pos, '+', 'COUNT', want)
  for _, entry in ipairs(entries) do
    local size = take(entry[1], entry[2])
    bytes = bytes + size
    if size > largest then largest = size end
    pos = entry[1]
  end
  seen = seen + #entries
  if #entries < want then break end
  if seen >= batch then capped = 1; break end
  if bytes >= budget then capped = 2; break end
  want = math.max(1, math.min(want * 2, 256, batch - seen, math.floor((budget - bytes) / largest)))
end
seq = seq + seen
redis.call('HSET', state, 'position', pos, 'source_seq', seq)
redis.call('HINCRBY', state, 'bridged', copied)
if dead_count > 0 then redis.call('HINCRBY', state, 'dead_lettered', dead_count) end
if lost > 0 then redis.call('HINCRBY', state, 'lost', lost) end
if filtered > 0 then redis.call('HINCRBY', state, 'filtered', filtered) end
if seen > 0 then redis.call('HSET', state, 'last_bridged_ms', now) end
if copied > 0 then
  for i = 4, #KEYS do
    if maxlen > 0 then redis.call('XTRIM', KEYS[i], 'MAXLEN', '~', maxlen) end
    if ARGV[10] ~= '' then redis.call('XTRIM', KEYS[i], 'MINID', '~', ARGV[10]) end
  end
end
local lag = src['entries-added'] - seq
if lag < 0 then lag = 0 end
local lag_ms = 0
local waiting = {}
if capped > 0 then waiting = redis.call('XRANGE', source, '(' .. pos, '+', 'COUNT', 1) end
if #waiting > 0 then
  lag_ms = tonumber(now) - tonumber(string.match(waiting[1][1], '^(%d+)'))
  if lag_ms < 0 then lag_ms = 0 end
end
redis.call('HSET', state, 'lag', lag, 'lag_ms', lag_ms)
return {'ok', copied, dead_count, pos, lag, lag_ms, filtered, capped, unpack(events)}
"""

COPY_BATCH_SHA = hashlib.sha1(COPY_BATCH.encode()).hexdigest()
