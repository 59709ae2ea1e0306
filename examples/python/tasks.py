"""A Python Celery 5.x app whose tasks Celeriac clients call.

Run its worker with a python3 that has Celery 5.2 (on Debian /usr/bin/python3, after
`apt-get install python3-celery python3-redis python3-amqp python3-msgpack`; elsewhere
`pip install "celery[redis]==5.2.*"`; Debian installs no `celery` script):
    python3 -m celery -A tasks worker -l INFO          (from examples/python/)
Broker and backend: CELERY_BROKER_URL / CELERY_RESULT_BACKEND
(default redis://127.0.0.1:6379/0); queue: PYTHON_QUEUE (default python), not
the Celeriac example worker's `celery`: a worker takes every message of its
queues and parks the tasks it does not have.
"""
import os

from celery import Celery

REDIS = "redis://127.0.0.1:6379/0"
app = Celery(
    "tasks",
    broker=os.environ.get("CELERY_BROKER_URL", REDIS),
    backend=os.environ.get("CELERY_RESULT_BACKEND", REDIS),
)
app.conf.task_default_queue = os.environ.get("PYTHON_QUEUE", "python")


class InsufficientFunds(Exception):
    pass


@app.task(name="py.mul")
def mul(x, y):
    return x * y


@app.task(name="py.withdraw")
def withdraw(balance, amount):
    if amount > balance:
        raise InsufficientFunds(balance, amount)
    return balance - amount
