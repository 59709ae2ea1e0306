"""Python Celery 5.2 reads a task's children after a worker ran it with links.

For each case in argv[1] (a JSON list of {"queue": ..., "links": [...]}),
applies tasks.add(1, 2) to that queue with the links named ("task" for
tasks.add(10), "group" for group(tasks.add(1), tasks.add(2)), "chain" for
tasks.add(1) | tasks.add(2)); all are applied first, then each is waited
for with every follow-up. Prints, as JSON, one entry per case:
`AsyncResult(id).children` as it reads them, each child as
{"kind": "group", "members": [...]} or {"kind": "task", "value": ...}, and
every id seen (for clean-up). Broker/backend from CELERY_BROKER_URL /
CELERY_RESULT_BACKEND; broker key prefix from INTEROP_KEYPREFIX.
"""
import json
import os
import sys
import time

from celery import Celery, group
from celery.result import GroupResult

app = Celery(broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
app.conf.task_default_queue = os.environ.get("INTEROP_QUEUE", "celery")
if os.environ.get("INTEROP_KEYPREFIX"):
    app.conf.broker_transport_options = {"global_keyprefix": os.environ["INTEROP_KEYPREFIX"]}

add = app.signature("tasks.add")
LINKS = {
    "task": lambda: add.clone((10,)),
    "group": lambda: group(add.clone((1,)), add.clone((2,))),
    "chain": lambda: add.clone((1,)) | add.clone((2,)),
}


def read(r):
    """The children of the run `r`, once it and its follow-ups finished."""
    r.get(timeout=30)
    ids = [r.id]
    deadline = time.time() + 30

    def shape(c):
        if isinstance(c, GroupResult):
            ids.append(c.id)
            return {"kind": "group", "members": [shape(m) for m in c.results]}
        meta = app.backend.get_task_meta(c.id)
        while meta["status"] != "SUCCESS" and time.time() < deadline:
            time.sleep(0.1)
            meta = app.backend.get_task_meta(c.id)
        ids.append(c.id)
        if c.parent is not None:
            ids.append(c.parent.id)
        return {"kind": "task", "value": meta["result"]}

    children = app.AsyncResult(r.id).children
    while not children and time.time() < deadline:
        time.sleep(0.1)
        children = app.AsyncResult(r.id).children
    return {"children": [shape(c) for c in children or []], "ids": ids}


runs = [
    add.clone((1, 2)).apply_async(link=[LINKS[k]() for k in case["links"]], queue=case["queue"])
    for case in json.loads(sys.argv[1])
]
print(json.dumps([read(r) for r in runs]))
