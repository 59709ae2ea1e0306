/**
 * Which external services the tests can use. On a developer machine without
 * Redis or Python Celery the tests that need them are ignored (and say so);
 * under CI (`CI=true`) they always run, so a missing service fails the build.
 */
// deno-lint-ignore-file no-console

import { PYTHON } from "./procs.ts";
import { RABBITMQ_URL } from "./rabbitmq.ts";
import { REDIS_URL } from "./redis.ts";

const CI = Deno.env.get("CI") === "true";

async function redisReachable(): Promise<boolean> {
  const u = new URL(REDIS_URL);
  try {
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port || 6379) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function rabbitmqReachable(): Promise<boolean> {
  const u = new URL(RABBITMQ_URL);
  try {
    const conn = await Deno.connect({ hostname: u.hostname, port: Number(u.port || 5672) });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

async function celeryInstalled(): Promise<boolean> {
  try {
    const out = await new Deno.Command(PYTHON, {
      args: ["-c", "import celery, redis"],
      stdout: "null",
      stderr: "null",
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

const redis = await redisReachable();
const celery = redis && await celeryInstalled();
const rabbitmq = await rabbitmqReachable();

/** True when tests needing Redis must be ignored. */
export const WITHOUT_REDIS: boolean = !CI && !redis;
/** True when tests needing RabbitMQ must be ignored. */
export const WITHOUT_RABBITMQ: boolean = !CI && !rabbitmq;
/** True when tests needing Python Celery (and Redis) must be ignored. */
export const WITHOUT_CELERY: boolean = !CI && !celery;

if (WITHOUT_REDIS) {
  console.warn(
    `Redis is not reachable at ${REDIS_URL}: the Redis tests are ignored (never in CI).`,
  );
} else if (WITHOUT_CELERY) {
  console.warn(
    `Python Celery is not installed for ${PYTHON}: the interop tests are ignored (never in CI).`,
  );
}
if (WITHOUT_RABBITMQ) {
  console.warn(
    `RabbitMQ is not reachable at ${RABBITMQ_URL}: the AMQP tests are ignored (never in CI).`,
  );
}
