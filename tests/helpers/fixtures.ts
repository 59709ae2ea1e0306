/** Celery 5.2.6 captures (tests/fixtures/celery-5.2) read by several test files. */

/**
 * The body of the `worker-heartbeat` Celery 5.2's worker published for
 * `app.control.heartbeat()` (no `active`, `processed`, `loadavg`; `"freq": 5`).
 */
export function celeryRequestedHeartbeat(): string {
  const capture = JSON.parse(Deno.readTextFileSync(
    new URL("../fixtures/celery-5.2/redis/worker/control_heartbeat_cast.json", import.meta.url),
  )) as { redis_commands_in_window: { cmd: string[] }[] };
  const published = capture.redis_commands_in_window.find((c) =>
    c.cmd[1] === "/1.celeryev/worker.heartbeat"
  );
  if (!published) throw new Error("control_heartbeat_cast.json has no worker.heartbeat PUBLISH");
  const envelope = JSON.parse(published.cmd[2]) as { body: string };
  return new TextDecoder().decode(Uint8Array.fromBase64(envelope.body));
}
