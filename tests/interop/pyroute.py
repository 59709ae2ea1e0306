"""Where Python Celery 5.2 routes a task, for tests/interop_routing_test.ts.

  pyroute.py declare '<json>'  declare queues as a Celery worker with task_queues
                               does: [{"queue", "exchange", "type", "key"}]
  pyroute.py send '<json>'     one send_task("t") per case, each from an app of
                               its own: [{"options": {...}, "routes": {...},
                               "default_queue": "..."}] (default INTEROP_QUEUE)
  pyroute.py patterns '<json>' the pattern kombu stores with a topic binding of
                               each key: {key: pattern}
  pyroute.py collect '<json>'  take every message from the named queues as a
                               consumer sees it; prints
                               {queue: [[exchange, routing_key, task name], ...]}
  pyroute.py session           each line of stdin a JSON [command, argument] of
                               the above, answered by one line of stdout: one
                               Python start for a test's many steps

Broker from CELERY_BROKER_URL; the default queue from INTEROP_QUEUE.
"""
import json
import os
import sys

from celery import Celery
from kombu import Connection, Exchange, Queue

BROKER = os.environ["CELERY_BROKER_URL"]


def bound(d):
    return Queue(d["queue"], Exchange(d["exchange"], type=d.get("type", "direct")), routing_key=d["key"])


def declare(decls):
    with Connection(BROKER) as conn:
        channel = conn.channel()
        for d in decls:
            bound(d).bind(channel).declare()
    return None


def send(cases):
    apps = []
    for case in cases:
        app = Celery("pyroute", broker=BROKER)
        app.conf.task_default_queue = case.get("default_queue") or os.environ["INTEROP_QUEUE"]
        app.conf.task_routes = case.get("routes")
        app.send_task("t", (), **case.get("options", {}))
        apps.append(app)
    # After every send: the apps share kombu's producer pool for the URL, closed by any of them.
    for app in apps:
        app.pool.force_close_all()
    return None


def collect(names):
    out = {}
    with Connection(BROKER) as conn:
        channel = conn.channel()
        for name in names:
            queue = Queue(name, Exchange(name), routing_key=name).bind(channel)
            queue.declare()
            got = []
            while True:
                message = queue.get(no_ack=True)
                if message is None:
                    break
                info = message.delivery_info
                got.append([info["exchange"], info["routing_key"], message.headers["task"]])
            out[name] = got
    return out


def patterns(keys):
    from kombu.transport.virtual.exchange import TopicExchange

    return {key: TopicExchange(None).key_to_pattern(key) for key in keys}


COMMANDS = {"declare": declare, "send": send, "collect": collect, "patterns": patterns}

if __name__ == "__main__":
    if sys.argv[1] == "session":
        for line in sys.stdin:
            command, arg = json.loads(line)
            print(json.dumps(COMMANDS[command](arg)), flush=True)
    else:
        print(json.dumps(COMMANDS[sys.argv[1]](json.loads(sys.argv[2]))))
