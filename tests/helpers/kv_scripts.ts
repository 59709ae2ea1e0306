/** Scripts that another Deno process runs on a KV database file (cross-process tests). */

const BROKER = JSON.stringify(new URL("../../src/broker/kv.ts", import.meta.url).href);

/** Publishes `"from another process"` (headers id `child`) to queue `args[1]` of `kv://` URL `args[0]`. */
export const KV_PUBLISH_SCRIPT = `import { openKvBroker } from ${BROKER};
const [url, queue] = Deno.args;
const broker = await openKvBroker(url);
await broker.publish({
  body: new TextEncoder().encode('"from another process"'),
  contentType: "application/json",
  contentEncoding: "utf-8",
  headers: { task: "x", id: "child" },
  properties: {},
}, { routingKey: queue });
await broker.close();
`;

/** Takes one message (3 s at most) from queue `args[1]` of `args[0]` and prints its JSON bodies. */
export const KV_TAKE_SCRIPT = `import { openKvBroker } from ${BROKER};
const [url, queue] = Deno.args;
const broker = await openKvBroker(url);
const got = await broker.take([queue], { max: 1, signal: AbortSignal.timeout(3_000) });
console.log(got.map((d) => JSON.parse(new TextDecoder().decode(d.body))).join(","));
await broker.close();
`;
