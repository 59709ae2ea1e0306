/** Tasks for tests/pool_sends_test.ts: a task that sends tasks, run on either pool. */

import { Celery, group } from "../../mod.ts";

export const app = new Celery();

export const add = app.task("ps.add", (a: number, b: number) => a + b);
/** Sends a task, two in one batch (`delayMany`), then a group of two: returns their ids. */
export const sends = app.task("ps.sends", async () => {
  const one = await add.delay(1, 1);
  const many = await add.delayMany([[2, 2], [3, 3]]);
  const g = await group([add.s(4, 4), add.s(5, 5)]).applyAsync();
  return [one.id, ...many.map((r) => r.id), ...g.children.map((r) => r.id)];
});
/** Sends a task and a signature to `exchange` with a routing key that is no queue's name. */
export const routed = app.task("ps.routed", async (exchange: string) => {
  await add.applyAsync([3, 3], { exchange, routingKey: "psrk" });
  await add.s(4, 4).set({ exchange, routingKey: "psrk" }).applyAsync();
});
/** Fails, for its errbacks. */
export const boom = app.task("ps.boom", () => {
  throw new Error("boom");
});
/** An errback: called with the failed task's id. */
export const eb = app.task("ps.eb", (id: string) => id);
