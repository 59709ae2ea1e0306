/**
 * moveBackMany (the KV broker's requeue of several deliveries): the tags go
 * back in the order given, the first ones in the first commit (a consumer
 * woken by a commit never finds a later message at the head), a tag given
 * twice keeps its first place, commits respect the 600 KiB budget without
 * reading a tag twice, tags settled meanwhile are skipped, and the
 * redelivered flag is set or kept. A KV database in memory, seen through a
 * proxy that counts reads and records what each commit puts in a queue.
 */

import assert from "node:assert/strict";
import type { StoredMessage, Unacked } from "../src/broker/kv_message.ts";
import { type KvScope, moveBackMany, TAKE_BATCH } from "../src/broker/kv_moves.ts";
import type { SharedKv } from "../src/broker/kv_store.ts";

const QUEUE = "requeue";
const NS = ["rq"];

/** What the proxy saw. */
interface Seen {
  /** `kv.get` calls. */
  gets: number;
  /** Per committed atomic operation, the names of the messages it put in a queue. */
  commits: string[][];
  /** Commits that failed their checks. */
  lost: number;
  /** Runs before each commit (index of the commit attempt). */
  beforeCommit?: (attempt: number) => Promise<void>;
}

/** Wrap an atomic operation: chained calls stay on the wrapper; `set`s into a queue are recorded. */
function recordedAtomic(op: Deno.AtomicOperation, seen: Seen, attempt: number) {
  const names: string[] = [];
  const wrapper: Deno.AtomicOperation = new Proxy(op, {
    get(target, prop) {
      if (prop === "commit") {
        return async () => {
          await seen.beforeCommit?.(attempt);
          const res = await target.commit();
          if (res.ok) seen.commits.push(names);
          else seen.lost++;
          return res;
        };
      }
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === "set" && (args[0] as Deno.KvKey)[1] === "q") {
          names.push(nameOf(args[1] as StoredMessage));
        }
        const out = value.apply(target, args);
        return out === target ? wrapper : out;
      };
    },
  });
  return wrapper;
}

async function setup(): Promise<{ kv: Deno.Kv; scope: KvScope; seen: Seen }> {
  const kv = await Deno.openKv(":memory:");
  const seen: Seen = { gets: 0, commits: [], lost: 0 };
  let attempts = 0;
  const counted = new Proxy(kv, {
    get(target, prop) {
      if (prop === "get") {
        return (key: Deno.KvKey) => {
          seen.gets++;
          return target.get(key);
        };
      }
      if (prop === "atomic") return () => recordedAtomic(target.atomic(), seen, attempts++);
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const scope: KvScope = {
    kv: counted,
    shared: { notify() {} } as SharedKv,
    k: (...parts) => [...NS, ...parts],
    depthKey: (queue) => [...NS, "depth", queue],
  };
  return { kv, scope, seen };
}

function nameOf(m: StoredMessage): string {
  return m.envelope;
}

/** Store unacknowledged deliveries named `names` (tag = name), with `pad` bytes of body. */
async function unacked(kv: Deno.Kv, names: string[], pad = 10, redelivered = false) {
  for (const name of names) {
    const message: StoredMessage = {
      body: new Uint8Array(pad),
      envelope: name,
      step: 0,
      redelivered,
    };
    const value: Unacked = { message, queue: QUEUE, deadline: Date.now() + 60_000 };
    await kv.set([...NS, "unacked", name], value);
  }
}

/** The queue's messages, head first. */
async function queued(kv: Deno.Kv): Promise<StoredMessage[]> {
  const out: StoredMessage[] = [];
  for await (const e of kv.list<StoredMessage>({ prefix: [...NS, "q", QUEUE] })) out.push(e.value);
  return out;
}

async function depth(kv: Deno.Kv): Promise<bigint> {
  return (await kv.get<Deno.KvU64>([...NS, "depth", QUEUE])).value?.value ?? 0n;
}

const names = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/** A fixed permutation (so the requeue order is not the order they were stored in). */
function shuffled<T>(xs: T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = (i * 7919 + 13) % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

Deno.test("kv requeue many: 150 tags go back in the order given, 64 per commit, first ones first", async () => {
  const { kv, scope, seen } = await setup();
  try {
    const tags = shuffled(names("m", 150));
    await unacked(kv, names("m", 150));
    assert.equal(await moveBackMany(scope, tags, true), 150);
    assert.deepEqual(seen.commits, [
      tags.slice(0, TAKE_BATCH),
      tags.slice(TAKE_BATCH, 2 * TAKE_BATCH),
      tags.slice(2 * TAKE_BATCH),
    ]);
    assert.deepEqual((await queued(kv)).map(nameOf), tags);
    assert.equal(await depth(kv), 150n);
    assert.equal(seen.gets, 150, "each tag read once");
  } finally {
    kv.close();
  }
});

Deno.test("kv requeue many: a tag given twice keeps its first place, in the first commit", async () => {
  const { kv, scope, seen } = await setup();
  try {
    const rest = names("x", 70);
    await unacked(kv, ["a", ...rest]);
    const tags = ["a", ...rest, "a", "x5", "x69"];
    assert.equal(await moveBackMany(scope, tags, true), 71, "each moved once");
    assert.deepEqual(seen.commits[0], ["a", ...rest.slice(0, TAKE_BATCH - 1)]);
    assert.deepEqual(seen.commits[1], rest.slice(TAKE_BATCH - 1));
    assert.deepEqual((await queued(kv)).map(nameOf), ["a", ...rest]);
    assert.equal(await depth(kv), 71n);
  } finally {
    kv.close();
  }
});

Deno.test("kv requeue many: large messages fill 600 KiB commits and no tag is read twice", async () => {
  const { kv, scope, seen } = await setup();
  try {
    const tags = names("big", 100);
    await unacked(kv, tags, 50_000);
    assert.equal(await moveBackMany(scope, tags, true), 100);
    assert.equal(seen.gets, 100, "each tag read once, also after a commit cut short by its size");
    for (const c of seen.commits) assert.ok(c.length * 50_000 <= 600 * 1024, `${c.length} in one`);
    assert.equal(seen.commits.length, Math.ceil(100 / Math.floor(600 * 1024 / 50_004)));
    assert.deepEqual(seen.commits.flat(), tags, "in order, commit after commit");
    assert.deepEqual((await queued(kv)).map(nameOf), tags);
    assert.equal(await depth(kv), 100n);
  } finally {
    kv.close();
  }
});

Deno.test("kv requeue many: tags settled before or meanwhile are skipped", async () => {
  const { kv, scope, seen } = await setup();
  try {
    const tags = names("s", 140);
    await unacked(kv, tags.filter((t) => t !== "s3")); // s3: acknowledged before
    seen.beforeCommit = async (attempt) => {
      if (attempt !== 0) return;
      await kv.delete([...NS, "unacked", "s10"]); // read, then settled: the commit's check fails
      await kv.delete([...NS, "unacked", "s100"]); // not read yet
    };
    const moved = await moveBackMany(scope, tags, true);
    assert.equal(seen.lost, 1, "the first commit lost its check on s10");
    const left = tags.filter((t) => !["s3", "s10", "s100"].includes(t));
    assert.equal(moved, left.length);
    assert.deepEqual((await queued(kv)).map(nameOf), left);
    assert.equal(await depth(kv), BigInt(left.length));
    assert.deepEqual(seen.commits.flat(), left);
    assert.equal(await moveBackMany(scope, tags, true), 0, "all settled now");
  } finally {
    kv.close();
  }
});

Deno.test("kv requeue many: redelivered is set, or kept when already set", async () => {
  const { kv, scope } = await setup();
  try {
    await unacked(kv, ["fresh1", "fresh2"]);
    await unacked(kv, ["again"], 10, true);
    assert.equal(await moveBackMany(scope, ["fresh1", "again", "fresh2"], false), 3);
    assert.deepEqual(
      (await queued(kv)).map((m) => [nameOf(m), m.redelivered]),
      [["fresh1", false], ["again", true], ["fresh2", false]],
    );
    const { kv: kv2, scope: scope2 } = await setup();
    try {
      await unacked(kv2, ["one", "two"]);
      assert.equal(await moveBackMany(scope2, ["two", "one"], true), 2);
      assert.deepEqual((await queued(kv2)).map((m) => [nameOf(m), m.redelivered]), [
        ["two", true],
        ["one", true],
      ]);
    } finally {
      kv2.close();
    }
  } finally {
    kv.close();
  }
});
