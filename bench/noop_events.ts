/**
 * The events of a no-op bench task, as a worker with `-E` sends them: what
 * `bench/dashboard_cpu.ts` publishes and `bench/dashboard_model.ts` feeds
 * the view model.
 *
 * @module
 */

/**
 * The fields of a `task-received` event for the no-op task `bench.noop`
 * (a root task: no parent, no ETA, no expiry), without the sender's
 * `type`, `hostname`, `timestamp`, `pid` and `clock`.
 *
 * @example
 * ```ts ignore
 * const uuid = crypto.randomUUID();
 * makeEvent("task-received", noopReceived(uuid), { hostname: "w@h", pid: 1, clock: 1 });
 * ```
 *
 * @param uuid the task id
 * @returns the fields
 */
export function noopReceived(uuid: string): {
  uuid: string;
  name: string;
  args: string;
  kwargs: string;
  root_id: string;
  parent_id: null;
  retries: number;
  eta: null;
  expires: null;
} {
  return {
    uuid,
    name: "bench.noop",
    args: "()",
    kwargs: "{}",
    root_id: uuid,
    parent_id: null,
    retries: 0,
    eta: null,
    expires: null,
  };
}
