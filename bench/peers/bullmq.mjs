// deno-lint-ignore-file no-console
// BullMQ peer: one process, concurrency 100 (`worker`); `enqueue N` with
// Queue.addBulk in chunks of 1,000; `enqueue-single N` with awaited
// Queue.add() in a loop; `spin N MS` adds N CPU-bound jobs (addBulk);
// `roundtrip N WARMUP`: add() then job.waitUntilFinished(); `burst N ROUNDS
// IDLE_MS POLL_MS` (workload E): one job, then ROUNDS times an idle pause and
// N jobs with addBulk, timed to the N-th completed job.
import { Queue, QueueEvents, Worker } from "bullmq";
import Redis from "ioredis";
import { BROKER_URL, command, QUEUE, roundTrips, spin, timed } from "./common.mjs";

const url = new URL(BROKER_URL);
const connection = {
  host: url.hostname,
  port: Number(url.port || 6379),
  db: Number(url.pathname.slice(1) || 0),
  maxRetriesPerRequest: null,
};
const { cmd, n, m } = command();
const CHUNK = 1000;

if (cmd === "worker") {
  const worker = new Worker(
    QUEUE,
    (job) => job.name === "spin" ? spin(job.data.ms) : 1,
    { connection, concurrency: 100 },
  );
  worker.on("error", (e) => console.error("worker error", e));
  const stop = async () => {
    await worker.close();
    process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
} else {
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  const bulk = async (name, data) => {
    for (let i = 0; i < n; i += CHUNK) {
      await queue.addBulk(
        Array.from({ length: Math.min(CHUNK, n - i) }, () => ({ name, data })),
      );
    }
  };
  if (cmd === "enqueue") await timed(() => bulk("noop", {}));
  else if (cmd === "spin") await timed(() => bulk("spin", { ms: m }));
  else if (cmd === "enqueue-single") {
    await timed(async () => {
      for (let i = 0; i < n; i++) await queue.add("noop", {});
    });
  } else if (cmd === "roundtrip") {
    const events = new QueueEvents(QUEUE, { connection });
    await events.waitUntilReady();
    await roundTrips(n, m, async () => {
      const job = await queue.add("noop", {});
      await job.waitUntilFinished(events, 30_000);
    });
    await events.close();
  } else if (cmd === "burst") {
    const [rounds, idleMs, pollMs] = process.argv.slice(4, 7).map(Number);
    const client = new Redis(BROKER_URL);
    const completed = () => client.zcard(`bull:${QUEUE}:completed`);
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    const until = async (count) => {
      const deadline = performance.now() + 120_000;
      while (await completed() < count) {
        if (performance.now() > deadline) throw new Error(`timed out waiting for ${count} jobs`);
        await sleep(pollMs);
      }
      return performance.now();
    };
    await queue.add("noop", {});
    await until(1);
    const roundsMs = [];
    const sendMs = [];
    for (let round = 0; round < rounds; round++) {
      await sleep(idleMs);
      const target = await completed() + n;
      const start = performance.now();
      await bulk("noop", {});
      sendMs.push(performance.now() - start);
      roundsMs.push(await until(target) - start);
    }
    console.log(JSON.stringify({ roundsMs, sendMs }));
    client.disconnect();
  } else throw new Error(`unknown command ${cmd}`);
  await queue.close();
  process.exit(0);
}
