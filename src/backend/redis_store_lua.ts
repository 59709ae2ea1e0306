/**
 * The Lua that stores one result meta the way the Redis backend does,
 * shared by its store script and the chord claim that stores a failed
 * chord's body with the claim (redis_chord.ts).
 *
 * @module
 */

/**
 * Defines the Lua function `store_meta(key, meta, ttl, expires)`: SET NX
 * (EX `ttl` when `expires`, i.e. `ttl` is not "0"; computed once by the
 * caller for all its metas), or, over an existing meta that is not a SUCCESS,
 * SETEX / SET; then PUBLISH the meta on the channel named like its key. A
 * stored SUCCESS is left as it is and nothing is published.
 *
 * @example
 * ```ts
 * import { STORE_META_LUA } from "./redis_store_lua.ts";
 * const script = STORE_META_LUA + "store_meta(KEYS[1], ARGV[2], ARGV[1], tonumber(ARGV[1]) > 0) return 1";
 * ```
 */
export const STORE_META_LUA = String.raw`
local function store_meta(key, meta, ttl, expires)
  -- The TTL goes to SET and SETEX as the text it came as: a number argument would be formatted
  -- by every call.
  -- A task's first meta (the usual case) is stored by SET NX alone; an existing one is read.
  local stored
  if expires then
    stored = redis.call('SET', key, meta, 'NX', 'EX', ttl)
  else
    stored = redis.call('SET', key, meta, 'NX')
  end
  if not stored then
    local cur = redis.call('GET', key)
    local status
    if cur then
      status = string.match(cur, '^{"status": "(%u+)"')
      if status == nil then
        local ok, m = pcall(cjson.decode, cur)
        if ok and type(m) == 'table' then status = m.status end
      end
    end
    if status ~= 'SUCCESS' then
      if expires then
        redis.call('SETEX', key, ttl, meta)
      else
        redis.call('SET', key, meta)
      end
      stored = true
    end
  end
  if stored then redis.call('PUBLISH', key, meta) end
end
`;
