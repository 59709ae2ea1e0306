/**
 * The dashboard's workers, from `worker-online` / `worker-heartbeat` /
 * `worker-offline` events and the task events they send. Pure.
 *
 * @module
 */

import type { DashboardEvent, EventCore } from "./feed.ts";

/**
 * What the dashboard knows of a worker.
 *
 * @example
 * ```ts
 * import { WorkerTable } from "@celeriac/celeriac/dashboard";
 * const workers = new WorkerTable();
 * workers.apply({ type: "worker-online", hostname: "celery@h", timestamp: 10, freq: 2 });
 * workers.list(11)[0].online; // true
 * ```
 */
export interface WorkerRecord {
  /** Node name. */
  hostname: string;
  /** Online: a heartbeat came within twice its interval, and no `worker-offline` since. */
  online: boolean;
  /** `celeriac` or `python` (from `sw_ident`), or `unknown`. */
  language: "celeriac" | "python" | "unknown";
  /** Software and version, e.g. `py-celery 5.2.6`. */
  software: string | null;
  /** Process id. */
  pid: number | null;
  /** Heartbeat interval in seconds (at most 300). */
  freq: number;
  /** Last heartbeat (Unix seconds; at most 60 s ahead of the dashboard's clock when it came). */
  lastHeartbeat: number | null;
  /** Tasks running now (from heartbeats). */
  active: number;
  /** Tasks started since the worker started (from heartbeats). */
  processed: number;
  /** Tasks that succeeded, as seen by the dashboard. */
  succeeded: number;
  /** Tasks that failed, as seen by the dashboard. */
  failed: number;
  /** Load average (the first 3 numbers a heartbeat carries). */
  loadavg: number[];
  /** Queues it consumes (from `inspect active_queues`), once known. */
  queues: string[];
  /** Pool size (`inspect stats`: how many `pool.processes`, else `max-concurrency`), once known. */
  pool: number | null;
}

const MAX_WORKERS = 1000;
/** How far ahead of this machine's clock a heartbeat's time is believed (clock drift), seconds. */
const MAX_AHEAD_S = 60;
/** The longest heartbeat interval believed, seconds (Celery's default is 2). */
const MAX_FREQ_S = 300;

/**
 * Workers by node name.
 *
 * @example
 * ```ts
 * import { WorkerTable } from "@celeriac/celeriac/dashboard";
 * const workers = new WorkerTable();
 * workers.apply({ type: "worker-offline", hostname: "celery@h", timestamp: 10 });
 * workers.get("celery@h")?.online; // false
 * ```
 */
export class WorkerTable {
  readonly #workers = new Map<string, WorkerRecord>();
  /** Inspect facts by node, kept for nodes whose first event comes after the reply. */
  readonly #inspected = new Map<string, { queues: string[]; pool: number | null }>();

  /**
   * Apply an event; returns the worker it changed (every event names its sender).
   *
   * @param e the event
   * @returns the worker record, or null for `task-sent` (sent by clients)
   */
  apply(event: EventCore | DashboardEvent): WorkerRecord | null {
    const e = event as DashboardEvent;
    if (e.type === "task-sent" || typeof e.hostname !== "string") return null;
    let w = this.#workers.get(e.hostname);
    if (!w) {
      if (this.#workers.size >= MAX_WORKERS) this.#evictOffline();
      w = {
        hostname: e.hostname,
        online: false,
        language: "unknown",
        software: null,
        pid: null,
        freq: 2,
        lastHeartbeat: null,
        active: 0,
        processed: 0,
        succeeded: 0,
        failed: 0,
        loadavg: [],
        queues: [...(this.#inspected.get(e.hostname)?.queues ?? [])],
        pool: this.#inspected.get(e.hostname)?.pool ?? null,
      };
      this.#workers.set(e.hostname, w);
    }
    if (typeof e.pid === "number") w.pid = e.pid;
    if (e.type === "worker-online" || e.type === "worker-heartbeat") {
      w.online = true;
      // An event without a timestamp (none of Celery's) counts as heard now; one from further
      // ahead than MAX_AHEAD_S as heard that far ahead, so it cannot stay online for ever.
      const heard = Date.now() / 1000;
      w.lastHeartbeat = typeof e.timestamp === "number"
        ? Math.min(e.timestamp, heard + MAX_AHEAD_S)
        : heard;
      if (typeof e.freq === "number" && e.freq > 0) w.freq = Math.min(e.freq, MAX_FREQ_S);
      if (typeof e.active === "number") w.active = e.active;
      if (typeof e.processed === "number") w.processed = e.processed;
      if (Array.isArray(e.loadavg)) {
        w.loadavg = e.loadavg.slice(0, 3).filter((n) => typeof n === "number");
      }
      if (typeof e.sw_ident === "string") {
        w.language = e.sw_ident === "py-celery"
          ? "python"
          : /celeriac/i.test(e.sw_ident)
          ? "celeriac"
          : "unknown";
        w.software = `${e.sw_ident} ${typeof e.sw_ver === "string" ? e.sw_ver : ""}`.trim();
      }
    } else if (e.type === "worker-offline") {
      w.online = false;
      w.active = 0;
    } else if (e.type === "task-succeeded") {
      w.succeeded++;
    } else if (e.type === "task-failed") {
      w.failed++;
    }
    return w;
  }

  #evictOffline(): void {
    for (const [name, w] of this.#workers) {
      if (!w.online) {
        this.#workers.delete(name);
        return;
      }
    }
    this.#workers.delete(this.#workers.keys().next().value as string);
  }

  /**
   * Mark workers whose heartbeat is overdue (twice the interval) offline.
   *
   * @param now Unix seconds
   * @returns the workers that went offline
   */
  expire(now: number): WorkerRecord[] {
    const gone: WorkerRecord[] = [];
    for (const w of this.#workers.values()) {
      if (w.online && w.lastHeartbeat !== null && now - w.lastHeartbeat > 2 * w.freq) {
        w.online = false;
        gone.push(w);
      }
    }
    return gone;
  }

  /**
   * Record what inspect replies tell of a worker: the queues it consumes,
   * its pool size (kept for its record if it has sent no event yet).
   *
   * @param hostname node name
   * @param facts `queues` and/or `pool`
   * @returns the record, or undefined for a worker that sent no event
   */
  setInspected(
    hostname: string,
    facts: { queues?: readonly string[]; pool?: number },
  ): WorkerRecord | undefined {
    const known = this.#inspected.get(hostname) ?? { queues: [], pool: null };
    this.#inspected.delete(hostname);
    if (facts.queues) known.queues = [...facts.queues];
    if (facts.pool !== undefined) known.pool = facts.pool;
    this.#inspected.set(hostname, known);
    if (this.#inspected.size > MAX_WORKERS) {
      this.#inspected.delete(this.#inspected.keys().next().value as string);
    }
    const w = this.#workers.get(hostname);
    if (w) {
      w.queues = [...known.queues];
      w.pool = known.pool;
    }
    return w;
  }

  /**
   * A worker by node name.
   *
   * @param hostname node name
   * @returns the record or undefined
   */
  get(hostname: string): WorkerRecord | undefined {
    return this.#workers.get(hostname);
  }

  /**
   * The node names of the workers online, as last checked (no expiry here:
   * {@link WorkerTable.expire} does it).
   *
   * @returns node names
   */
  onlineNames(): string[] {
    const names: string[] = [];
    for (const w of this.#workers.values()) if (w.online) names.push(w.hostname);
    return names;
  }

  /**
   * Every worker, online first, then by name; heartbeats checked at `now`.
   *
   * @param now Unix seconds
   * @returns the workers
   */
  list(now: number = Date.now() / 1000): WorkerRecord[] {
    this.expire(now);
    return [...this.#workers.values()].sort((a, b) =>
      Number(b.online) - Number(a.online) || a.hostname.localeCompare(b.hostname)
    );
  }
}
