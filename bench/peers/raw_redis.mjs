// deno-lint-ignore-file no-console
// Raw ioredis ceiling on Celery's Redis layout: the worker pops up to 100
// messages per command (LMPOP from the right, as kombu's BRPOP end), reads
// each envelope's task id, and writes each result (SETEX
// celery-task-meta-<id> in BENCH_BACKEND_DB, one day) in the same pipeline
// as the next pop: one round trip per 100 tasks. At most once (no unacked
// bookkeeping): a ceiling, not a design. Clients LPUSH Celery protocol 2
// envelopes, 1,000 per command, all pipelined (`enqueue N`), or one awaited
// LPUSH at a time (`enqueue-single N`); `roundtrip` pipelines LPUSH and a
// BRPOP of the message's reply list (`roundtrip-serve`: the same, in blocks asked for on stdin).
import Redis from "ioredis";
import { BROKER_URL, celeryMessage, command, QUEUE, roundTrips, spin, timed } from "./common.mjs";

const BATCH = 100;
const BROKER_DB = Number(new URL(BROKER_URL).pathname.slice(1) || 0);
const BACKEND_DB = Number(process.env.BENCH_BACKEND_DB ?? BROKER_DB);
const { cmd, n, m } = command();
const redis = new Redis(BROKER_URL);

function envelope(task, args, replyTo) {
  const id = crypto.randomUUID();
  const msg = celeryMessage(id, task, args, replyTo);
  return JSON.stringify({
    body: msg.body.toString("base64"),
    "content-encoding": "utf-8",
    "content-type": "application/json",
    headers: msg.headers,
    properties: {
      ...msg.properties,
      body_encoding: "base64",
      delivery_info: { exchange: "", routing_key: QUEUE },
      delivery_tag: crypto.randomUUID(),
    },
  });
}

function run(raw) {
  const m = JSON.parse(raw);
  const id = m.headers.id;
  const result = m.headers.task === "bench.spin"
    ? spin(JSON.parse(Buffer.from(m.body, "base64").toString())[0][0])
    : 1;
  return {
    id,
    replyTo: m.properties.reply_to,
    meta: JSON.stringify({
      status: "SUCCESS",
      result,
      traceback: null,
      children: [],
      date_done: new Date().toISOString(),
      task_id: id,
    }),
  };
}

if (cmd === "worker") {
  let stopping = false;
  process.on("SIGTERM", () => {
    stopping = true;
    setTimeout(() => process.exit(0), 50);
  });
  let items = null;
  while (!stopping) {
    if (!items) {
      const got = await redis.call(
        "BLMPOP",
        1,
        1,
        QUEUE,
        "RIGHT",
        "COUNT",
        BATCH,
      );
      if (!got) continue;
      items = got[1];
    }
    const p = redis.pipeline();
    p.select(BACKEND_DB);
    const replies = [];
    for (const raw of items) {
      const r = run(raw);
      p.setex(`celery-task-meta-${r.id}`, 86400, r.meta);
      if (r.replyTo?.startsWith("raw.reply.")) replies.push(r);
    }
    p.select(BROKER_DB);
    for (const r of replies) p.lpush(r.replyTo, r.meta);
    p.call("LMPOP", 1, QUEUE, "RIGHT", "COUNT", BATCH);
    const res = await p.exec();
    const last = res[res.length - 1][1];
    items = last ? last[1] : null;
  }
} else {
  const push = async (task, args) => {
    const p = redis.pipeline();
    for (let i = 0; i < n; i += 1000) {
      p.lpush(
        QUEUE,
        ...Array.from(
          { length: Math.min(1000, n - i) },
          () => envelope(task, args),
        ),
      );
    }
    await p.exec();
  };
  if (cmd === "enqueue") await timed(() => push("bench.noop", []));
  else if (cmd === "spin") await timed(() => push("bench.spin", [m]));
  else if (cmd === "enqueue-single") {
    await timed(async () => {
      for (let i = 0; i < n; i++) {
        await redis.lpush(QUEUE, envelope("bench.noop", []));
      }
    });
  } else if (cmd === "roundtrip") {
    const reply = `raw.reply.${process.pid}`;
    await roundTrips(n, m, async () => {
      await redis.pipeline().lpush(QUEUE, envelope("bench.noop", [], reply))
        .brpop(reply, 30).exec();
    });
  } else if (cmd === "roundtrip-serve") {
    // One line in per block ("N W": W unmeasured round trips, then N measured), one JSON
    // line out with the N latencies: bench/rtt_pair.ts alternates blocks of this client with
    // blocks of Celeriac's, both clients and workers alive throughout.
    const reply = `raw.reply.${process.pid}`;
    const once = async () => {
      await redis.pipeline().lpush(QUEUE, envelope("bench.noop", [], reply))
        .brpop(reply, 30).exec();
    };
    const { createInterface } = await import("node:readline");
    for await (const line of createInterface({ input: process.stdin })) {
      const [count, warm] = line.trim().split(" ").map(Number);
      const latencies = [];
      for (let i = 0; i < warm + count; i++) {
        const start = performance.now();
        await once();
        if (i >= warm) latencies.push(performance.now() - start);
      }
      console.log(JSON.stringify({ latencies_ms: latencies }));
    }
  } else throw new Error(`unknown command ${cmd}`);
  redis.disconnect();
  process.exit(0);
}
