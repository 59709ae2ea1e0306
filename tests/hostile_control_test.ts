/**
 * Hostile remote-control requests reaching a worker's pidbox: whatever a
 * request holds, handling it never throws into the transport that
 * delivered it (a throw there is uncaught: on Redis it ends the worker
 * process, and with it every worker on the fanout).
 */

import assert from "node:assert/strict";
import type { Broker } from "../src/broker/port.ts";
import { decodeEnvelope, encodeEnvelope, type Message } from "../protocol.ts";
import { type ControlTarget, RemoteControl } from "../worker.ts";

const NODE = "celeriac@hostile";

/** A pidbox on a fake broker: `deliver` hands it a raw request body, `replies` are what it sent. */
async function pidbox(): Promise<{
  deliver(body: string): void;
  replies: string[];
  revoked: string[];
  stop(): void;
}> {
  let onMessage: ((m: Message) => void) | undefined;
  const replies: string[] = [];
  const revoked: string[] = [];
  const broker = {
    subscribe(_exchange: string, fn: (m: Message) => void): Promise<void> {
      onMessage = fn;
      return Promise.resolve();
    },
    publish(message: Message): Promise<void> {
      replies.push(new TextDecoder().decode(message.body));
      return Promise.resolve();
    },
  } as unknown as Broker;
  const target: ControlTarget = {
    hostname: NODE,
    revoke: (ids) => {
      revoked.push(...ids);
      return [];
    },
    revoked: () => revoked,
    registered: () => [],
    setRateLimit: () => {},
    shutdown: () => {},
  };
  const ac = new AbortController();
  await new RemoteControl(broker, target).start(ac.signal);
  return {
    deliver(body: string) {
      const request: Message = {
        body: new TextEncoder().encode(body),
        contentType: "application/json",
        contentEncoding: "utf-8",
        headers: { clock: 1 },
        properties: {},
      };
      const raw = encodeEnvelope(request, { exchange: "celery.pidbox", routing_key: "" }, "t");
      onMessage!(decodeEnvelope(raw));
    },
    replies,
    revoked,
    stop: () => ac.abort(),
  };
}

async function settle(replies: string[], n: number): Promise<void> {
  for (let i = 0; i < 200 && replies.length < n; i++) await new Promise((r) => setTimeout(r, 1));
}

Deno.test("pidbox: a request whose arguments hold an integer beyond 2^53 is answered, not thrown into the transport", async () => {
  const box = await pidbox();
  try {
    const reply = '"reply_to": {"exchange": "reply.celery.pidbox", "routing_key": "k"}';
    box.deliver(
      '{"method": "revoke", "arguments": {"task_id": ["t-1"], "n": 123456789012345678901234567890},' +
        ` "destination": null, "ticket": "k1", ${reply}}`,
    );
    box.deliver(
      '{"method": "ping", "arguments": {"x": [18446744073709551616]}, "destination": null, ' +
        `"ticket": "k2", ${reply}}`,
    );
    await settle(box.replies, 2);
    assert.deepEqual(box.revoked, ["t-1"]);
    assert.deepEqual(box.replies.map((r) => JSON.parse(r)), [
      { [NODE]: { ok: "tasks t-1 flagged as revoked" } },
      { [NODE]: { ok: "pong" } },
    ]);
  } finally {
    box.stop();
  }
});
