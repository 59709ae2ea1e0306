/**
 * Names in the Redis keyspace of the Redis transport, and the pure
 * functions that build them: kombu 5.2's priority sub-lists
 * (`<queue>\x06\x16<n>`) and `_kombu.binding.*` set members, and
 * Celeriac's own parked list, revocation set and rate-limit buckets.
 * Every name here is unprefixed; the broker adds its `keyPrefix`.
 *
 * @module
 */

/**
 * kombu's separator between a queue name and its priority step.
 *
 * @example The list of a priority step
 * ```ts
 * import { PRIORITY_SEP, priorityList } from "@celeriac/celeriac/transports";
 * priorityList("celery", 6) === `celery${PRIORITY_SEP}6`; // true
 * PRIORITY_SEP; // "\x06\x16"
 * ```
 */
export const PRIORITY_SEP = "\x06\x16";
/**
 * kombu's default priority steps.
 *
 * @example Every Redis list of a queue
 * ```ts
 * import { PRIORITY_STEPS, priorityList } from "@celeriac/celeriac/transports";
 * const lists = PRIORITY_STEPS.map((step) => priorityList("celery", step));
 * // ["celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"], most urgent first
 * ```
 */
export const PRIORITY_STEPS: readonly number[] = [0, 3, 6, 9];
/**
 * Name of the list holding parked (dead-lettered) messages.
 *
 * @example Finding parked messages in Redis
 * ```ts
 * import { PARKED_KEY } from "@celeriac/celeriac/transports";
 * const keyPrefix = "billing:"; // the broker's keyPrefix (kombu global_keyprefix), if any
 * const parkedList = keyPrefix + PARKED_KEY; // "billing:celeriac.parked"
 * // redis-cli LRANGE billing:celeriac.parked 0 -1
 * ```
 */
export const PARKED_KEY = "celeriac.parked";

/**
 * Name of the sorted set of revoked task ids, scored by expiry (unix seconds).
 *
 * @example Listing revocations with redis-cli
 * ```ts
 * import { REVOKED_KEY } from "@celeriac/celeriac/transports";
 * REVOKED_KEY; // "celeriac.revoked"
 * // redis-cli ZRANGE celeriac.revoked 0 -1 WITHSCORES
 * ```
 */
export const REVOKED_KEY = "celeriac.revoked";

/**
 * Prefix of the hashes holding rate-limit token buckets, one per task name.
 *
 * @example Inspecting a task's bucket with redis-cli
 * ```ts
 * import { RATE_LIMIT_KEY_PREFIX } from "@celeriac/celeriac/transports";
 * RATE_LIMIT_KEY_PREFIX + "tasks.scrape"; // "celeriac.ratelimit.tasks.scrape"
 * // redis-cli HGETALL celeriac.ratelimit.tasks.scrape
 * ```
 */
export const RATE_LIMIT_KEY_PREFIX = "celeriac.ratelimit.";

/**
 * The list a message of `priority` goes to (kombu's priority quantisation:
 * 0-2 → `queue`, 3-5 → `queue\x06\x163`, 6-8 → `...6`, 9 → `...9`).
 *
 * @example
 * ```ts
 * import { priorityList } from "@celeriac/celeriac/transports";
 * priorityList("celery", 5); // "celery\x06\x163"
 * ```
 *
 * @param queue queue name
 * @param priority message priority
 * @returns the list key (without prefix)
 */
export function priorityList(queue: string, priority: unknown): string {
  const p = Math.min(9, Math.max(0, Math.trunc(Number(priority)) || 0));
  let step = 0;
  for (const s of PRIORITY_STEPS) if (s <= p) step = s;
  return step === 0 ? queue : queue + PRIORITY_SEP + step;
}

/**
 * The queue a list belongs to: its name without the priority suffix.
 *
 * @example
 * ```ts
 * import { queueOfList } from "./redis_keys.ts";
 * queueOfList("celery\x06\x166"); // "celery"
 * queueOfList("celery"); // "celery"
 * ```
 *
 * @param list a queue's list (unprefixed)
 * @returns the queue name
 */
export function queueOfList(list: string): string {
  const i = list.lastIndexOf(PRIORITY_SEP);
  return i < 0 ? list : list.slice(0, i);
}

/**
 * Every list of `queues`, most urgent priority step first; within a step
 * the queues start at `rotation` (mod their count), so successive takes
 * with rising `rotation` serve queues of equal priority in turn.
 *
 * @example
 * ```ts
 * import { rotatedLists } from "./redis_keys.ts";
 * rotatedLists(["a", "b"], 1);
 * // ["b", "a", "b\x06\x163", "a\x06\x163", "b\x06\x166", "a\x06\x166", "b\x06\x169", "a\x06\x169"]
 * ```
 *
 * @param queues queue names
 * @param rotation how far to rotate the queues within each step
 * @returns the lists (unprefixed)
 */
export function rotatedLists(queues: readonly string[], rotation: number): string[] {
  const keys: string[] = [];
  const n = queues.length;
  for (const step of PRIORITY_STEPS) {
    for (let i = 0; i < n; i++) {
      const q = queues[(i + rotation) % n];
      keys.push(step === 0 ? q : q + PRIORITY_SEP + step);
    }
  }
  return keys;
}

/**
 * The priority step of a queue list: the number after its
 * {@link PRIORITY_SEP}, 0 without one.
 *
 * @example
 * ```ts
 * import { priorityStep } from "./redis_keys.ts";
 * priorityStep("celery\x06\x166"); // 6
 * priorityStep("celery"); // 0
 * ```
 *
 * @param list a queue's list (unprefixed)
 * @returns its step
 */
export function priorityStep(list: string): number {
  const i = list.lastIndexOf(PRIORITY_SEP);
  return i < 0 ? 0 : Number(list.slice(i + PRIORITY_SEP.length));
}

/**
 * The order in which a take reads a consumer's lists (from
 * {@link rotatedLists}): step by step, most urgent first, as kombu's `BRPOP`
 * serves a higher priority first, each step's claim lists (what a wait
 * claimed is the oldest of its list) and then its queue lists; the claim
 * list of `first` (an early hand-out's, which its take must surely take)
 * before all.
 *
 * @example
 * ```ts
 * import { takeOrder } from "./redis_keys.ts";
 * takeOrder(["a", "b", "a\x06\x169"], "b");
 * // [["b", true], ["a", true], ["a", false], ["b", false], ["a\x06\x169", true], ["a\x06\x169", false]]
 * ```
 *
 * @param lists queue lists, grouped by step, most urgent first
 * @param first a list whose claim list goes first, or null
 * @returns each list read, in order, and whether it is its claim list that is read
 */
export function takeOrder(lists: readonly string[], first: string | null): [string, boolean][] {
  const out: [string, boolean][] = first === null ? [] : [[first, true]];
  for (let i = 0; i < lists.length;) {
    const step = priorityStep(lists[i]);
    let j = i;
    while (j < lists.length && priorityStep(lists[j]) === step) j++;
    for (let k = i; k < j; k++) if (lists[k] !== first) out.push([lists[k], true]);
    for (let k = i; k < j; k++) out.push([lists[k], false]);
    i = j;
  }
  return out;
}

/**
 * The set holding the bindings of `exchange` (kombu's `_kombu.binding.<exchange>`).
 *
 * @example
 * ```ts
 * import { bindingSet } from "./redis_keys.ts";
 * bindingSet("celeryev"); // "_kombu.binding.celeryev"
 * ```
 *
 * @param exchange the exchange name
 * @returns the set's key (unprefixed)
 */
export function bindingSet(exchange: string): string {
  return `_kombu.binding.${exchange}`;
}

/**
 * A member of a binding set as kombu writes it: routing key, pattern
 * (empty but on a topic exchange) and queue, joined by {@link PRIORITY_SEP}.
 *
 * @example
 * ```ts
 * import { bindingMember } from "./redis_keys.ts";
 * bindingMember("celery", "celery"); // "celery\x06\x16\x06\x16celery"
 * ```
 *
 * @param routingKey the binding's routing key
 * @param queue the bound queue
 * @param pattern the topic binding's pattern ({@link topicPattern}); default none
 * @returns the set member
 */
export function bindingMember(routingKey: string, queue: string, pattern = ""): string {
  return routingKey + PRIORITY_SEP + pattern + PRIORITY_SEP + queue;
}

/**
 * The pattern kombu stores with a topic binding, in its form (so a Celery
 * worker binding the same queue writes the same set member, not a second
 * one): every character but letters, digits, `.`, `*` and `#` escaped, and
 * the words `*` (one word) and `#` (any words) replaced, anchored.
 *
 * @example
 * ```ts
 * import { topicPattern } from "./redis_keys.ts";
 * topicPattern("order.*"); // "^order\\..*?[^\\.]$"
 * new RegExp(topicPattern("order.*")).test("order.paid"); // true
 * ```
 *
 * @param bindingKey the topic binding's key
 * @returns the regular expression's source
 */
export function topicPattern(bindingKey: string): string {
  let escaped = "";
  for (const c of bindingKey) {
    if (c === "\0") escaped += "\\000";
    else if (/^[\p{L}\p{N}.*#]$/u.test(c)) escaped += c;
    else escaped += "\\" + c;
  }
  const words = escaped.split(".").map((w) => w === "*" ? ".*?[^\\.]" : w === "#" ? ".*?" : w);
  return `^${words.join("\\.")}$`;
}

/**
 * The queues a binding set routes `routingKey` to: members whose pattern
 * matches it, or without a pattern, whose routing key equals it; each
 * queue once (two bindings of a queue that match put one copy in it, as
 * with kombu and RabbitMQ).
 *
 * @example
 * ```ts
 * import { bindingMember, boundQueues } from "./redis_keys.ts";
 * boundQueues([bindingMember("a", "qa"), bindingMember("b", "qb")], "b"); // ["qb"]
 * ```
 *
 * @param members the binding set's members
 * @param routingKey the message's routing key
 * @returns the queues, in the members' order
 */
export function boundQueues(members: readonly string[], routingKey: string): string[] {
  const out: string[] = [];
  for (const m of members) {
    const [rk, pattern, queue] = m.split(PRIORITY_SEP);
    const match = pattern ? new RegExp(pattern).test(routingKey) : rk === routingKey;
    if (match && !out.includes(queue)) out.push(queue);
  }
  return out;
}
