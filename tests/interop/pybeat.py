"""A Python Celery 5.2 beat for the interop tests: sends `tasks.add(2, 3)`
every second to the queue INTEROP_QUEUE (expiring after 30 s), for a
Celeriac worker to run. Broker from CELERY_BROKER_URL. Run with:
  /usr/bin/python3 -m celery -A pybeat beat -s /tmp/schedule --max-interval 1
"""
import os

from celery import Celery

app = Celery("pybeat", broker=os.environ["CELERY_BROKER_URL"])
app.conf.beat_schedule = {
    "add-every-second": {
        "task": "tasks.add",
        "schedule": 1.0,
        "args": (2, 3),
        "options": {"queue": os.environ["INTEROP_QUEUE"], "expires": 30},
    },
}
