/**
 * An app's settings: the options it was given, their resolved configuration
 * and compiled task routes, and the rules for changing them later
 * (`app.configure()`).
 *
 * @module
 */

import { checkQueueName } from "../broker/errors.ts";
import type { TaskAnnotations } from "./annotations.ts";
import {
  type CeleryOptions,
  checkOptions,
  resolveConfig,
  type ResolvedConfig,
  type UrlSources,
  urlSources,
} from "./config.ts";
import { type CompiledRoutes, compileRoutes } from "./routes.ts";

/**
 * The options of an app, resolved.
 *
 * @example
 * ```ts
 * const settings = new AppSettings({ broker: "kv://:memory:" });
 * settings.config.defaultQueue; // "celery"
 * settings.update({ defaultQueue: "fast" }, { connected: false, tasksDefined: false });
 * ```
 */
export class AppSettings {
  #options: CeleryOptions;
  #config: ResolvedConfig;
  #routes: CompiledRoutes | null;

  /**
   * Resolve options (environment variables and defaults, see {@link resolveConfig}).
   *
   * @param options what the app was given
   */
  constructor(options: CeleryOptions) {
    checkOptions(options, "new Celery()");
    this.#options = { ...options };
    this.#config = resolveConfig(options);
    this.#routes = options.taskRoutes ? compileRoutes(options.taskRoutes) : null;
  }

  /** The configuration, with defaults applied. */
  get config(): ResolvedConfig {
    return this.#config;
  }

  /** Where the broker and backend URLs came from, for connection errors. */
  get sources(): UrlSources {
    return urlSources(this.#options, this.#config);
  }

  /** The compiled `taskRoutes`, or `null` when none are set. */
  get routes(): CompiledRoutes | null {
    return this.#routes;
  }

  /** The `taskAnnotations` option, or `null` when unset. */
  get annotations(): TaskAnnotations | null {
    return this.#options.taskAnnotations ?? null;
  }

  /**
   * The queue an app method acts on: `queue`, or the default queue when it
   * is left out.
   *
   * @example
   * ```ts ignore
   * settings.queueArgument(undefined, "app.purge()"); // "celery"
   * settings.queueArgument("", "app.purge()"); // throws TypeError
   * ```
   *
   * @param queue the argument given
   * @param method the method, for the message
   * @returns the queue name
   * @throws {TypeError} for an empty name or one that is not a string
   */
  queueArgument(queue: string | undefined, method: string): string {
    if (queue === undefined) return this.#config.defaultQueue;
    return checkQueueName(queue, method, this.#config.defaultQueue);
  }

  /**
   * Override options, as `app.configure()` does.
   *
   * @example
   * ```ts ignore
   * settings.update({ broker: "redis://127.0.0.1:6379/1" }, { connected: false, tasksDefined: true });
   * ```
   *
   * @param options options to override
   * @param state whether the app has connected and whether it has tasks defined
   * @throws {Error} when the app has connected (the broker or backend is open)
   * @throws {Error} when `taskAnnotations` is set after tasks were defined
   */
  update(options: CeleryOptions, state: { connected: boolean; tasksDefined: boolean }): void {
    checkOptions(options, "app.configure()");
    if (state.connected) {
      throw new Error("configure() must be called before the app connects (before sending tasks)");
    }
    if (options.taskAnnotations !== undefined && state.tasksDefined) {
      throw new Error(
        "taskAnnotations must be set before tasks are defined: pass it to new Celery({ taskAnnotations })",
      );
    }
    // Everything that can refuse runs before anything is stored: a refused configure() leaves the
    // app as it was, and the next configure() starts from the options in use.
    const merged = { ...this.#options, ...options };
    const config = resolveConfig(merged);
    const routes = options.taskRoutes === undefined
      ? this.#routes
      : options.taskRoutes
      ? compileRoutes(options.taskRoutes)
      : null;
    this.#options = merged;
    this.#config = config;
    this.#routes = routes;
  }
}
