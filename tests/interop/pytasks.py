"""Python Celery 5.2 tasks used by the interop tests.

Broker and backend come from CELERY_BROKER_URL / CELERY_RESULT_BACKEND;
the queue from INTEROP_QUEUE; task_queues (queues bound to named exchanges)
from INTEROP_TASK_QUEUES='[{"queue", "exchange", "type", "key"}]'. Run with:
  /usr/bin/python3 -m celery -A pytasks worker -P solo -Q $INTEROP_QUEUE
"""
import json
import os
import time

from celery import Celery

app = Celery(
    "pytasks",
    broker=os.environ["CELERY_BROKER_URL"],
    backend=os.environ["CELERY_RESULT_BACKEND"],
)
app.conf.task_default_queue = os.environ.get("INTEROP_QUEUE", "celery")
app.conf.broker_transport_options = {
    "visibility_timeout": float(os.environ.get("INTEROP_VISIBILITY", "3600")),
    "global_keyprefix": os.environ.get("INTEROP_KEYPREFIX", ""),
}
app.conf.worker_hijack_root_logger = False
if os.environ.get("INTEROP_TASK_QUEUES"):
    from kombu import Exchange, Queue

    app.conf.task_queues = [
        Queue(q["queue"], Exchange(q["exchange"], type=q.get("type", "direct")), routing_key=q["key"])
        for q in json.loads(os.environ["INTEROP_TASK_QUEUES"])
    ]


class CustomError(Exception):
    pass


@app.task(name="py.mul")
def py_mul(x, y):
    return x * y


@app.task(name="py.echo")
def echo(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@app.task(name="py.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="py.custom_fail")
def custom_fail():
    raise CustomError("custom", 42)


@app.task(name="tasks.add")
def add(a, b):
    return a + b


@app.task(name="py.slow_add")
def slow_add(a, b):
    time.sleep(0.3)
    return a + b


@app.task(name="tasks.mul")
def mul(x, y):
    """Twin of the Celeriac tasks.mul (params x, y), for argument-check messages."""
    return x * y


@app.task(name="tasks.greet")
def greet(name, greeting="hello"):
    return f"{greeting}, {name}"


@app.task(name="tasks.record", acks_late=True)
def record(n, marker_key, sleep_s=0.0):
    """Records that Python ran it in a Redis list; sleeps on the first attempt only."""
    import redis
    r = redis.Redis.from_url(os.environ.get("INTEROP_MARKER_REDIS", "redis://127.0.0.1:6379/0"))
    attempt = r.rpush(f"{marker_key}:started", f"py:{n}")
    if sleep_s and attempt == 1:
        time.sleep(sleep_s)
    r.rpush(marker_key, f"py:{n}")
    return f"py:{n}"


@app.task(name="py.retry_twice", bind=True)
def retry_twice(self, n):
    if self.request.retries < 2:
        raise self.retry(exc=KeyError("transient"), countdown=0.2)
    return {"n": n, "retries": self.request.retries}


@app.task(name="py.progress", bind=True)
def progress(self, n, pause_s):
    """Reports PROGRESS {done, total} after each step, as Celery's docs show."""
    for i in range(1, n + 1):
        time.sleep(pause_s)
        self.update_state(state="PROGRESS", meta={"done": i, "total": n})
    time.sleep(pause_s)
    return n


@app.task(name="tasks.tsum")
def tsum(xs):
    return sum(xs)


@app.task(name="tasks.who")
def who(n):
    """A chord header member that says which worker ran it."""
    return f"py:{n}"


@app.task(name="tasks.collect")
def collect(items, marker_key):
    """A chord body that records each call (to count them) in a Redis list."""
    import redis
    r = redis.Redis.from_url(os.environ.get("INTEROP_MARKER_REDIS", "redis://127.0.0.1:6379/0"))
    r.rpush(marker_key, json.dumps({"by": "py", "items": items}))
    return len(items)


def _errback_marker(marker_key, record):
    import redis
    r = redis.Redis.from_url(os.environ.get("INTEROP_MARKER_REDIS", "redis://127.0.0.1:6379/0"))
    r.rpush(marker_key, json.dumps(record))


@app.task(name="py.errback_old")
def errback_old(request, exc, traceback, marker_key):
    """Old-style errback: Celery calls it in the failing task's worker, no message."""
    _errback_marker(marker_key, {
        "by": "py", "style": "old", "failed": request.id,
        "exc": f"{type(exc).__name__}: {exc}", "traceback": isinstance(traceback, str),
        "stored": app.AsyncResult(request.id).state,
        "ids": [request.parent_id, request.root_id, request.group],
    })


@app.task(name="py.errback_raise")
def errback_raise(request, exc, traceback, marker_key):
    """Old-style errback that records its call, then raises RuntimeError("errback broke")."""
    _errback_marker(marker_key, {"by": "py", "style": "raiser", "failed": request.id})
    raise RuntimeError("errback broke")


@app.task(name="py.errback_new", bind=True)
def errback_new(self, task_id, *, marker_key):
    """One-argument errback (bound: never called in-process): sent as a message with the failed task's id."""
    _errback_marker(marker_key, {
        "by": "py", "style": "new", "failed": task_id,
        "parent": self.request.parent_id, "root": self.request.root_id,
        "group": self.request.group,
    })


@app.task(name="tasks.fail")
def fail_named(why):
    """Twin of the Celeriac tasks.fail."""
    raise ValueError(why)


@app.task(name="tasks.by_task", bind=True)
def by_task(self, n):
    """Twin of the Celeriac tasks.by_task: replaced by tasks.add(n, 100)."""
    raise self.replace(add.s(n, 100))


@app.task(name="tasks.by_group", bind=True)
def by_group(self, n):
    """Twin of the Celeriac tasks.by_group: replaced by a group of two adds."""
    from celery import group
    raise self.replace(group([add.s(n, 1), add.s(n, 2)]))
