"""Python Celery client calling tasks served by a Celeriac worker.

Start the Celeriac worker first (from the repository root), on the same Redis
(without a broker it would use the embedded Deno KV store, which Python cannot reach):
    deno run -A worker.ts --app ./examples/tasks.ts --broker redis://127.0.0.1:6379/0 \
      --backend redis://127.0.0.1:6379/0
then, with a python3 that has Celery 5.2 (on Debian /usr/bin/python3, after
`apt-get install python3-celery python3-redis python3-amqp python3-msgpack`):
    python3 call_celeriac.py                 (from examples/python/)
"""
import os

from celery import Celery

REDIS = "redis://127.0.0.1:6379/0"
app = Celery(
    broker=os.environ.get("CELERY_BROKER_URL", REDIS),
    backend=os.environ.get("CELERY_RESULT_BACKEND", REDIS),
)
app.conf.task_default_queue = os.environ.get("CELERY_DEFAULT_QUEUE", "celery")

print("tasks.add(2, 3) =", app.send_task("tasks.add", args=(2, 3)).get(timeout=10))
print("tasks.mul(x=6, y=7) =", app.send_task("tasks.mul", kwargs={"x": 6, "y": 7}).get(timeout=10))
try:
    app.send_task("tasks.fail", args=("raised in TypeScript",)).get(timeout=10)
except ValueError as err:
    print("tasks.fail raised ValueError:", err)
