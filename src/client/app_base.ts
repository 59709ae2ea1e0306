/**
 * {@link CeleryBase}, what a {@link Celery} app is apart from its tasks and
 * its producer: its configuration and signals, its remote control and
 * events, its broker and backend connections (opened on first use,
 * connections.ts) and the administration of its queues. It owns the app's
 * settings, task registry and producer, which {@link Celery}'s own methods
 * read through {@link appInternals}.
 *
 * @module
 */

import type { ResultBackend } from "../backend/port.ts";
import type { Broker } from "../broker/port.ts";
import { Control } from "./control.ts";
import { Events } from "./events.ts";
import type { CeleryOptions, ResolvedConfig, UrlSources } from "./config.ts";
import type { OpenOptions } from "./connections.ts";
import { appConnections, appDispatch } from "./app_parts.ts";
import type { Dispatch } from "./dispatch.ts";
import { PUBLISHER, type Publisher, SENT_FROM_TASK, type SentFromTask } from "./publisher.ts";
import { TaskRegistry } from "./registry.ts";
import { AppSettings } from "./settings.ts";
import { type SignalListener, type SignalName, Signals } from "./signals.ts";

/**
 * The parts of an app that its task and sending methods read: its
 * settings, its tasks and its producer. Module-private to the app (not
 * exported by the package).
 *
 * @example
 * ```ts
 * import { Celery } from "@celeriac/celeriac";
 * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
 * const { registry } = appInternals(app);
 * registry.tasks.has("tasks.add");
 * ```
 */
export interface AppInternals {
  /** The app's options and what they resolve to (changed by `configure()`). */
  readonly settings: AppSettings;
  /** The tasks defined in the app. */
  readonly registry: TaskRegistry;
  /** The app's producer. */
  readonly dispatch: Dispatch;
}

let internalsOf: (app: CeleryBase) => AppInternals;

/**
 * An app's settings, tasks and producer, for {@link Celery}'s methods
 * (which {@link CeleryBase} keeps private to everything else).
 *
 * @example
 * ```ts ignore
 * readonly #internals = appInternals(this);
 * ```
 *
 * @param app the app, constructed
 * @returns its parts (the same settings, registry and producer at every call)
 */
export function appInternals(app: CeleryBase): AppInternals {
  return internalsOf(app);
}

/**
 * What every {@link Celery} app has besides its tasks and its producer:
 * configuration, signals, remote control, events, connections and queue
 * administration. Not created on its own: create a {@link Celery}.
 *
 * @example
 * ```ts
 * import { Celery, type CeleryBase } from "@celeriac/celeriac";
 * const app: CeleryBase = new Celery({ broker: "kv://:memory:" });
 * await app.queueDepth(); // 0
 * await app.close();
 * ```
 */
export abstract class CeleryBase {
  readonly #settings: AppSettings;
  /**
   * This producer's reply-queue id (Celery's "oid"), written as `reply_to`.
   */
  readonly oid: string = crypto.randomUUID();
  readonly #registry = new TaskRegistry();
  readonly #connections = appConnections(this.oid, () => this.#settings);
  readonly #dispatch = appDispatch(this, () => this.#settings, this.#registry, this.#connections);
  /**
   * Remote control: revoke tasks on every worker.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const result = await app.sendTask("tasks.add", [2, 3]);
   * await app.control.revoke(result.id, { terminate: true });
   * ```
   */
  readonly control: Control = new Control(
    () => this.broker(),
    undefined,
    () => this.#connections.closing,
  );
  /**
   * Celery events: receive them (`app.events.receive()`), and `task-sent`
   * for each task sent when `taskSendSentEvent` is on.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const signal = AbortSignal.timeout(60_000);
   * for await (const e of app.events.receive({ signal })) console.log(e.type, e.hostname);
   * ```
   */
  readonly events: Events = new Events(() => this.broker());
  /**
   * The app's signal listeners (see {@link Celery.on}); workers emit
   * through it.
   */
  readonly signals: Signals = new Signals();
  /**
   * Set by a worker inside its Web Workers: publishes through the worker's
   * connection instead of opening one. `undefined` everywhere else.
   */
  [PUBLISHER]: Publisher | undefined;
  /**
   * Set by a worker whose inline pool runs the app's tasks: notes what they
   * send, for their `children`. `undefined` everywhere else.
   */
  [SENT_FROM_TASK]: SentFromTask | undefined;

  static {
    internalsOf = (app) => app.#internals();
  }

  /**
   * Read the options; nothing connects until a task is sent or a result
   * read (see {@link Celery}'s constructor).
   *
   * @param options broker, backend and defaults; see {@link CeleryOptions}
   */
  constructor(options: CeleryOptions = {}) {
    this.#settings = new AppSettings(options);
  }

  #internals(): AppInternals {
    return { settings: this.#settings, registry: this.#registry, dispatch: this.#dispatch };
  }

  /** The configuration, with defaults applied. */
  get config(): ResolvedConfig {
    return this.#settings.config;
  }

  /**
   * Where the broker, backend and beat store URLs came from, in words (the
   * app's option, an environment variable, the default): named by a
   * connection error, so that it says the one place to change.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * new Celery({ broker: "kv://:memory:" }).urlSources.beatStore;
   * // "the broker's URL, as no beat store was given (...); the broker's URL is the app's broker option (...)"
   * ```
   */
  get urlSources(): UrlSources {
    return this.#settings.sources;
  }

  /**
   * Change options before anything connected (the worker's `--broker` and
   * `--backend` flags use this).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery();
   * app.configure({ broker: "redis://127.0.0.1:6379/1" });
   * ```
   *
   * @param options options to override
   * @throws {Error} when the broker or backend is already open
   */
  configure(options: CeleryOptions): void {
    this.#settings.update(options, {
      connected: this.#connections.opened,
      tasksDefined: this.#registry.tasks.size > 0,
    });
  }

  /**
   * Connect a listener to an app-wide signal, Celery's names in camelCase:
   * `taskPrerun`, `taskPostrun`, `taskFailure` (run in the worker where the
   * task runs), `workerReady`, `workerShutdown` (in the worker's main
   * thread). Connect in the module that defines the app, so that the
   * worker's Web Workers, which import it, have the listener too.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * export const app = new Celery({ broker: "kv://:memory:" });
   * app.on("taskFailure", ({ name, id, error }) => {
   *   console.error(`${name}[${id}] failed:`, error);
   * });
   * app.on("workerReady", ({ hostname, queues }) => console.log(hostname, "consumes", queues));
   * ```
   *
   * @param name the signal
   * @param listener called with the signal's payload; may be async
   * @returns a function that disconnects the listener
   */
  on<N extends SignalName>(name: N, listener: SignalListener<N>): () => void {
    return this.signals.connect(name, listener);
  }

  /**
   * How many messages wait in a queue (not counting ones taken by workers).
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:" });
   * await app.sendTask("tasks.add", [2, 3]);
   * await app.queueDepth(); // 1, in the default queue "celery"
   * await app.close();
   * ```
   *
   * @param queue the queue; default the app's default queue
   * @returns the number of waiting messages
   * @throws {TypeError} for an empty queue name (on every transport)
   */
  async queueDepth(queue?: string): Promise<number> {
    const name = this.#settings.queueArgument(queue, "app.queueDepth()");
    return await (await this.broker()).queueDepth(name);
  }

  /**
   * Delete every message waiting in a queue (Celery's `purge`). Messages
   * already taken by workers are not affected.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "kv://:memory:" });
   * await app.sendTask("tasks.add", [2, 3]);
   * await app.purge("celery"); // 1
   * await app.queueDepth("celery"); // 0
   * await app.close();
   * ```
   *
   * @param queue the queue; default the app's default queue
   * @returns how many messages were deleted
   * @throws {TypeError} for an empty queue name (on every transport)
   */
  async purge(queue?: string): Promise<number> {
    const name = this.#settings.queueArgument(queue, "app.purge()");
    return await (await this.broker()).purge(name);
  }

  /**
   * The app's broker, opened on first use.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * console.log(await (await app.broker()).queueDepth("celery"));
   * // Give up after 5 s (an open this call started is aborted and closed):
   * await app.broker({ signal: AbortSignal.timeout(5_000) });
   * ```
   *
   * @param options `signal` stops waiting (see {@link OpenOptions})
   * @returns the broker
   */
  broker(options?: OpenOptions): Promise<Broker> {
    return this.#connections.broker(options);
  }

  /**
   * The app's result backend, opened on first use.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * const result = await app.sendTask("tasks.add", [2, 3]);
   * const meta = await (await app.resultBackend()).get(result.id);
   * ```
   *
   * @param options `signal` stops waiting (see {@link OpenOptions})
   * @returns the backend
   * @throws {NoResultBackendError} when none is configured (also when the
   *   signal already aborted: the configuration error is reported first)
   */
  resultBackend(options?: OpenOptions): Promise<ResultBackend> {
    return this.#connections.resultBackend(options);
  }

  /**
   * Close the broker and backend connections, if they were opened.
   *
   * @example
   * ```ts
   * import { Celery } from "@celeriac/celeriac";
   * const app = new Celery({ broker: "redis://127.0.0.1:6379/0", backend: "redis://127.0.0.1:6379/0" });
   * await app.close();
   * ```
   */
  async close(): Promise<void> {
    // A publish waiting to retry fails now; the app opens anew on its next use.
    this.#dispatch.abortRetries();
    await this.#connections.close();
  }
}
