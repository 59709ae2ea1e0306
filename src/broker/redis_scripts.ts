/**
 * Lua scripts of the Redis transport. Each runs atomically on the server,
 * so a message is never in a state where a crash of ours could lose it.
 *
 * Key and value layouts are kombu 5.2's: `unacked` hash of
 * `[envelope, exchange, routing_key]`, `unacked_index` sorted set scored by
 * delivery time (float seconds).
 *
 * @module
 */

/**
 * Pop up to ARGV[1] messages from KEYS[1..n-4] in order and record each one
 * as unacknowledged, in one step. KEYS[n-3] = unacked_index, KEYS[n-2] =
 * unacked, KEYS[n-1] = parked list, KEYS[n] = this consumer's take record.
 * A list element that is not a JSON object with a `properties` object is
 * moved to the parked list.
 *
 * A delivery tag that is missing, not a string, not plain ASCII
 * (`[A-Za-z0-9._:-]`, at most 200 bytes) or already unacknowledged (a
 * reused tag) is replaced by a fresh one: every delivery is recorded under a tag that the consumer
 * receives exactly and that no other delivery shares.
 *
 * ARGV[2] is the take's sequence id. The result is kept in the take record
 * (a hash: `seq`, `at`: the take's time, its deliveries' `unacked_index`
 * score, `out`: each delivery's position, tag and envelope length, its
 * envelope being the head of its `unacked` entry; a parked element's text),
 * and a call with the id of the recorded take returns the recorded result
 * instead of taking again (without what is no longer unacknowledged under
 * that score by then: settled, or restored and perhaps taken again under
 * the same tag with a rewritten envelope): a take whose reply
 * was lost (and that ioredis resends after reconnecting, or the consumer
 * repeats: on its own RESP connection a lost reply fails the take, and the
 * next take goes with the same id) hands over what it took instead of
 * stranding it.
 *
 * A take that finds every list empty returns an empty array and leaves the
 * take record as it was.
 *
 * ARGV[2 + i] is the queue KEYS[i] is a list of, recorded as the routing
 * key (with exchange `""`) of a message whose `delivery_info` has no
 * string exchange and routing key (absent: `""`).
 *
 * Returns a flat array: list position (1-based; negative when parked), tag
 * it was recorded under, raw element, ...
 */
export const TAKE_SCRIPT = String.raw`
local n = #KEYS - 4
local idx, unacked, parked, record = KEYS[n + 1], KEYS[n + 2], KEYS[n + 3], KEYS[n + 4]
local max = tonumber(ARGV[1])
local seq = ARGV[2]
if redis.call('HGET', record, 'seq') == seq then
  local rec = redis.call('HMGET', record, 'at', 'out')
  local at = tonumber(rec[1])
  local kept = cmsgpack.unpack(rec[2])
  local out = {}
  for j = 1, #kept, 3 do
    local pos, tag, raw = kept[j], kept[j + 1], kept[j + 2]
    if tag ~= '' then
      -- Still this take's delivery only while indexed at this take's time: one restored and
      -- taken again under the same tag (by any consumer) is another's, its envelope rewritten.
      local entry = tonumber(redis.call('ZSCORE', idx, tag)) == at
        and redis.call('HGET', unacked, tag)
      raw = entry and string.sub(entry, 2, tonumber(raw) + 1)
    end
    if raw then
      out[#out + 1] = pos
      out[#out + 1] = tag
      out[#out + 1] = raw
    end
  end
  return out
end
-- Every list empty (an idle worker's take; a sequential round trip's, after the record of its
-- early hand-out): nothing is taken or recorded, in one command where the RPOPs, TIME and the
-- record's HSET and EXPIRE were eleven. The record keeps the last take that took something: a
-- repeat of this take under its id finds another id there and takes afresh, as it should.
if redis.call('EXISTS', unpack(KEYS, 1, n)) == 0 then return {} end
-- The first position at or after from of '"delivery' .. rest (rest starts with '_'): found by a
-- plain search for rest, then checked in place. A plain search stops at every byte equal to
-- its literal's first (memchr), then compares: a '"' is ~90 of a Celery envelope's bytes, a
-- '_' ~10.
local function named(s, rest, from)
  local at = string.find(s, rest, from + 9, true)
  while at do
    if string.sub(s, at - 9, at - 1) == '"delivery' then return at - 9 end
    at = string.find(s, rest, at + 1, true)
  end
end
-- string.match(s, pattern) with pattern = '^"delivery' .. rest .. more: the first position
-- where it matches, found by a plain search. An unanchored match tries every position of the
-- envelope in Lua's matcher, which cost Redis about 10 microseconds per message.
local function find(s, rest, pattern, from)
  local at = named(s, rest, math.max(from, 1))
  while at do
    local a, b = string.match(s, pattern, at)
    if a then return a, b end
    at = named(s, rest, at + 1)
  end
end
-- The exchange and routing key of properties.delivery_info, as written in the envelope. When
-- "delivery_info" is named more than once (a header of that name: a task's headers come before
-- its properties), the properties' own values are decoded and the occurrence that writes them
-- is the one read; none found, the caller decodes the envelope.
local info_pattern = '^"delivery_info": {"exchange": "([^"\\]*)", "routing_key": "([^"\\]*)"'
local function info(s)
  local at = named(s, '_info"', 1)
  if not at then return end
  if not named(s, '_info"', at + 15) then
    return string.match(s, info_pattern, at)
  end
  local ok, env = pcall(cjson.decode, s)
  if not (ok and type(env) == 'table' and type(env.properties) == 'table') then return end
  local di = env.properties.delivery_info
  if type(di) ~= 'table' then return end
  while at do
    local ex, rk = string.match(s, info_pattern, at)
    if ex and ex == di.exchange and rk == di.routing_key then return ex, rk end
    at = named(s, '_info"', at + 15)
  end
end
-- The index is kept a skip list: a small sorted set is a listpack, which Redis scans on every
-- insertion, parsing each score (with ~50 deliveries unacknowledged this doubled the script's
-- time). A member longer than zset-max-listpack-value (64 bytes by default) makes it a skip
-- list, which it stays once that member is removed again, in this same script: nobody sees it.
-- With a space it is no tag a delivery is recorded under (those are retagged).
local sentinel = 'celeriac index encoding ' .. string.rep('-', 76)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
-- The deliveries' score as redis.call would write the number (%.17g, the same double on every
-- version), formatted once: a number argument is formatted by every call that gets it.
local score = string.format('%.17g', now)
local out = {}
-- What the record keeps: out with each envelope's length in place of an envelope recorded in
-- unacked (copying every envelope into the record cost Redis ~1.6 microseconds per message).
local kept = {}
-- The index's new members, the sentinel first (a new index is then created as a skip list):
-- indexed by one ZADD after the loop instead of one per message.
local scored = {'0', sentinel}
local taken = 0
for i = 1, n do
  if taken >= max then break end
  local items = redis.call('RPOP', KEYS[i], max - taken)
  if items then
    local pos = tostring(i)
    for _, raw in ipairs(items) do
      -- kombu writes the tag last: looked for in the tail first (a tag longer than 200 bytes is
      -- replaced anyway), in the whole envelope only when not there. Both find the same: at
      -- most one position matches the anchored pattern.
      local tag = find(raw, '_tag": "', '^"delivery_tag": "([^"\\]+)"}}$', #raw - 240)
        or find(raw, '_tag": "', '^"delivery_tag": "([^"\\]+)"}}$', 1)
      local ex, rk = info(raw)
      local entry
      if tag and ex then
        entry = '[' .. raw .. ', "' .. ex .. '", "' .. rk .. '"]'
      else
        local ok, env = pcall(cjson.decode, raw)
        local props = ok and type(env) == 'table' and env.properties
        if type(props) == 'table' then
          -- A tag that is missing or not a string is replaced below, as an unsafe one is: parked,
          -- its task (which the worker can run, or store a FAILURE for) would never be heard of.
          tag = type(props.delivery_tag) == 'string' and props.delivery_tag or ''
          local di = props.delivery_info
          if type(di) ~= 'table' then di = {} end
          ex, rk = di.exchange, di.routing_key
          -- Without a string exchange and routing key, restored to the queue it was taken from.
          if type(ex) ~= 'string' or type(rk) ~= 'string' then ex, rk = '', ARGV[2 + i] or '' end
          entry = '[' .. raw .. ', ' .. cjson.encode(ex) .. ', ' .. cjson.encode(rk) .. ']'
        end
      end
      if entry then
        -- HSETNX records the entry unless the tag is already unacknowledged (one command where
        -- HEXISTS and HSET were two), so a reused tag's own delivery keeps its entry and score.
        if #tag > 200 or not string.match(tag, '^[%w%.:_%-]+$')
            or redis.call('HSETNX', unacked, tag, entry) == 0 then
          tag = 'celeriac-retag-' .. redis.sha1hex(seq .. ':' .. taken .. ':' .. now .. ':' .. raw)
          redis.call('HSET', unacked, tag, entry)
        end
        scored[#scored + 1] = score
        scored[#scored + 1] = tag
        out[#out + 1] = pos
      else
        redis.call('LPUSH', parked, cjson.encode({
          reason = 'malformed message: not a kombu envelope with properties',
          list = KEYS[i], parked_at = now, message = raw }))
        out[#out + 1] = tostring(-i)
        tag = ''
      end
      out[#out + 1] = tag
      out[#out + 1] = raw
      kept[#kept + 1] = out[#out - 2]
      kept[#kept + 1] = tag
      kept[#kept + 1] = tag == '' and raw or #raw
      taken = taken + 1
    end
  end
end
if #scored > 2 then
  -- In ZADDs of at most 500 members (unpack's arguments stay well within Lua's stack).
  for from = 1, #scored, 1000 do
    redis.call('ZADD', idx, unpack(scored, from, math.min(from + 999, #scored)))
  end
  redis.call('ZREM', idx, sentinel)
end
redis.call('HSET', record, 'seq', seq, 'at', now, 'out', cmsgpack.pack(kept))
redis.call('EXPIRE', record, 3600)
return out
`;

/**
 * Move one unacknowledged message back to a list, if it is still
 * unacknowledged (and, when ARGV[2] is not empty, still holds exactly that
 * value: the WATCH of kombu's restore). KEYS = unacked_index, unacked,
 * target list; ARGV = tag, expected value or '', new element, 'front'|'back'.
 * Returns 1 when moved.
 */
export const RESTORE_SCRIPT = String.raw`
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if not cur then return 0 end
if ARGV[2] ~= '' and cur ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[4] == 'front' then
  redis.call('RPUSH', KEYS[3], ARGV[3])
else
  redis.call('LPUSH', KEYS[3], ARGV[3])
end
return 1
`;

/**
 * Acknowledge a message handed out before its take script replied, sent
 * right behind that script: only if this consumer's take record holds take
 * ARGV[3] and `unacked` holds this very envelope under the tag, indexed at
 * that take's time. The take may have given the message another tag (see
 * TAKE_SCRIPT) because the tag was another delivery's, whose envelope can be
 * the same text (one message routed to two queues): the time tells them apart.
 * KEYS = unacked_index, unacked, take record; ARGV = tag, the envelope as
 * taken, the take's sequence id. Returns 1 when acknowledged.
 */
export const ACK_TAKEN_SCRIPT = String.raw`
local rec = redis.call('HMGET', KEYS[3], 'seq', 'at')
if rec[1] ~= ARGV[3] or tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1])) ~= tonumber(rec[2]) then
  return 0
end
local entry = redis.call('HGET', KEYS[2], ARGV[1])
if not entry or string.sub(entry, 2, #ARGV[2] + 1) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
`;

/**
 * Park messages: each pushed to the parked list, in the order given, and
 * removed from `unacked` and `unacked_index` when still there (one already
 * acknowledged is parked all the same). KEYS = unacked_index, unacked,
 * parked, this call's park record; ARGV = seconds the park record lives,
 * then tag, parked entry, tag, parked entry... (`""` for a message without
 * a tag); at most a few thousand pairs (Lua's `unpack`). Returns how many
 * were still unacknowledged.
 *
 * The result is kept in the park record for those seconds (longer than
 * the caller retries), and a call with the record of a park that ran
 * returns it instead of parking again: a park whose reply was lost (and
 * that ioredis resends after reconnecting, or the settler repeats) parks
 * each message once.
 */
export const PARK_SCRIPT = String.raw`
local done = redis.call('GET', KEYS[4])
if done then return tonumber(done) end
local tags, entries = {}, {}
for i = 2, #ARGV, 2 do
  if ARGV[i] ~= '' then tags[#tags + 1] = ARGV[i] end
  entries[#entries + 1] = ARGV[i + 1]
end
local moved = 0
if #tags > 0 then
  redis.call('ZREM', KEYS[1], unpack(tags))
  moved = redis.call('HDEL', KEYS[2], unpack(tags))
end
redis.call('LPUSH', KEYS[3], unpack(entries))
redis.call('SET', KEYS[4], moved, 'EX', ARGV[1])
return moved
`;

/**
 * Move parked entries back to queue lists (each to the back, like a new
 * publish), in the order given; one no longer parked (requeued by another
 * caller) is skipped. KEYS = parked, then each entry's target list; ARGV =
 * entry, new element, for each target list. The entries are looked for
 * from the tail of the parked list, where the oldest are. Returns how many
 * moved.
 */
export const UNPARK_SCRIPT = String.raw`
local moved = 0
for i = 2, #KEYS do
  if redis.call('LREM', KEYS[1], -1, ARGV[2 * i - 3]) == 1 then
    redis.call('LPUSH', KEYS[i], ARGV[2 * i - 2])
    moved = moved + 1
  end
end
return moved
`;

/**
 * Extend a mutex only if we still hold it. KEYS = mutex; ARGV = token,
 * milliseconds. Returns 1 when extended.
 */
export const RENEW_SCRIPT = String.raw`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`;

/** Release a mutex only if we still hold it. KEYS = mutex; ARGV = token. */
export const UNLOCK_SCRIPT = String.raw`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

/**
 * Take tokens from rate-limit token buckets, one per key. KEYS = bucket
 * hashes (fields `tokens`, `ts` in server-time seconds); ARGV = rate per
 * second, capacity, count wanted, for each key. A missing bucket is full.
 * Returns a flat array: tokens granted, milliseconds until the next token
 * (0 when all were granted), for each key. A bucket expires once it would
 * have refilled completely, when it is the same as a missing one.
 */
export const TOKENS_SCRIPT = String.raw`
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i = 1, #KEYS do
  local rate = tonumber(ARGV[3 * i - 2])
  local cap = tonumber(ARGV[3 * i - 1])
  local want = tonumber(ARGV[3 * i])
  local st = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(st[1])
  local ts = tonumber(st[2])
  if tokens == nil or ts == nil then
    tokens = cap
  else
    tokens = math.min(cap, tokens + math.max(0, now - ts) * rate)
  end
  local granted = math.min(want, math.floor(tokens + 1e-9))
  tokens = tokens - granted
  local wait = 0
  if granted < want then wait = math.max(1, math.ceil((1 - tokens) / rate * 1000)) end
  redis.call('HSET', KEYS[i], 'tokens', string.format('%.9f', tokens), 'ts', string.format('%.6f', now))
  redis.call('PEXPIRE', KEYS[i], math.ceil(cap / rate * 1000) + 1000)
  out[#out + 1] = granted
  out[#out + 1] = wait
end
return out
`;
