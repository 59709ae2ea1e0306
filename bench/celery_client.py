"""Python Celery 5.2 client for the benchmark.

  celery_client.py enqueue N [REPLY_TO]
      send N `bench.noop` calls (one producer, send_task in a loop) through an
      app WITHOUT a result backend, so that sending does not subscribe to
      each result's channel; with REPLY_TO, each task's reply_to (where an
      rpc:// worker sends its result); prints {"seconds": ...}.
  celery_client.py spin N MS [REPLY_TO]
      the same with N `bench.spin(MS)` calls (the CPU-bound workload).
  celery_client.py chord N
      apply one chord of N `bench.noop` members with a `bench.tsum` body and
      wait for the body's result; prints {"applySeconds": ..., "seconds": ...}.
  celery_client.py roundtrip N WARMUP
      WARMUP then N sequential `noop.delay().get()` calls; prints
      {"latencies_ms": [...]} (the N measured ones, in order).

Broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND. With
BENCH_CONFIRM_PUBLISH=1, enqueue waits for RabbitMQ's publisher confirm of
each message (kombu's `confirm_publish` transport option, off by default).
"""
import json
import os
import sys
import time

from celery import Celery

from celery_tasks import BENCH_QUEUE, noop, tsum


def enqueue(n, reply_to=None, task="bench.noop", args=()):
    sender = Celery("bench-enqueue", broker=os.environ["CELERY_BROKER_URL"])
    sender.conf.task_default_queue = BENCH_QUEUE
    if os.environ.get("BENCH_CONFIRM_PUBLISH") == "1":
        sender.conf.broker_transport_options = {"confirm_publish": True}
    start = time.perf_counter()
    with sender.producer_or_acquire() as producer:
        for _ in range(n):
            sender.send_task(task, args, queue=BENCH_QUEUE, producer=producer,
                             reply_to=reply_to)
    return {"seconds": time.perf_counter() - start}


def roundtrip(n, warmup):
    latencies = []
    for i in range(warmup + n):
        start = time.perf_counter()
        value = noop.delay().get(timeout=30)
        elapsed = time.perf_counter() - start
        if value != 1:
            raise RuntimeError(f"bench.noop returned {value!r}")
        if i >= warmup:
            latencies.append(elapsed * 1000)
    return {"latencies_ms": latencies}


def chord_run(n):
    from celery import chord
    start = time.perf_counter()
    r = chord([noop.s() for _ in range(n)], tsum.s()).apply_async()
    applied = time.perf_counter()
    value = r.get(timeout=600)
    end = time.perf_counter()
    if value != n:
        raise RuntimeError(f"the chord body returned {value!r}, expected {n}")
    return {"applySeconds": applied - start, "seconds": end - start}


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "enqueue":
        out = enqueue(int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
    elif command == "spin":
        out = enqueue(int(sys.argv[2]), sys.argv[4] if len(sys.argv) > 4 else None,
                      "bench.spin", (float(sys.argv[3]),))
    elif command == "chord":
        out = chord_run(int(sys.argv[2]))
    elif command == "roundtrip":
        out = roundtrip(int(sys.argv[2]), int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown command {command!r}")
    print(json.dumps(out))
