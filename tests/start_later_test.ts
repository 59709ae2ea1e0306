/**
 * A worker's start-up step that does not answer (a Redis Cluster's
 * `{celeriac}` master down): the start goes on after the wait, the step in
 * the background, said when it succeeded; a step that fails at once still
 * fails the start.
 */

import assert from "node:assert/strict";
import { reset } from "@logtape/logtape";
import { BrokerConnectionError } from "../src/broker/errors.ts";
import { startOrLater } from "../src/worker/start_later.ts";
import { captureLogs, logLine } from "./helpers/logs.ts";
import { waitUntil } from "./helpers/redis_servers.ts";

Deno.test("start later: a step without an answer goes on in the background and says when it succeeded", async () => {
  const records = await captureLogs("info", ["celeriac", "worker"]);
  const stop = new AbortController();
  try {
    let tries = 0;
    const answer = Promise.withResolvers<number>();
    const got: number[] = [];
    await startOrLater({
      what: "read revoked ids",
      run: () => {
        tries++;
        // The first try rides out the outage; a second one (after it failed) answers.
        return tries === 1 ? answer.promise : Promise.resolve(3);
      },
      done: (n) => {
        got.push(n);
        return `read ${n} revoked id(s)`;
      },
      meanwhile: "revokes are honoured once read",
    }, { hostname: "w1@host", waitMs: 10, stop: stop.signal });
    assert.deepEqual(got, []);
    answer.reject(new BrokerConnectionError("redis://x", new Error("connect ECONNREFUSED")));
    await waitUntil("the step to succeed", () => Promise.resolve(got.length > 0), 20_000);
    assert.deepEqual(got, [3]);
    const lines = records.map(logLine);
    assert.match(
      lines[0],
      /w1@host: read revoked ids: no answer yet .* revokes are honoured once read/,
    );
    assert.match(lines.at(-1)!, /^info w1@host: read 3 revoked id\(s\)$/);
  } finally {
    stop.abort();
    await reset();
  }
});

Deno.test("start later: a step that fails within the wait fails the start", async () => {
  await assert.rejects(
    startOrLater({
      what: "read revoked ids",
      run: () => Promise.reject(new Error("NOPERM")),
      done: () => "read",
      meanwhile: "",
    }, { hostname: "w1@host" }),
    /NOPERM/,
  );
});
