"""Watch events with Celery 5.2's own monitor code and print what it saw.

Runs `app.events.Receiver` (with wakeup, as Flower does) feeding a
`celery.events.state.State` until `ready` tasks reached a ready state (or
the timeout), then prints JSON: the workers State tracks and every task's
fields. Usage:
  /usr/bin/python3 pyevents.py READY TIMEOUT_SECONDS
Broker from CELERY_BROKER_URL (+ INTEROP_KEYPREFIX); prints "listening"
on stderr once its wakeup (the `heartbeat` broadcast) is sent: a worker
started after that never gets the wakeup.
"""
import json
import os
import sys
import threading
import time

from celery import Celery
from celery import states as celery_states

app = Celery("pyevents", broker=os.environ["CELERY_BROKER_URL"])
app.conf.broker_transport_options = {"global_keyprefix": os.environ.get("INTEROP_KEYPREFIX", "")}

want = int(sys.argv[1])
timeout = float(sys.argv[2])
state = app.events.State()
types = []


def on_event(event):
    types.append(event["type"])
    state.event(event)
    done = [t for t in state.tasks.values() if t.state in celery_states.READY_STATES]
    if len(done) >= want:
        recv.should_stop = True


with app.connection_for_read() as conn:
    recv = app.events.Receiver(conn, handlers={"*": on_event})
    threading.Timer(timeout, lambda: setattr(recv, "should_stop", True)).start()
    wakeup = recv.wakeup_workers

    def wakeup_then_say(channel=None):
        wakeup(channel=channel)
        print("listening", file=sys.stderr, flush=True)

    recv.wakeup_workers = wakeup_then_say
    try:
        recv.capture(limit=None, timeout=timeout, wakeup=True)
    except Exception as exc:  # socket timeout when nothing arrives
        print(f"capture ended: {exc!r}", file=sys.stderr)

out = {
    "types": types,
    "workers": {
        name: {
            "alive": w.alive,
            "active": w.active,
            "processed": w.processed,
            "sw_ident": w.sw_ident,
            "sw_sys": w.sw_sys,
            "freq": w.freq,
            "loadavg": w.loadavg,
        }
        for name, w in state.workers.items()
    },
    "tasks": {
        uuid: {
            "state": t.state,
            "name": t.name,
            "args": t.args,
            "kwargs": t.kwargs,
            "result": t.result,
            "runtime": t.runtime,
            "exception": t.exception,
            "traceback": t.traceback,
            "hostname": t.worker.hostname if t.worker else None,
            "received": t.received,
            "started": t.started,
            "retries": t.retries,
            "eta": t.eta,
        }
        for uuid, t in state.tasks.items()
    },
    "now": time.time(),
}
print(json.dumps(out))
sys.stdout.flush()
os._exit(0)
