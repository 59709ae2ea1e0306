"""Python Celery 5.2 canvas client for the interop tests.

Reads a JSON list of canvas specs from argv[1], builds each with Celery's
canvas API (by task name: the tasks may be served by Celeriac), applies
them all, waits for every result and prints one JSON list of outcomes
(like pyclient.py). Spec forms:
  {"s": name, "args": [...], "immutable": false}
  {"chain": [spec, ...]}         {"group": [spec, ...], "save": false}
  {"chord": [spec, ...], "body": spec}
  {"map": name, "it": [...]}     {"starmap": name, "it": [...]}
  {"chunks": name, "it": [...], "n": 2}
  {"restore": group_id}          (GroupResult.restore(...).get())
Any spec may say "follow_parents": false: `.get()` then reports the result
itself, not an error of a parent it finds first (a chord's failed header
member, which Celery's `.get()` re-raises when it is already stored); and
"kids": true: the outcome's "kids" then lists the children stored for the
canvas's first task ("task", or a group's member count).
Broker/backend from CELERY_BROKER_URL / CELERY_RESULT_BACKEND; queue from
INTEROP_QUEUE; broker key prefix from INTEROP_KEYPREFIX.
"""
import json
import os
import sys

from celery import Celery, chain, chord, group
from celery.canvas import chunks, xmap, xstarmap
from celery.result import AsyncResult, GroupResult

app = Celery(broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
app.conf.task_default_queue = os.environ.get("INTEROP_QUEUE", "celery")
if os.environ.get("INTEROP_KEYPREFIX"):
    app.conf.broker_transport_options = {"global_keyprefix": os.environ["INTEROP_KEYPREFIX"]}


def build(spec):
    if "s" in spec:
        sig = app.signature(spec["s"], args=tuple(spec.get("args", [])), kwargs=spec.get("kwargs", {}))
        return sig.set(immutable=True) if spec.get("immutable") else sig
    if "chain" in spec:
        return chain(*[build(s) for s in spec["chain"]])
    if "group" in spec:
        return group([build(s) for s in spec["group"]])
    if "chord" in spec:
        return chord([build(s) for s in spec["chord"]], build(spec["body"]))
    if "map" in spec:
        return xmap(app.signature(spec["map"]), spec["it"])
    if "starmap" in spec:
        return xstarmap(app.signature(spec["starmap"]), spec["it"])
    if "chunks" in spec:
        return chunks(app.signature(spec["chunks"]), spec["it"], spec["n"])
    raise ValueError(f"unknown spec {spec}")


def apply(spec):
    if "restore" in spec:
        return GroupResult.restore(spec["restore"], app=app)
    r = build(spec).apply_async()
    if spec.get("save"):
        r.save()
    return r


def all_ids(r):
    """Every task and group id of a result tree (for the test's clean-up)."""
    ids = [r.id]
    if isinstance(r, GroupResult):
        for c in r.results:
            ids += all_ids(c)
    if getattr(r, "parent", None) is not None:
        ids += all_ids(r.parent)
    return ids


specs = json.loads(sys.argv[1])
pending = [(apply(s), s.get("follow_parents", True), s) for s in specs]
timeout = float(os.environ.get("INTEROP_TIMEOUT", "60"))
out = []
for r, follow, spec in pending:
    try:
        value = r.get(timeout=timeout) if follow else r.get(timeout=timeout, follow_parents=False)
        out.append({"ok": value, "id": r.id, "ids": all_ids(r)})
        if spec.get("kids"):
            first = r
            while first.parent is not None:
                first = first.parent
            out[-1]["kids"] = [len(c.results) if isinstance(c, GroupResult) else "task"
                               for c in AsyncResult(first.id, app=app).children or []]
    except Exception as e:  # noqa: BLE001 - report every failure to the test
        out.append({"error": {"type": type(e).__name__, "module": type(e).__module__,
                              "args": [a if isinstance(a, (int, float, str, type(None))) else repr(a) for a in e.args]},
                    "id": r.id, "ids": all_ids(r)})
print(json.dumps(out))
