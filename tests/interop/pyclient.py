"""Python Celery 5.2 client for the interop tests.

Reads a JSON list of calls from argv[1]:
  [{"task": "tasks.add", "args": [2, 3], "kwargs": {}, "options": {}}, ...]
sends them all, waits for every result and prints one JSON list:
  [{"ok": <value>} | {"error": {"type", "module", "args"}}, ...]
Broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND; queue from
INTEROP_QUEUE; broker key prefix from INTEROP_KEYPREFIX; INTEROP_QUEUE_TYPE=quorum
declares the queue as a quorum queue, as Celery 5.5's task_default_queue_type does;
INTEROP_TASK_QUEUES='[{"queue", "exchange", "type", "key"}]' sets task_queues;
INTEROP_RESULT_EXTENDED=1 sets result_extended and adds each result's
{"name", "args", "kwargs", "worker", "retries", "queue"} as "extended".
"""
import json
import os
import sys

from celery import Celery

app = Celery(broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
app.conf.task_default_queue = os.environ.get("INTEROP_QUEUE", "celery")
if os.environ.get("INTEROP_QUEUE_TYPE") == "quorum":
    from kombu import Exchange, Queue

    _q = app.conf.task_default_queue
    app.conf.task_queues = [Queue(_q, Exchange(_q), routing_key=_q, queue_arguments={"x-queue-type": "quorum"})]
if os.environ.get("INTEROP_TASK_QUEUES"):
    from kombu import Exchange, Queue

    app.conf.task_queues = [
        Queue(q["queue"], Exchange(q["exchange"], type=q.get("type", "direct")), routing_key=q["key"])
        for q in json.loads(os.environ["INTEROP_TASK_QUEUES"])
    ]
if os.environ.get("INTEROP_KEYPREFIX"):
    app.conf.broker_transport_options = {"global_keyprefix": os.environ["INTEROP_KEYPREFIX"]}

EXTENDED = os.environ.get("INTEROP_RESULT_EXTENDED") == "1"
if EXTENDED:
    app.conf.result_extended = True

calls = json.loads(sys.argv[1])
pending = [
    app.send_task(c["task"], args=c.get("args", []), kwargs=c.get("kwargs", {}), **c.get("options", {}))
    for c in calls
]
out = []
for r in pending:
    try:
        out.append({"ok": r.get(timeout=float(os.environ.get("INTEROP_TIMEOUT", "20"))), "id": r.id})
    except Exception as e:  # noqa: BLE001 - report every failure to the test
        out.append({"error": {"type": type(e).__name__, "module": type(e).__module__,
                              "args": [a if isinstance(a, (int, float, str, type(None))) else repr(a) for a in e.args]},
                    "id": r.id})
if EXTENDED:
    for o, r in zip(out, pending):
        o["extended"] = {"name": r.name, "args": r.args, "kwargs": r.kwargs, "worker": r.worker,
                         "retries": r.retries, "queue": r.queue}
print(json.dumps(out))
