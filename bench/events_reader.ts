/**
 * `deno run -A bench/events_reader.ts PORT PATTERN`: a bare subscriber for
 * `events_pair.ts`'s `subscriber` mode. It PSUBSCRIBEs to `PATTERN` on the
 * Redis server at 127.0.0.1:`PORT` and reads the socket into one buffer until
 * killed, parsing nothing: Redis fans the events out to it as to a
 * dashboard, so a drain watched by it shows what the fan-out alone costs the
 * worker and Redis, apart from the dashboard's own work on the host's CPUs.
 * It prints `subscribed` once Redis confirmed the subscription.
 *
 * @module
 */

const [port, pattern] = Deno.args;
if (!port || !pattern) throw new TypeError("usage: events_reader.ts PORT PATTERN");
const conn = await Deno.connect({ hostname: "127.0.0.1", port: Number(port) });
const command = `*2\r\n$10\r\nPSUBSCRIBE\r\n$${pattern.length}\r\n${pattern}\r\n`;
await conn.write(new TextEncoder().encode(command));
const buffer = new Uint8Array(256 * 1024);
const first = await conn.read(buffer);
if (first === null) throw new Error("Redis closed the connection before confirming PSUBSCRIBE");
await Deno.stdout.write(new TextEncoder().encode("subscribed\n"));
while (await conn.read(buffer) !== null) {
  // the bytes are dropped: the reader only keeps the subscription drained
}
