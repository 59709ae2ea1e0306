/**
 * What the worker's remote control acts on (the {@link ControlTarget} of
 * `remote_control.ts`): revoke, rate limits, task events, heartbeats,
 * shutdown and the inspect commands, each through the worker's parts.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Celery } from "../client/app.ts";
import type { Consumer } from "./consumer.ts";
import { workerInspection } from "./inspection.ts";
import type { ControlTarget } from "./remote_control.ts";
import { registeredTasks } from "./registered_tasks.ts";
import type { TaskRates } from "./task_rates.ts";
import type { TaskRegistries } from "./task_registries.ts";
import type { WorkerState } from "./worker_state.ts";

const log = getLogger(["celeriac", "worker"]);

/**
 * The worker's parts a {@link ControlTarget} is made of.
 *
 * @example
 * ```ts ignore
 * const parts: ControlParts = { app, s, registries, rates, consumer, revoke, setRateLimit, stop, heartbeat };
 * ```
 */
export interface ControlParts {
  /** The worker's app (its tasks). */
  app: Celery;
  /** The worker's state (node name, revoked set, event dispatcher). */
  s: WorkerState;
  /** Active, reserved and scheduled tasks, for inspect. */
  registries: TaskRegistries;
  /** The tasks' rate limits. */
  rates: TaskRates;
  /** The queues consumed. */
  consumer: Consumer;
  /**
   * `Worker.revoke`; `stored`: the client stored the ids in the broker already; `signum`: the
   * terminate's signal number.
   */
  revoke(ids: readonly string[], terminate: boolean, stored?: boolean, signum?: number): string[];
  /** `Worker.setRateLimit`. */
  setRateLimit(name: string, rate: string | number | null): void;
  /** Begin a warm shutdown (`Worker.stop`). */
  stop(): void;
  /** Send a `worker-heartbeat` event now, when heartbeats run. */
  heartbeat(): void;
}

/**
 * The target the worker's remote control runs commands against.
 *
 * @example
 * ```ts ignore
 * const pidbox = new RemoteControl(s.broker, controlTarget(parts), s.clock);
 * ```
 *
 * @param parts the worker's parts
 * @returns the target
 */
export function controlTarget(parts: ControlParts): ControlTarget {
  const { app, s, consumer } = parts;
  return {
    hostname: s.hostname,
    revoke: (ids, terminate, stored, signum) => parts.revoke(ids, terminate, stored, signum),
    revoked: () => s.revoked.ids(),
    registered: (items) =>
      registeredTasks(app, items, { rate: (n) => parts.rates.text(n), timeLimits: s.timeLimits }),
    setRateLimit: (name, rate) => {
      if (!app.tasks.get(name)?.handler) throw new RangeError(`unknown task ${name}`);
      parts.setRateLimit(name, rate);
    },
    shutdown: () => parts.stop(),
    setTaskEvents: (on) => {
      const events = s.events!;
      if (events.taskEvents === on) return false;
      events.taskEvents = on;
      log.info("Task events {what}", { what: on ? "enabled" : "disabled" });
      return true;
    },
    heartbeat: () => parts.heartbeat(),
    inspect: workerInspection(s, parts.registries, {
      queues: () => consumer.queues,
      binding: (queue) => consumer.binding(queue),
      startedAt: Date.now(),
      addConsumer: (queue, binding) => consumer.add(queue, binding),
      cancelConsumer: (queue) => consumer.cancel(queue),
    }),
  };
}
