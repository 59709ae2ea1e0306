"""The Python Celery 5.2 side of the benchmark: the same no-op task as bench/tasks.ts.

Run by the bench as `python3 -m celery -A celery_tasks worker -P prefork -c 2 -Q bench`
(with bench/ on PYTHONPATH). Broker and backend come from CELERY_BROKER_URL /
CELERY_RESULT_BACKEND.
"""
import os
import time

from celery import Celery

BENCH_QUEUE = "bench"

app = Celery(
    "celery_tasks",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ["CELERY_RESULT_BACKEND"],
)
app.conf.task_default_queue = BENCH_QUEUE


@app.task(name="bench.noop")
def noop():
    """Do nothing and return a small value."""
    return 1


@app.task(name="bench.spin")
def spin(ms):
    """Busy-loop for `ms` milliseconds and return 1: the CPU-bound task."""
    end = time.perf_counter() + ms / 1000
    while time.perf_counter() < end:
        pass
    return 1


@app.task(name="bench.tsum")
def tsum(xs):
    """A chord body: the sum of its header's results."""
    return sum(xs)
