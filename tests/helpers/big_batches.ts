/**
 * Batches larger than one command may carry, run against a broker and a
 * result backend over Sentinel or Cluster, where commands go through
 * ioredis. Spread whole into one call's arguments, a batch past about
 * 100,000 values overflows the call stack; the product cuts every batch
 * into commands of at most VALUES_PER_COMMAND values (src/broker/chunks.ts).
 * The batches here are a few times that size, and {@link watchCommandSizes}
 * checks on the servers themselves (MONITOR) that no command carried more,
 * so a batch sent unsplit fails the test without 100,000 values. Each check
 * is a step of its own so that one failing does not hide the others.
 */

import assert from "node:assert/strict";
import { Redis } from "ioredis";
import type { ResultBackend } from "../../src/backend/port.ts";
import type { Broker, Delivery } from "../../src/broker/port.ts";
import { encodeResultMeta } from "../../src/protocol/result_meta.ts";
import { message, uniqueQueue } from "../broker_conformance.ts";

/**
 * Values per command of a split batch (VALUES_PER_COMMAND of
 * src/broker/chunks.ts, written out: raising that far enough to hold a
 * whole batch fails these tests too).
 */
const PER_COMMAND = 1000;

/** How many values each big batch has: five commands' worth. */
export const BIG = 5 * PER_COMMAND;

/**
 * The most arguments one command of a split batch may carry: a chunk's
 * values twice (a ZADD or HSET pairs each value with a score or a field),
 * plus the command, its keys and a few options. A batch of {@link BIG}
 * sent as one command carries more.
 */
export const MOST_ARGUMENTS = 2 * PER_COMMAND + 16;

/** The largest command a {@link watchCommandSizes} watch saw. */
export interface LargestCommand {
  /** Its name as sent (`evalsha`, `lpush`, ...). */
  name: string;
  /** How many arguments it had, its name included. */
  args: number;
  /** The port of the server that ran it. */
  port: number;
}

/**
 * Watch (MONITOR, which lists the commands scripts run too) every command
 * the servers on `ports` run until `largest()` is called, which waits until
 * each watch has seen everything run before it, stops them and returns the
 * command with the most arguments.
 *
 * @example
 * ```ts ignore
 * const sizes = await watchCommandSizes([7000, 7001]);
 * await broker.publishMany(batch);
 * assert.ok((await sizes.largest()).args <= MOST_ARGUMENTS);
 * ```
 */
export async function watchCommandSizes(
  ports: number[],
): Promise<{ largest(): Promise<LargestCommand> }> {
  let top: LargestCommand = { name: "", args: 0, port: 0 };
  const end = `big-batch-end-${crypto.randomUUID()}`;
  const watches = await Promise.all(ports.map(async (port) => {
    const client = new Redis({ port, host: "127.0.0.1", lazyConnect: true });
    client.on("error", () => {});
    const monitor = await client.monitor();
    let ended: () => void = () => {};
    const seen = new Promise<void>((res) => ended = res);
    monitor.on("monitor", (_time: string, args: string[]) => {
      if (args.length > top.args) top = { name: String(args[0]), args: args.length, port };
      if (args[1] === end) ended();
    });
    return { port, client, monitor, seen };
  }));
  return {
    async largest() {
      try {
        for (const w of watches) {
          await command(w.port, "ECHO", end);
          await w.seen;
        }
      } finally {
        for (const w of watches) {
          w.monitor.disconnect();
          w.client.disconnect();
        }
      }
      return top;
    },
  };
}

async function command(port: number, ...args: string[]): Promise<unknown> {
  const r = new Redis({ port, host: "127.0.0.1", lazyConnect: true, retryStrategy: () => null });
  r.on("error", () => {});
  try {
    await r.connect();
    return await r.call(args[0], ...args.slice(1));
  } finally {
    r.disconnect();
  }
}

function textOf(d: Delivery): string {
  return JSON.parse(new TextDecoder().decode(d.body));
}

/**
 * Take `n` deliveries from `queue`, in the order the broker hands them out,
 * {@link PER_COMMAND} at a time (a take is bounded by its `max`, not
 * split; after one take of 150,000 on the test cluster, node timeout 1 s,
 * the queue held all 150,000 again — the script blocked its node for
 * seconds, and a failover to a replica that never saw it seems the cause).
 */
async function takeAll(broker: Broker, queue: string, n: number): Promise<Delivery[]> {
  const out: Delivery[] = [];
  while (out.length < n) {
    const got = await broker.take([queue], {
      max: Math.min(PER_COMMAND, n - out.length),
      signal: AbortSignal.timeout(10_000),
    });
    if (got.length === 0) throw new Error(`took ${out.length} of ${n}`);
    for (const d of got) out.push(d);
  }
  return out;
}

/**
 * How many deliveries the settling steps settle at once (an acknowledgement,
 * one MULTI, once took every tag spread into its commands).
 */
export const SETTLED = BIG;

/**
 * publishMany of {@link SETTLED} messages to one queue lands them all, the
 * first published at the tail: taken first, and the rest in order. The
 * deliveries, taken and not yet settled, are added to `taken` before their
 * order is checked.
 */
export async function publishManyInOrder(
  broker: Broker,
  q: string,
  taken: Delivery[],
): Promise<void> {
  assert.ok(broker.publishMany, "the broker publishes batches");
  await broker.publishMany(
    Array.from(
      { length: SETTLED },
      (_, i) => ({ message: message(`m${i}`), target: { routingKey: q } }),
    ),
  );
  assert.equal(await broker.queueDepth(q), SETTLED);
  for (const d of await takeAll(broker, q, SETTLED)) taken.push(d);
  const wrong = taken.findIndex((d, i) => textOf(d) !== `m${i}`);
  assert.equal(wrong, -1, `delivery ${wrong} is ${wrong < 0 ? "" : textOf(taken[wrong])}`);
}

/**
 * Lease renewal, acknowledgement, parking and listing what was parked of
 * {@link SETTLED} deliveries of queue `q` at once (a worker holding that
 * many ETA tasks renews and settles them in one call), each as a step of
 * `t`. `leases` reads from Redis how many of a queue's deliveries are in
 * `unacked_index` with a score (lease time, in seconds) of at least `since`
 * (it may count other queues' too: only changes are compared; `others` is
 * the count before `q`'s were taken). The acknowledgement goes before the
 * parking, which would remove the entries itself; the parking then finds
 * them acknowledged.
 */
export async function settleMany(
  broker: Broker,
  t: Deno.TestContext,
  q: string,
  taken: Delivery[],
  leases: (queue: string, since: number) => Promise<number>,
  others: number,
): Promise<void> {
  assert.equal(await leases(q, 0) - others, SETTLED);
  const extended = await t.step(`extend() renews ${SETTLED} leases`, async () => {
    const since = Date.now() / 1000;
    await broker.extend(taken);
    assert.equal(await leases(q, since), SETTLED);
  });
  const acked = await t.step(`ack() settles ${SETTLED} deliveries`, async () => {
    await broker.ack(taken);
    assert.equal(await leases(q, 0) - others, 0);
    assert.equal(await broker.queueDepth(q), 0);
  });
  const rejected = await t.step(`reject() parks ${SETTLED} deliveries`, async () => {
    await broker.reject(taken.map((delivery) => ({ delivery, reason: "big batch" })));
  });
  const listed = await t.step(`listParked() lists ${SETTLED} parked messages`, async () => {
    const parked = await broker.listParked({ limit: SETTLED });
    assert.equal(parked.filter((p) => p.queue === q).length, SETTLED);
  });
  assert.ok(extended && rejected && listed && acked, "every step passed");
}

/** addRevoked of {@link BIG} ids keeps them all. */
export async function revokeMany(broker: Broker): Promise<void> {
  const until = new Date(Date.now() + 600_000);
  const ids = Array.from({ length: BIG }, () => crypto.randomUUID());
  await broker.addRevoked(ids.map((id) => ({ id, expiresAt: until })));
  const listed = new Set((await broker.listRevoked()).map((e) => e.id));
  assert.equal(ids.filter((id) => !listed.has(id)).length, 0);
}

/** store() of {@link BIG} results in one call stores every one. */
export async function storeMany(backend: ResultBackend): Promise<void> {
  const ids = Array.from({ length: BIG }, () => crypto.randomUUID());
  await backend.store(ids.map((taskId, i) => ({
    taskId,
    status: "SUCCESS",
    meta: encodeResultMeta({ taskId, status: "SUCCESS", result: i, dateDone: new Date() }),
  })));
  for (const i of [0, BIG / 2, BIG - 1]) {
    assert.equal((await backend.get(ids[i]))?.result, i);
  }
}

/**
 * The big-batch steps every Redis topology shares, each as a step of `t`:
 * {@link publishManyInOrder}, then {@link settleMany} (with `leases`) of the
 * deliveries it took, and {@link revokeMany}. Returns whether each passed.
 */
export async function brokerBatchSteps(
  broker: Broker,
  t: Deno.TestContext,
  leases: (queue: string, since: number) => Promise<number>,
): Promise<boolean[]> {
  const q = uniqueQueue("big-batch");
  const others = await leases(q, 0);
  const taken: Delivery[] = [];
  return [
    await t.step(
      `publishMany of ${SETTLED} messages to one queue lands them all, first published at the tail`,
      () => publishManyInOrder(broker, q, taken),
    ),
    await t.step(`settling ${SETTLED} deliveries`, async (s) => {
      assert.equal(taken.length, SETTLED, "nothing to settle: the publishMany step failed");
      await settleMany(broker, s, q, taken, leases, others);
    }),
    await t.step(`addRevoked of ${BIG} ids`, () => revokeMany(broker)),
  ];
}
