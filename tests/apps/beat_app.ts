/**
 * The app of the beat integration tests: one entry sending BEAT_TASK
 * (default `beat.tick`) with the argument 1 every BEAT_EVERY seconds to
 * BEAT_QUEUE, expiring after a minute, with the call options of BEAT_OPTIONS
 * (JSON) on top.
 */

import { Celery } from "../../mod.ts";

const env = (name: string, fallback?: string): string => {
  const v = Deno.env.get(name) ?? fallback;
  if (v === undefined) throw new Error(`${name} must be set`);
  return v;
};

export const app = new Celery({
  broker: env("BEAT_BROKER"),
  backend: null,
  beatNamespace: env("BEAT_NS", "celeriac.beat."),
  beatSchedule: {
    tick: {
      task: env("BEAT_TASK", "beat.tick"),
      schedule: Number(env("BEAT_EVERY", "1")),
      args: [1],
      options: {
        queue: env("BEAT_QUEUE", "celery"),
        expires: 60,
        ...JSON.parse(env("BEAT_OPTIONS", "{}")),
      },
    },
  },
});

export const tick = app.task("beat.tick", (n: number) => n);
