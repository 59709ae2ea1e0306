/**
 * A worker's presence for monitors: `worker-online` at start,
 * `worker-heartbeat` every `freq` seconds, `worker-offline` at shutdown.
 * Monitors consider a worker alive while its last heartbeat is younger than
 * twice `freq`.
 *
 * @module
 */

import { CELERIAC_VERSION } from "../client/version.ts";
import type { EventDispatcher } from "./event_dispatcher.ts";

/** Celery's default heartbeat interval in seconds. */
export const HEARTBEAT_INTERVAL = 2;

/**
 * The operating system as Python's `platform.system()` names it.
 *
 * @example
 * ```ts ignore
 * systemName(); // "Linux"
 * ```
 *
 * @returns `Linux`, `Darwin`, `Windows`, ...
 */
export function systemName(): string {
  const os = Deno.build.os;
  if (os === "darwin") return "Darwin";
  return os.charAt(0).toUpperCase() + os.slice(1);
}

/**
 * The load average, rounded as Celery rounds it, or zeros when the process
 * may not read it (`--allow-sys=loadavg`).
 *
 * @example
 * ```ts ignore
 * loadAverage(); // [0.52, 0.4, 0.31]
 * ```
 *
 * @returns `[1 min, 5 min, 15 min]`
 */
export function loadAverage(): number[] {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "loadavg" }).state !== "granted") {
      return [0, 0, 0];
    }
    return Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  } catch {
    return [0, 0, 0];
  }
}

/**
 * Sends a worker's `worker-*` events.
 *
 * @example
 * ```ts ignore
 * const heart = new Heartbeat(events, () => ({ active: 0, processed: 0 }));
 * heart.start();
 * await heart.stop();
 * ```
 */
export class Heartbeat {
  readonly #events: EventDispatcher;
  readonly #counts: () => { active: number; processed: number };
  readonly #freq: number;
  #timer: ReturnType<typeof setInterval> | undefined;

  /**
   * @param events the dispatcher
   * @param counts tasks running now and started so far
   * @param freq seconds between heartbeats (default 2)
   */
  constructor(
    events: EventDispatcher,
    counts: () => { active: number; processed: number },
    freq: number = HEARTBEAT_INTERVAL,
  ) {
    this.#events = events;
    this.#counts = counts;
    this.#freq = freq;
  }

  /** Send `worker-online` and start the heartbeats. */
  start(): void {
    this.#send("worker-online", this.#freq);
    this.#timer = setInterval(() => this.#send("worker-heartbeat", this.#freq), this.#freq * 1000);
  }

  /**
   * Send one heartbeat now (the `heartbeat` control command, `freq` 5 in Celery).
   *
   * @param freq the `freq` field
   */
  beat(freq: number = this.#freq): void {
    this.#send("worker-heartbeat", freq);
  }

  /** Stop the heartbeats and send `worker-offline`. */
  stop(): void {
    clearInterval(this.#timer);
    this.#send("worker-offline", this.#freq);
  }

  #send(type: "worker-online" | "worker-heartbeat" | "worker-offline", freq: number): void {
    const { active, processed } = this.#counts();
    this.#events.send(type, {
      freq,
      active,
      processed,
      loadavg: loadAverage(),
      sw_ident: "celeriac",
      sw_ver: CELERIAC_VERSION,
      sw_sys: systemName(),
    });
  }
}
