/**
 * A worker's presence for monitors: `worker-online` at start,
 * `worker-heartbeat` every `freq` seconds, `worker-offline` at shutdown.
 * Monitors consider a worker alive while its last heartbeat is younger than
 * twice `freq`.
 *
 * @module
 */

import { CELERIAC_VERSION } from "../client/version.ts";
import { grantedNow } from "../client/runtime.ts";
import type { EventDispatcher } from "./event_dispatcher.ts";

/** Celery's default heartbeat interval in seconds. */
export const HEARTBEAT_INTERVAL = 2;

/** The `freq` of the heartbeat the `heartbeat` control command asks for (Celery's). */
const REQUESTED_FREQ = 5;
/** Its float fields: `freq` is an int there (`"freq": 5`), `timestamp` a float. */
const REQUESTED_FLOATS: ReadonlySet<string> = new Set(["timestamp"]);

/**
 * The operating system as Python's `platform.system()` names it.
 *
 * @example
 * ```ts
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
 * ```ts
 * loadAverage(); // [0.52, 0.4, 0.31]
 * ```
 *
 * @returns `[1 min, 5 min, 15 min]`
 */
export function loadAverage(): number[] {
  try {
    if (!grantedNow({ name: "sys", kind: "loadavg" })) return [0, 0, 0];
    return Deno.loadavg().map((x) => Math.round(x * 100) / 100);
  } catch {
    return [0, 0, 0];
  }
}

/**
 * Sends a worker's `worker-*` events.
 *
 * @example
 * ```ts
 * import { Heartbeat } from "./heartbeat.ts";
 * import type { EventDispatcher } from "./event_dispatcher.ts";
 * declare const events: EventDispatcher;
 * const heart = new Heartbeat(events, () => ({ active: 0, processed: 0 }));
 * heart.start(); // worker-online, then worker-heartbeat every 2 s
 * heart.requested(); // the `heartbeat` control command
 * heart.stop(); // worker-offline; returns at once (nothing to await)
 * await events.close(); // publishes the events still queued
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
   * @param freq seconds between heartbeats (default 2; 0 sends none, and no `worker-online` / `worker-offline`)
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

  /**
   * Send `worker-online` and start the heartbeats; nothing when `freq` is 0
   * (`--without-heartbeat`: {@link requested} still sends one, as Celery's).
   */
  start(): void {
    if (this.#freq <= 0) return;
    this.#send("worker-online");
    this.#timer = setInterval(() => this.#send("worker-heartbeat"), this.#freq * 1000);
  }

  /**
   * Send the heartbeat the `heartbeat` control command asks for, as Celery
   * 5.2 sends it: `freq` 5 (a Python int: `"freq": 5`) and the software
   * fields, without `active`, `processed` and `loadavg` (monitors keep
   * the last heartbeat's).
   */
  requested(): void {
    this.#events.send("worker-heartbeat", {
      freq: REQUESTED_FREQ,
      ...software(),
    }, REQUESTED_FLOATS);
  }

  /** Stop the heartbeats and send `worker-offline` (when they were started). */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.#send("worker-offline");
  }

  #send(type: "worker-online" | "worker-heartbeat" | "worker-offline"): void {
    const { active, processed } = this.#counts();
    const freq = this.#freq;
    this.#events.send(type, { freq, active, processed, loadavg: loadAverage(), ...software() });
  }
}

/** `sw_ident`, `sw_ver`, `sw_sys`: Celery's `SOFTWARE_INFO`, for Celeriac. */
function software(): { sw_ident: string; sw_ver: string; sw_sys: string } {
  return { sw_ident: "celeriac", sw_ver: CELERIAC_VERSION, sw_sys: systemName() };
}
