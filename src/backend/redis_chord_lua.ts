/**
 * The Lua scripts of the Redis chord join (redis_chord.ts): the claim of a
 * spoiled chord's failure and the send decision of the member that
 * completed a join.
 *
 * @module
 */

import { STORE_META_LUA } from "./redis_store_lua.ts";

/**
 * Seconds `.c` (the id of the claim that won) is kept when no cleanup
 * deletes it (a worker that died right after its claim): far longer than a
 * failover during which the claim is sent again (`?failover_wait=`).
 *
 * @example
 * ```ts
 * import { CLAIM_MARK_SECONDS } from "./redis_chord_lua.ts";
 * CLAIM_MARK_SECONDS; // 86400
 * ```
 */
export const CLAIM_MARK_SECONDS = 86_400;

/**
 * Claim a spoiled chord's failure: DEL the chord's keys (`.b` too) if the spoiled key
 * still is as the caller read it, and store the metas that fail the chord
 * (as the backend's store does: never over a SUCCESS, PUBLISHed) in the
 * same script, so that no crash leaves the keys gone and the body's
 * FAILURE unstored, and mark the claim's id in `.c`; 1 if deleted or if
 * `.c` holds this claim's id already (its first sending ran, its reply was
 * lost), else 0 (nothing stored). KEYS = `.j`, `.t`, `.s`, `.c`, `.b`, then
 * the metas' keys; ARGV[1] = the spoiled key's index in KEYS; ARGV[2] = how it
 * was spoiled: `type` (it holds a type other than ARGV[3]), `value` (a
 * string equal to ARGV[3], or any string that is not a count) or `member`
 * (a sorted set with member ARGV[3], or with a member that is not UTF-8);
 * ARGV[4] = the metas' TTL in seconds ("0": none); ARGV[5] = the claim's
 * id; ARGV[6] = `.c`'s expiry in seconds; ARGV[7..] = the metas, one per
 * key from KEYS[6].
 *
 * The caller read the key as UTF-8 text: bytes that are not UTF-8 (a
 * Python worker's pickle or msgpack result in `.j`) came to it as U+FFFD,
 * so ARGV[3] never equals them, and the script judges such a key itself
 * (before: every claim returned 0 and the chord hung, never failed).
 *
 * @example
 * ```ts
 * import { CLAIM_SCRIPT } from "./redis_chord_lua.ts";
 * // client.defineCommand("celeriacChordClaim", { lua: CLAIM_SCRIPT });
 * CLAIM_SCRIPT.includes("store_meta"); // true
 * ```
 */
export const CLAIM_SCRIPT = STORE_META_LUA + String.raw`
local function utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, lo, hi = 1, 128, 191
    if c < 128 then len = 1
    elseif c >= 194 and c <= 223 then len = 2
    elseif c >= 224 and c <= 239 then
      len = 3
      if c == 224 then lo = 160 elseif c == 237 then hi = 159 end
    elseif c >= 240 and c <= 244 then
      len = 4
      if c == 240 then lo = 144 elseif c == 244 then hi = 143 end
    else return false end
    if i + len - 1 > n then return false end
    for j = i + 1, i + len - 1 do
      local b = s:byte(j)
      if j > i + 1 then lo, hi = 128, 191 end
      if b < lo or b > hi then return false end
    end
    i = i + len
  end
  return true
end
local function count(v)
  return string.match(v, '^%-?%d+$') ~= nil and math.abs(tonumber(v)) <= 9007199254740991
end
if redis.call('GET', KEYS[4]) == ARGV[5] then return 1 end
local key = KEYS[tonumber(ARGV[1])]
local how, read = ARGV[2], ARGV[3]
local kind = redis.call('TYPE', key).ok
local still = false
if how == 'type' then
  still = kind ~= 'none' and kind ~= read
elseif how == 'value' then
  if kind == 'string' then
    local v = redis.call('GET', key)
    still = v == read or not count(v)
  end
elseif kind == 'zset' then
  still = redis.call('ZSCORE', key, read) ~= false
  if not still then
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      if not utf8(m) then
        still = true
        break
      end
    end
  end
end
if not still then return 0 end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[5])
redis.call('SET', KEYS[4], ARGV[5], 'EX', ARGV[6])
local expires = tonumber(ARGV[4]) > 0
for i = 6, #KEYS do store_meta(KEYS[i], ARGV[i + 1], ARGV[4], expires) end
return 1
`;

/**
 * Whether the member that completed a join sends the body, and its
 * members: checking the count, marking `.b` and reading `.j` in one script,
 * so that no other member's send and cleanup can come in between. KEYS =
 * `.b`, `.j`; ARGV[1] = the member's task id, ARGV[2] = `.b`'s expiry in
 * seconds ("0": never, as the chord's keys), ARGV[3] = the count the
 * member's join saw reach the size.
 *
 * Returns nil unless `.j` still holds ARGV[3] entries
 * (another member sent the body and deleted the keys, or its redelivery
 * joined a fresh `.j`); 0 if `.b` holds another member's id (that member
 * sends the body); else `.j`'s entries in header order, after marking `.b`
 * with the id when it is absent. `.b` holding the caller's id is its own
 * mark (it joins again: its earlier send may not have happened). The member
 * whose join took the count to the size marks it right after that join; a
 * member joining again before it marked it (its worker killed in between)
 * marks it first, and only that member sends the body. A Python worker's
 * join marks nothing, and its worker sends the body itself: a Celeriac
 * member joining again then sends it too. A `.b` of another type (another
 * tool wrote it) is no mark, as before there was one.
 *
 * @example
 * ```ts
 * import { SEND_SCRIPT } from "./redis_chord_lua.ts";
 * // client.defineCommand("celeriacChordSend", { lua: SEND_SCRIPT });
 * // await client.celeriacChordSend(2, stem + ".b", stem + ".j", taskId, "86400", "3");
 * SEND_SCRIPT.includes("ZCARD"); // true
 * ```
 */
export const SEND_SCRIPT = `
if redis.call('ZCARD', KEYS[2]) ~= tonumber(ARGV[3]) then return nil end
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then
  if tonumber(ARGV[2]) > 0 then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  else
    redis.call('SET', KEYS[1], ARGV[1])
  end
elseif kind == 'string' and redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
return redis.call('ZRANGE', KEYS[2], 0, -1)
`;
