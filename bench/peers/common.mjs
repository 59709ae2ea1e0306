// deno-lint-ignore-file no-console
// What the peer scripts share: the command line, the tasks, timing output.
// Each peer script is `node <peer>.mjs worker|enqueue N|enqueue-single N|roundtrip N WARMUP|spin N MS`
// (BullMQ also `burst N ROUNDS IDLE_MS POLL_MS`),
// with BENCH_BROKER_URL (and, on Redis, BENCH_BACKEND_DB) from `deno task bench`.

/** Queue the peers use, as the Celeriac and Celery sides do (`BENCH_QUEUE`: the raw worker of interleaved B). */
export const QUEUE = process.env.BENCH_QUEUE ?? "bench";
/** Broker URL (Redis with its db, or AMQP with its vhost). */
export const BROKER_URL = process.env.BENCH_BROKER_URL ??
  "redis://127.0.0.1:6379/14";
/** Where drained tasks send their result on RabbitMQ (as the Celeriac/Celery sides do). */
export const REPLY_QUEUE = "bench.replies";

/** Busy-loop for `ms` milliseconds of wall time: the CPU-bound task. */
export function spin(ms) {
  const end = performance.now() + ms;
  let x = 0;
  while (performance.now() < end) x++;
  return x >= 0 ? 1 : 0;
}

/** The command and its numbers. */
export function command() {
  const [cmd, ...rest] = process.argv.slice(2);
  return { cmd, n: Number(rest[0] ?? 0), m: Number(rest[1] ?? 0) };
}

/** Print the seconds `fn` took, as JSON, and exit. */
export async function timed(fn) {
  const start = performance.now();
  await fn();
  console.log(JSON.stringify({ seconds: (performance.now() - start) / 1000 }));
}

/** `warmup` then `n` sequential calls of `once`; print their latencies, as JSON. */
export async function roundTrips(n, warmup, once) {
  const latencies = [];
  for (let i = 0; i < warmup + n; i++) {
    const start = performance.now();
    await once();
    if (i >= warmup) latencies.push(performance.now() - start);
  }
  console.log(JSON.stringify({ latencies_ms: latencies }));
}

/** A Celery protocol 2 message envelope (JSON body) for the raw clients, as kombu writes it. */
export function celeryMessage(id, task, args, replyTo) {
  const body = Buffer.from(
    JSON.stringify([args, {}, {
      callbacks: null,
      errbacks: null,
      chain: null,
      chord: null,
    }]),
  );
  return {
    body,
    headers: {
      lang: "js",
      task,
      id,
      root_id: id,
      parent_id: null,
      group: null,
      retries: 0,
      eta: null,
      expires: null,
      origin: "bench@raw",
      argsrepr: JSON.stringify(args),
      kwargsrepr: "{}",
    },
    properties: {
      correlation_id: id,
      reply_to: replyTo,
      delivery_mode: 2,
      priority: 0,
    },
  };
}
