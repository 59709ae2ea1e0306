"""Python Celery 5.2 client that follows a task's custom states.

Sends argv[1] (task name) with the JSON args in argv[2], then reads the
task's state and info until it is ready, both from one read of its meta (what
AsyncResult.state and .info each read on their own: two reads could pair a
PROGRESS state with the final result), and prints one JSON object:
  {"seen": [[state, info], ...] (each change once), "result": <value>, "id": <task id>}
Broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND; queue from
INTEROP_QUEUE; broker key prefix from INTEROP_KEYPREFIX.
"""
import json
import os
import sys
import time

from celery import Celery

app = Celery(broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
app.conf.task_default_queue = os.environ.get("INTEROP_QUEUE", "celery")
if os.environ.get("INTEROP_KEYPREFIX"):
    app.conf.broker_transport_options = {"global_keyprefix": os.environ["INTEROP_KEYPREFIX"]}

r = app.send_task(sys.argv[1], args=json.loads(sys.argv[2]))
seen = []
deadline = time.monotonic() + 30
while not r.ready() and time.monotonic() < deadline:
    meta = r.backend.get_task_meta(r.id)
    state, info = meta["status"], meta["result"]
    if not seen or seen[-1] != [state, info]:
        seen.append([state, info])
    time.sleep(0.02)
print(json.dumps({"seen": seen, "result": r.get(timeout=5), "id": r.id}))
