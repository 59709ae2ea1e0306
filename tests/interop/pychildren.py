"""Python Celery 5.2 reads a task's children after a worker ran it with links.

Applies tasks.add(1, 2) with the links named in argv[1] (a JSON list of
"task" for tasks.add(10), "group" for group(tasks.add(1), tasks.add(2)),
"chain" for tasks.add(1) | tasks.add(2)), waits for it and every follow-up,
and prints, as JSON, `AsyncResult(id).children` as it reads them: each child
as {"kind": "group", "members": [...]} or {"kind": "task", "value": ...}, and every
id seen (for clean-up). Broker/backend from CELERY_BROKER_URL /
CELERY_RESULT_BACKEND; queue from INTEROP_QUEUE; broker key prefix from
INTEROP_KEYPREFIX.
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

links = [LINKS[k]() for k in json.loads(sys.argv[1])]
r = add.clone((1, 2)).apply_async(link=links)
r.get(timeout=30)
ids = [r.id]


def shape(c):
    if isinstance(c, GroupResult):
        ids.append(c.id)
        return {"kind": "group", "members": [shape(m) for m in c.results]}
    meta = app.backend.get_task_meta(c.id)
    while meta["status"] != "SUCCESS" and time.time() < deadline:
        time.sleep(0.1)
        meta = app.backend.get_task_meta(c.id)
    value = meta["result"]
    ids.append(c.id)
    if c.parent is not None:
        ids.append(c.parent.id)
    return {"kind": "task", "value": value}


deadline = time.time() + 30
children = app.AsyncResult(r.id).children
while not children and time.time() < deadline:
    time.sleep(0.1)
    children = app.AsyncResult(r.id).children
print(json.dumps({"children": [shape(c) for c in children or []], "ids": ids}))
