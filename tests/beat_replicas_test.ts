/**
 * Beat replicas against real servers (Redis, and a KV file shared by
 * processes): two beats send each run once; a SIGKILLed leader is replaced
 * once its lease runs out; a restarted beat catches up once, at start.
 */

import assert from "node:assert/strict";
import { decodeRunState, type LeaseInfo, openBroker, openScheduleStore } from "../protocol.ts";
import { type Proc, startBeatApp } from "./helpers/procs.ts";
import { privateServers } from "./helpers/redis_servers.ts";
import { WITHOUT_REDIS } from "./helpers/services.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const LEASE = 3;

interface Place {
  broker: string;
  queue: string;
  cleanup(): Promise<void>;
}

/**
 * A private redis-server: the shared one also serves the test files running beside this one, and
 * canvas_worker's group of 200,000 stalled it for 2.7 s (a PING probe, the test alone). CI at
 * 27e7152 (load 12, that test running beside this one): 6.6 s from the last send of the killed
 * leader to the first of the new one, where the takeover comes 3.0 s after the kill and the
 * catch-up 0.2-0.3 s after that (ten busy loops beside the test, each round trip unhindered).
 */
async function redisPlace(): Promise<Place> {
  const servers = await privateServers("beat", (s) => s.redis());
  return {
    broker: `redis://127.0.0.1:${servers.base}/0`,
    queue: "beat-ticks",
    cleanup: () => servers.stop(),
  };
}

async function kvPlace(): Promise<Place> {
  const dir = await Deno.makeTempDir({ prefix: "celeriac-beat-test-" });
  return {
    broker: `kv://${dir}/broker.sqlite`,
    queue: "beat-ticks",
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

function startBeat(place: Place, name: string, every = 1): Proc {
  return startBeatApp(name, ["--lease-time", String(LEASE), "--max-interval", "1"], {
    BEAT_BROKER: place.broker,
    BEAT_QUEUE: place.queue,
    BEAT_EVERY: String(every),
  });
}

interface Send {
  at: number;
  id: string;
}

/** The sends a beat logged, with their log timestamps. */
function sends(p: Proc): Send[] {
  const re =
    /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) \[INF\] celeriac·beat: Scheduler: Sending due task tick \(beat\.tick\) id ([0-9a-f-]{36})/g;
  return [...p.output.matchAll(re)].map((m) => ({ at: Date.parse(`${m[1]}T${m[2]}Z`), id: m[3] }));
}

/** Wait until a beat has logged `n` sends. */
async function untilSent(p: Proc, n: number): Promise<void> {
  await p.waitFor(new RegExp(`(Sending due task tick[^]*){${n}}`), (n + LEASE + 3) * 1000);
}

/** When a beat first logged that it leads, its hostname and the fencing token it logged. */
function led(p: Proc): { at: number; hostname: string; token: number } {
  const m =
    /(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3}) \[INF\] celeriac·beat: beat: (\S+) is the leader \(fencing token (\d+)\)/
      .exec(p.output);
  assert.ok(m, `${p.name} never led:\n${p.output}`);
  return { at: Date.parse(`${m[1]}T${m[2]}Z`), hostname: m[3], token: Number(m[4]) };
}

/** The beat store of a place (the app's: its broker, the default namespace). */
async function withStore<T>(
  place: Place,
  fn: (store: Awaited<ReturnType<typeof openScheduleStore>>) => Promise<T>,
): Promise<T> {
  const store = await openScheduleStore(place.broker, { namespace: "celeriac.beat." });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Every task id waiting in the queue (taken and acknowledged: the queue is emptied). */
async function queued(place: Place): Promise<string[]> {
  const broker = await openBroker(place.broker);
  try {
    const ids: string[] = [];
    for (;;) {
      // Not 300 ms: on a loaded machine the first take from a KV file can take longer.
      const got = await broker.take([place.queue], { max: 100, signal: AbortSignal.timeout(2000) });
      if (got.length === 0) return ids;
      for (const d of got) {
        assert.equal(d.headers.task, "beat.tick");
        ids.push(String(d.headers.id));
      }
      await broker.ack(got);
    }
  } finally {
    await broker.close();
  }
}

async function depth(place: Place): Promise<number> {
  const broker = await openBroker(place.broker);
  try {
    return await broker.queueDepth(place.queue);
  } finally {
    await broker.close();
  }
}

async function twoBeatsSendOnce(place: Place): Promise<void> {
  const a = startBeat(place, "beat A");
  const b = startBeat(place, "beat B");
  try {
    await Promise.any([a.waitFor(/is the leader/), b.waitFor(/is the leader/)]);
    const d0 = await depth(place);
    await sleep(5000);
    const sentIn5s = (await depth(place)) - d0;
    // Both beats sending would give 10; one sending twice per slot too.
    assert.ok(
      sentIn5s >= 4 && sentIn5s <= 6,
      `1 s interval for 5 s sent ${sentIn5s}:\n${a.output}\n${b.output}`,
    );
  } finally {
    // The follower first: a leader's stop releases the lease, which a follower still running
    // takes at its next wake (a graceful handover). Stopped together, a loaded machine that
    // handles the follower's SIGTERM late makes it lead for a moment, and this counted 2 leaders.
    const follower = /is the leader/.test(a.output) ? b : a;
    await follower.stop();
    await (follower === a ? b : a).stop();
  }
  const leaders = [a, b].filter((p) => /is the leader/.test(p.output));
  assert.equal(leaders.length, 1, `exactly one beat led:\n${a.output}\n${b.output}`);
  // A slot sent twice would be sent by the other beat too. (Not timed: on a loaded machine a
  // send late by most of an interval comes a few ms before the next slot's, as the grid wants.)
  const follower = leaders[0] === a ? b : a;
  assert.deepEqual(sends(follower), [], `${follower.name} sent nothing`);
  const logged = [...sends(a), ...sends(b)];
  const ids = await queued(place);
  assert.equal(new Set(ids).size, ids.length);
  assert.deepEqual(ids.toSorted(), logged.map((s) => s.id).toSorted(), "queue = logged sends");
}

async function leaderKilled(place: Place): Promise<void> {
  const a = startBeat(place, "beat A");
  let b: Proc | null = null;
  let held: LeaseInfo | null = null;
  try {
    await a.waitFor(/is the leader/);
    b = startBeat(place, "beat B");
    await b.waitFor(/Starting/);
    // B runs beside the leader for one of its slots at least, and the leader has sent three.
    await untilSent(a, Math.max(3, sends(a).length + 1));
    // The lease the standby waits out (A renews it until the kill: never longer than this).
    held = await withStore(place, (store) => store.lease());
    const status = await a.stop("SIGKILL");
    assert.equal(status.signal, "SIGKILL");
    await b.waitFor(/is the leader/, (LEASE + 3) * 1000);
    await untilSent(b, 3); // the catch-up and two slots after it
  } finally {
    await Promise.all([a.stop("SIGKILL"), b?.stop()]);
  }
  const all = [
    ...sends(a).map((s) => ({ ...s, by: a })),
    ...sends(b!).map((s) => ({ ...s, by: b })),
  ]
    .toSorted((x, y) => x.at - y.at);
  const ids = await queued(place);
  // A send published just before the kill may not have been logged: never the reverse.
  for (const s of all) assert.ok(ids.includes(s.id), `logged ${s.id} is in the queue`);
  assert.ok(ids.length - all.length <= 1);
  const gaps = all.slice(1).map((s, i) => s.at - all[i].at);
  const outputs = `gaps ${gaps.join(", ")} ms:\n${a.output}\n${b!.output}`;
  // A slot sent twice (by two leaders, or a catch-up and its slot) comes within a few ms where
  // one leader hands over to the other. Within one leader's sends no gap is asserted: a send
  // late by most of an interval on a loaded machine comes a few ms before the next slot's.
  const handovers = all.slice(1).flatMap((s, i) => s.by !== all[i].by ? [i] : []);
  assert.deepEqual(handovers.length, 1, `one handover, from A to B: ${outputs}`);
  assert.ok(gaps[handovers[0]] >= 200, `no slot sent twice: ${outputs}`);
  // Taken over when the dead leader's lease ran out (not timed: the lease holders). A held a
  // lease of at most the lease time, and B took the next one (token one higher: nobody, the
  // dead leader neither, held one in between), having stood by for A's.
  const [ledA, ledB] = [led(a), led(b!)];
  assert.ok(held, `no lease held while A led: ${outputs}`);
  assert.deepEqual([held.holder, held.token], [ledA.hostname, ledA.token], "A held the lease");
  assert.ok(held.ttlMs <= LEASE * 1000, `A's lease had ${held.ttlMs} ms left, over the lease`);
  assert.equal(ledB.token, ledA.token + 1, `B took the lease after A's: ${outputs}`);
  const standBy = b!.output.indexOf(`${ledA.hostname} leads (fencing token ${ledA.token})`);
  assert.ok(
    standBy >= 0 && standBy < b!.output.indexOf("is the leader"),
    `B stood by for A's lease before it led: ${outputs}`,
  );
  // The kill left the one long gap, closed by B's catch-up (not timed: which gap is longest).
  // B sending what fell due at once, in the step that takes the lease, the restart case checks.
  const longest = Math.max(...gaps);
  assert.equal(gaps.indexOf(longest), handovers[0], `the longest gap is the handover: ${outputs}`);
  assert.ok(longest >= 1500, `the kill left a gap (${longest} ms)`);
}

async function pausedLeaderIsFenced(place: Place): Promise<void> {
  const a = startBeat(place, "beat A");
  let b: Proc | null = null;
  let before = 0;
  try {
    await a.waitFor(/is the leader/);
    b = startBeat(place, "beat B");
    await b.waitFor(/Starting/);
    await untilSent(a, sends(a).length + 1); // a slot sent with B running beside the leader
    a.signal("SIGSTOP"); // a pause (GC, VM migration, network cut) longer than the lease
    before = sends(a).length;
    await b.waitFor(/is the leader/, (LEASE + 3) * 1000);
    await untilSent(b, 2); // the new leader sends while the old one is paused
    a.signal("SIGCONT");
    // Seen once in CI on a host at load 7 (four test files and three benchmarking sessions on
    // two cores): no line from A within 5 s of its resume; alone it notices within ms.
    await a.waitFor(/lost the lease/, 15_000);
    await sleep(2000);
  } finally {
    a.signal("SIGCONT");
    await Promise.all([a.stop(), b?.stop()]);
  }
  assert.ok(before >= 1);
  // A run the old leader recorded under its lease just before the pause is published after it
  // (the record is fenced, the publish is not): at most that one, and B does not send that slot
  // again (the gaps below). A record tried after the pause finds B's lease and is refused.
  assert.ok(
    sends(a).length - before <= 1,
    `the old leader sent at most the run it recorded before its pause:\n${a.output}`,
  );
  // That late publish goes out when A resumes, whenever that is: it may come within a few ms
  // of one of B's slots by chance (seen in CI: a 40 ms gap), so the gaps leave it out.
  const slots = [...sends(a).slice(0, before), ...sends(b!)].toSorted((x, y) => x.at - y.at);
  const gaps = slots.slice(1).map((s, i) => s.at - slots[i].at);
  // A slot sent twice (by two leaders, or a catch-up and its slot) comes within a few ms; a
  // send delayed by a loaded machine can come a few hundred ms before the next slot's.
  assert.ok(
    Math.min(...gaps) >= 200,
    `no slot sent twice (gaps ${gaps.join(", ")} ms):\n${a.output}\n${b!.output}`,
  );
  const ids = await queued(place);
  assert.deepEqual(ids.toSorted(), [...sends(a), ...sends(b!)].map((s) => s.id).toSorted());
}

async function restartCatchesUpOnce(place: Place): Promise<void> {
  const a = startBeat(place, "beat A", 2);
  try {
    await a.waitFor(/Sending due task tick/, 30_000);
  } finally {
    await a.stop();
  }
  // Two 2-second slots pass with no beat: one catch-up, where a run per missed slot sends two.
  await sleep(4500);
  const b = startBeat(place, "beat B (restarted)", 2);
  try {
    // Stopped as soon as it leads: a stop ends the loop after the step under way, the one that
    // took the lease, so only a run sent in that step (at start) is sent at all (not timed).
    await b.waitFor(/is the leader/, 30_000);
  } finally {
    await b.stop();
  }
  assert.equal(sends(b).length, 1, `the missed run is sent at start, once:\n${b.output}`);
  const state = await withStore(
    place,
    async (store) => decodeRunState((await store.readRuns()).get("tick")),
  );
  assert.ok(state, "the run is recorded");
  assert.equal(state.totalRunCount, sends(a).length + 1, "every send is counted once");
  // The grid restarts from the catch-up: a run per missed slot, or one keeping the old grid,
  // records a slot due before the restarted beat led.
  assert.ok(
    state.lastRunAt >= led(b).at,
    `the grid restarts from the catch-up: last run ${new Date(state.lastRunAt).toISOString()}` +
      `:\n${b.output}`,
  );
  const ids = await queued(place);
  assert.equal(ids.length, sends(a).length + 1);
}

const PLACES = ([["Redis", redisPlace], ["KV", kvPlace]] as const).filter(([label]) =>
  !(label === "Redis" && WITHOUT_REDIS)
);
const ON = PLACES.map(([label]) => label).join(" and ");

/**
 * Run a scenario on Redis and on a KV file at once (each with its own server or file and beats:
 * they wait on the beats' clocks, not the CPU). Both run to the end; a failure names its place.
 */
async function everywhere(scenario: (place: Place) => Promise<void>): Promise<void> {
  const outcomes = await Promise.allSettled(PLACES.map(async ([label, make]) => {
    const place = await make();
    try {
      await scenario(place);
    } catch (err) {
      if (err instanceof Error) err.message = `${label}: ${err.message}`;
      throw err;
    } finally {
      await place.cleanup();
    }
  }));
  const failed = outcomes.flatMap((o) => o.status === "rejected" ? [o.reason] : []);
  if (failed.length === 1) throw failed[0];
  if (failed.length > 1) throw new AggregateError(failed, failed.map((e) => String(e)).join("\n"));
}

Deno.test(`beat replicas (${ON}): two beats, 1 s interval for 5 s → 5 ± 1 sends, none twice`, () =>
  everywhere(twoBeatsSendOnce));

Deno.test(
  `beat replicas (${ON}): SIGKILL of the leader → the standby takes over its lease, no duplicate`,
  () => everywhere(leaderKilled),
);

Deno.test(
  `beat replicas (${ON}): a leader paused past its lease is fenced off and records no run after its pause`,
  () => everywhere(pausedLeaderIsFenced),
);

Deno.test(
  `beat replicas (${ON}): a restart after a pause sends the missed run once, at start`,
  () => everywhere(restartCatchesUpOnce),
);
