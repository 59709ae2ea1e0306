/**
 * The dashboard server: `Deno.serve` on 127.0.0.1:5555 by default, the
 * single-page UI, the JSON API, a live stream of changes (server-sent
 * events) and `/metrics` for Prometheus, fed by an event source and inspect
 * replies.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import { type ApiContext, apiGet, apiPost, taskJson } from "./api.ts";
import { sleep } from "../broker/sleep.ts";
import { jsonText } from "../protocol/json.ts";
import { ASSETS } from "./assets.gen.ts";
import { type AuthOptions, checkAuth, checkListenAuth, validateAuth } from "./auth.ts";
import { errorResponse, HttpError, isParkedScanBusy } from "./errors.ts";
import { apiAllow, headOnly, methodNotAllowed, SECURITY_HEADERS } from "./http_methods.ts";
import { checkHost, requestUrl, validateAllowedHosts } from "./host_check.ts";
import { healthcheck } from "./healthcheck.ts";
import { clientInspector } from "./client_feed.ts";
import { pollInspect } from "./inspect_poll.ts";
import type { EventCore, EventSourceFn, Inspector } from "./feed.ts";
import { ViewModel } from "./view_model.ts";
import { LiveStreams } from "./live_streams.ts";
import { BrokerHealth } from "./broker_health.ts";
import { mapLimited } from "./map_limited.ts";

const log = getLogger(["celeriac", "dashboard"]);

/**
 * Options of {@link Dashboard}.
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import type { DashboardOptions } from "@celeriac/celeriac/dashboard";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const options: DashboardOptions = {
 *   app, port: 5555, auth: { basic: ["admin:s3cret"] }, hideArgs: true,
 * };
 * ```
 */
export interface DashboardOptions {
  /** The app: broker URL, remote control, queues. */
  app: Celery;
  /**
   * Where events come from (single events or arrays of them). Default: the app's receiver,
   * each message's events applied as it is decoded (`app.events.listen`).
   */
  events?: EventSourceFn;
  /**
   * Inspect replies for the worker pages. Default: collected by the app's
   * `app.control.inspect(...)`; `null` for none.
   */
  inspector?: Inspector | null;
  /** Address to listen on. Default `127.0.0.1`; any other needs `auth`. */
  hostname?: string;
  /** Port. Default 5555 (Flower's); 0 picks a free one. */
  port?: number;
  /** Basic-auth pairs and/or a bearer token. Default none (loopback only). */
  auth?: AuthOptions;
  /**
   * Host names (or `host:port`) answered besides the loopback ones, e.g. a reverse proxy's.
   * Without `auth` any other `Host` gets 403 `host_not_allowed` (against DNS rebinding); with
   * `auth`, the check applies only when this is given. Default none.
   */
  allowedHosts?: readonly string[];
  /**
   * Hide every action and refuse POSTs. Default false. The `enable_events` broadcast
   * (`enableEvents`) still goes out: without task events a dashboard shows nothing.
   */
  readOnly?: boolean;
  /**
   * Mask args, kwargs, results, exception messages and traceback text (not
   * its frames) in the UI and API. Default false.
   */
  hideArgs?: boolean;
  /** Tasks kept in memory. Default 10,000. */
  maxTasks?: number;
  /**
   * Queues whose depth is shown besides the app's default queue, those
   * seen in `task-sent` events and those workers consume (inspect).
   */
  queues?: readonly string[];
  /**
   * Broadcast `enable_events` every 5 s, as Flower does, so workers started
   * without `-E` send events too. Default true. Its outcome (without it, a
   * queue depth asked every 5 s) is the broker status the UI shows.
   */
  enableEvents?: boolean;
  /** Version shown in the UI. */
  version?: string;
  /** Stops the server. */
  signal?: AbortSignal;
}

/** How often changes are pushed to browsers (ms). */
const PUSH_INTERVAL_MS = 1000;
const ENABLE_EVENTS_MS = 5000;
const DEPTH_CACHE_MS = 2000;
/** Queue depths asked of the broker at once: a scrape asks each queue's. */
const DEPTH_CONCURRENCY = 8;

/** The host the browser asked for: a reverse proxy's `X-Forwarded-Host`, else `Host`. */
function requestHost(req: Request, url: URL): string {
  return req.headers.get("x-forwarded-host")?.split(",")[0].trim() || url.host;
}

/**
 * Whether a POST's `Origin` names the host it was sent to. The scheme is not compared: behind
 * a proxy that ends TLS the browser's origin is https and the dashboard is asked over http.
 */
function sameSite(origin: string, req: Request, url: URL): boolean {
  try {
    const o = new URL(origin);
    return new URL(`${o.protocol}//${requestHost(req, url)}`).host === o.host;
  } catch {
    return false; // "null" (an opaque origin) or a host that is no URL's
  }
}

/**
 * The live dashboard.
 *
 * @example Starting it next to a client
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * import { Dashboard } from "@celeriac/celeriac/dashboard";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0" });
 * const dashboard = new Dashboard({ app }); // events and inspect replies from the app
 * const { url } = await dashboard.start();
 * console.log(`dashboard on ${url}`);
 * ```
 */
export class Dashboard {
  /** What the dashboard shows. */
  readonly model: ViewModel;
  readonly #options: DashboardOptions;
  readonly #abort = new AbortController();
  readonly #csrf = crypto.randomUUID() + crypto.randomUUID();
  readonly #streams = new LiveStreams();
  readonly #health = new BrokerHealth();
  #probing = false;
  #server?: Deno.HttpServer<Deno.NetAddr>;
  #depths: { at: number; value: Promise<Map<string, number>> } | null = null;
  #timers: ReturnType<typeof setInterval>[] = [];
  #feed: Promise<void> = Promise.resolve();
  #polling: Promise<void> = Promise.resolve();
  /** Whether the last request for parked messages found another process reading them (logged once). */
  #parkedBusy = false;

  /**
   * Check the options; nothing listens until {@link Dashboard.start}.
   *
   * @param options see {@link DashboardOptions}
   * @throws {DashboardOptionsError} off the loopback interface without authentication, or for bad
   *   auth options or allowed hosts
   */
  constructor(options: DashboardOptions) {
    validateAuth(options.auth ?? {});
    validateAllowedHosts(options.allowedHosts ?? []);
    const hostname = options.hostname ?? "127.0.0.1";
    checkListenAuth(hostname, options.auth ?? {});
    this.#options = {
      ...options,
      hostname,
      inspector: options.inspector === undefined ? clientInspector(options.app) : options.inspector,
    };
    this.model = new ViewModel({ maxTasks: options.maxTasks });
    options.signal?.addEventListener("abort", () => this.stop(), { once: true });
  }

  /** The server's URL, once started. */
  get url(): string {
    if (!this.#server) throw new Error("The dashboard is not started: call start() first");
    const { hostname, port } = this.#server.addr;
    return `http://${hostPort(hostname, port)}`;
  }

  /**
   * Listen, start reading events, and push changes to browsers.
   *
   * @returns the URL it listens on
   * @throws {Deno.errors.AddrInUse} when the port is taken
   * @throws {Deno.errors.NotCapable} when Deno has no net permission for the address
   */
  async start(): Promise<{ url: string }> {
    const signal = this.#abort.signal;
    const ready = Promise.withResolvers<void>();
    const port = this.#options.port ?? 5555;
    try {
      this.#server = Deno.serve({
        hostname: this.#options.hostname,
        port,
        signal,
        onListen: () => ready.resolve(),
        onError: (err) => errorResponse(err),
      }, (req) => this.handle(req));
    } catch (err) {
      if (err instanceof Deno.errors.AddrInUse) {
        throw new Deno.errors.AddrInUse(
          `Port ${port} on ${this.#options.hostname} is in use: pick another with the ` +
            "`port` option",
        );
      }
      if (err instanceof Deno.errors.NotCapable) {
        // Deno's bare "Requires net access to …" does not say it is the dashboard's own address.
        const address = hostPort(this.#options.hostname ?? "127.0.0.1", port);
        throw new Deno.errors.NotCapable(
          `The dashboard cannot listen on ${address}, its listen address: Deno has no net ` +
            `permission for it. Run deno with --allow-net=${address} (beside the broker's ` +
            `host:port in the same list)`,
        );
      }
      throw err;
    }
    await ready.promise;
    this.#feed = this.#consume(signal);
    this.#timers.push(setInterval(() => this.#push(), PUSH_INTERVAL_MS));
    const inspector = this.#options.inspector;
    if (inspector) {
      this.#polling = pollInspect({ inspector, model: this.model, signal });
    }
    this.#probe();
    this.#timers.push(setInterval(() => this.#probe(), ENABLE_EVENTS_MS));
    log.info("Dashboard on {url}", { url: this.url });
    return { url: this.url };
  }

  /**
   * Ask the broker something every 5 s, one ask at a time: the `enable_events` broadcast (as
   * Flower does, so workers started without `-E` send events too), or without `enableEvents`
   * the default queue's depth. Its outcome is the broker status the UI shows.
   */
  #probe(): void {
    if (this.#probing) return;
    this.#probing = true;
    const app = this.#options.app;
    const asked: Promise<unknown> = this.#options.enableEvents ?? true
      ? app.control.broadcast("enable_events")
      : app.queueDepth(app.config.defaultQueue);
    this.#health.observe(asked).catch((err) =>
      log.debug("Broker probe failed: {error}", { error: (err as Error).message })
    ).finally(() => this.#probing = false);
  }

  /**
   * Apply the events until `signal` aborts: those of `events` when given, else each
   * message's as the app's receiver decodes it (`app.events.listen`: no batch is kept
   * after its message, so the garbage collector finds none of them alive). A source that
   * fails, or a subscription that cannot be made, is tried again after 1, 2, 4… s.
   */
  async #consume(signal: AbortSignal): Promise<void> {
    const events = this.#options.events;
    const apply = (batch: readonly EventCore[]) => {
      for (const e of batch) this.model.apply(e);
    };
    let wait = 1000;
    while (!signal.aborted) {
      try {
        if (!events) {
          // Subscribed: the receiver applies each message's events until signal aborts.
          return await this.#options.app.events.listen(apply, { signal });
        }
        for await (const e of events(signal)) {
          if (Array.isArray(e)) { for (const one of e) this.model.apply(one); }
          else this.model.apply(e as EventCore);
          wait = 1000;
        }
      } catch (err) {
        if (signal.aborted) break;
        log.error("Event stream failed: {error}; reconnecting in {seconds} s", {
          error: (err as Error).message,
          seconds: wait / 1000,
        });
      }
      if (signal.aborted) break;
      await sleep(wait, signal);
      wait = Math.min(wait * 2, 30_000);
    }
  }

  /** Stop the server, the event stream and the timers. */
  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    this.#streams.closeAll();
    this.#abort.abort();
    await this.#server?.finished;
    await this.#feed;
    await this.#polling;
  }

  #queueDepths(): Promise<Map<string, number>> {
    const now = Date.now();
    if (this.#depths && now - this.#depths.at < DEPTH_CACHE_MS) return this.#depths.value;
    const app = this.#options.app;
    const names = new Set([
      app.config.defaultQueue,
      ...(this.#options.queues ?? []),
      ...this.model.queuesSeen,
    ]);
    const value = this.#health.observe(mapLimited(
      [...names].sort(),
      DEPTH_CONCURRENCY,
      async (q) => [q, await app.queueDepth(q)] as const,
    )).then((pairs) => new Map(pairs));
    this.#depths = { at: now, value };
    value.catch(() => this.#depths = null);
    return value;
  }

  #context(): ApiContext {
    return {
      app: this.#options.app,
      model: this.model,
      inspector: this.#options.inspector ?? undefined,
      readOnly: this.#options.readOnly ?? false,
      hideArgs: this.#options.hideArgs ?? false,
      csrfToken: this.#csrf,
      queueDepths: () => this.#queueDepths(),
      queuesChanged: () => this.#depths = null,
      version: this.#options.version ?? "",
      broker: () => this.#health.status(),
    };
  }

  #push(): void {
    const now = Date.now() / 1000;
    this.model.tick(now);
    // Nobody listens: forget, and note no task changes until somebody does.
    this.model.recordTaskChanges = this.#streams.size > 0;
    if (this.#streams.size === 0) {
      this.model.takeChanges();
      return;
    }
    const changes = this.model.takeChanges();
    const workers = this.model.workers.list(now);
    const last = this.model.throughput.series(now, { window: 5, step: 5 })[0];
    const hide = this.#options.hideArgs ?? false;
    const message = {
      ...changes,
      tasks: changes.tasks.map((t) => taskJson(t, hide)),
      overview: {
        states: this.model.tasks.countByState(),
        events: this.model.eventCount,
        workersOnline: workers.filter((w) => w.online).length,
        workersTotal: workers.length,
        broker: this.#health.status(),
        point: last,
      },
    };
    this.#streams.send(new TextEncoder().encode(`data: ${jsonText(message)}\n\n`));
  }

  #stream(): Response {
    const body = this.#streams.open();
    this.model.recordTaskChanges = true;
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        ...SECURITY_HEADERS,
      },
    });
  }

  /**
   * Answer one HTTP request (what `Deno.serve` calls; usable in tests).
   *
   * @param req the request
   * @returns the response
   */
  async handle(req: Request): Promise<Response> {
    if (req.method !== "HEAD") return await this.#answer(req, false);
    // HEAD is GET without the body (uptime checks send it); it opens no stream, scans nothing.
    // Built from url and headers: `new Request(req, …)` reads the served request's signal,
    // which makes Deno.serve print its "legacy behavior" warning.
    const get = new Request(req.url, { method: "GET", headers: req.headers });
    const got = await this.#answer(get, true);
    await got.body?.cancel();
    return new Response(null, { status: got.status, headers: got.headers });
  }

  async #answer(req: Request, head: boolean): Promise<Response> {
    let url: URL;
    try {
      url = requestUrl(req);
      const health = healthcheck(req.method, url.pathname);
      if (health) return health;
      checkHost(req, this.#options.allowedHosts ?? [], this.#options.auth ?? {});
    } catch (err) {
      return errorResponse(err, SECURITY_HEADERS);
    }
    try {
      checkAuth(req, this.#options.auth ?? {});
    } catch (err) {
      return errorResponse(err, {
        "www-authenticate": 'Basic realm="Celeriac dashboard", charset="UTF-8"',
      });
    }
    try {
      const path = url.pathname;
      if (path === "/metrics" && req.method !== "GET") {
        throw methodNotAllowed(req.method, "GET, HEAD");
      }
      if (path === "/metrics") {
        this.model.tick(Date.now() / 1000);
        let depths = new Map<string, number>();
        try {
          depths = await this.#queueDepths();
        } catch (err) {
          log.warn("Queue depth unavailable: {error}", { error: (err as Error).message });
        }
        return new Response(this.model.metrics.render(depths), {
          headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
        });
      }
      if (path.startsWith("/api/")) {
        const parts = path.slice(5).split("/").filter(Boolean).map((part) => {
          try {
            return decodeURIComponent(part);
          } catch {
            throw new HttpError(
              400,
              "bad_path",
              /%(?![\da-f]{2})/i.test(part)
                ? `${part} is not URL-encoded (a % starts no escape)`
                : `${part} is not valid UTF-8 once its % escapes are decoded`,
            );
          }
        });
        const allow = apiAllow(parts);
        if (allow !== undefined && !allow.split(", ").includes(req.method)) {
          throw methodNotAllowed(req.method, allow);
        }
        const cheap = head ? headOnly(parts) : undefined;
        if (cheap) return cheap;
        if (req.method === "GET" && parts[0] === "stream" && parts.length === 1) {
          return this.#stream();
        }
        let value: unknown;
        if (req.method === "GET") value = await apiGet(this.#context(), parts, url.searchParams);
        else if (req.method === "POST") {
          const origin = req.headers.get("origin");
          if (origin !== null && !sameSite(origin, req, url)) {
            throw new HttpError(
              403,
              "csrf",
              `Cross-origin action refused (Origin ${origin}, host ${requestHost(req, url)}): ` +
                "a reverse proxy must pass the Host header on (nginx: proxy_set_header Host $host)",
            );
          }
          value = await apiPost(this.#context(), req, parts);
        } else {
          throw new HttpError(
            404,
            "not_found",
            `No API route ${req.method} /api/${parts.join("/")}`,
          );
        }
        if (parts[0] === "parked") this.#parkedBusy = false;
        // Not Response.json: a worker's reply may hold an integer beyond 2^53 (a bigint).
        return new Response(jsonText(value), {
          headers: { "content-type": "application/json", "cache-control": "no-store" },
        });
      }
      if (req.method !== "GET") throw methodNotAllowed(req.method, "GET, HEAD");
      const asset = ASSETS[path === "/" ? "/index.html" : path];
      if (!asset) throw new HttpError(404, "not_found", `No page ${path}`);
      return new Response(asset.body, {
        headers: {
          "content-type": asset.type,
          "cache-control": path === "/" ? "no-store" : "max-age=3600",
          ...SECURITY_HEADERS,
        },
      });
    } catch (err) {
      if (isParkedScanBusy(err)) {
        // Each poll meets it while another process's requeue runs: said once, until parked messages are read again.
        if (!this.#parkedBusy) {
          log.warn("{method} {path} answered 503: {error}", {
            method: req.method,
            path: url.pathname,
            error: (err as Error).message,
          });
        }
        this.#parkedBusy = true;
      } else if (!(err instanceof HttpError)) {
        log.error("{method} {path} failed: {error}", {
          method: req.method,
          path: url.pathname,
          error: (err as Error)?.message ?? String(err),
        });
      }
      return errorResponse(err, SECURITY_HEADERS);
    }
  }
}

/** `host:port`, an IPv6 host in brackets (`[::1]:5555`), as URLs and `--allow-net` take it. */
function hostPort(host: string, port: number): string {
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}
