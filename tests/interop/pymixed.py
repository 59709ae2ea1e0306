"""Mixed-worker canvases for tests/interop_mixed_canvas_test.ts.

Builds each canvas with Celery's API, its tasks routed to queue A (always
a Python worker) or B (a Python worker in one run, a Celeriac worker in the
other), waits, and prints one JSON object: per canvas, the state and result
of every node of its result tree (parents, group members) and of the links
it named ("links"), plus every id ("ids", for the test's clean-up). The test
compares the two runs. Queues from QA / QB; broker and backend from
CELERY_BROKER_URL / CELERY_RESULT_BACKEND; key prefix from INTEROP_KEYPREFIX.
"""
import json
import os
import time
import uuid

from celery import Celery, chain, chord, group
from celery.canvas import _chain
from celery.result import AsyncResult, GroupResult

app = Celery(broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
if os.environ.get("INTEROP_KEYPREFIX"):
    app.conf.broker_transport_options = {"global_keyprefix": os.environ["INTEROP_KEYPREFIX"]}
Q = {"A": os.environ["QA"], "B": os.environ["QB"]}
links = {}


def s(name, *args, q="A", imm=False, tid=None):
    sig = app.signature(name, args=args, queue=Q[q], immutable=imm)
    if tid:
        sig.set(task_id=tid)
    return sig


def lk(tag, q):
    """A link (callback or errback) whose id is recorded under `tag`."""
    tid = str(uuid.uuid4())
    links[tag] = tid
    return s("tasks.tsum", q=q, tid=tid) if tag.startswith("sum") else s("tasks.who", q=q, tid=tid)


def lkc(tag, sig):
    """A link canvas whose result id (its last step's) is recorded under `tag`."""
    tid = str(uuid.uuid4())
    links[tag] = tid
    return sig.set(task_id=tid)


def one_group_chain(*steps):
    """A chain kept as built (chain() would unroll a group of one at once), as Celeriac sends it."""
    return _chain(*steps, app=app)


def linked(sig, cb, err=False):
    (sig.link_error if err else sig.link)(cb)
    return sig


canvases = {
 "chain": lambda: chain(s("tasks.add",1,2,q="A"), s("tasks.add",3,q="B"), s("tasks.mul",4,q="A"), s("tasks.add",1,q="B")),
 "chain_fail_mid": lambda: chain(s("tasks.add",1,2,q="A"), s("tasks.fail","mid",q="B",imm=True), s("tasks.add",3,q="A"), s("tasks.add",4,q="B")),
 "group": lambda: group(s("tasks.add",1,1,q="A"), s("tasks.add",2,2,q="B"), s("tasks.fail","g",q="B")),
 "chord_bodyA": lambda: chord([s("tasks.add",1,1,q="A"), s("tasks.add",2,2,q="B")], s("tasks.tsum",q="A")),
 "chord_bodyB": lambda: chord([s("tasks.add",1,1,q="A"), s("tasks.add",2,2,q="B")], s("tasks.tsum",q="B")),
 "chord_failB": lambda: chord([s("tasks.add",1,1,q="A"), s("tasks.fail","hdr",q="B")], s("tasks.tsum",q="A")),
 "chord_failA": lambda: chord([s("tasks.fail","hdr",q="A"), s("tasks.add",2,2,q="B")], s("tasks.tsum",q="B")),
 "chord_fail_eb": lambda: chord([s("tasks.add",1,1,q="A"), s("tasks.fail","hdr",q="B")], s("tasks.tsum",q="A").on_error(lk("eb_chord","B"))),
 "group_link": lambda: linked(group(s("tasks.add",1,1,q="A"), s("tasks.add",2,2,q="B")), lk("sum_link_group","B")),
 "group_link_ts": lambda: linked(group(s("tasks.add",1,1,q="B"), s("tasks.add",2,2,q="A")), lk("who_link_group","A")),
 "group_onerror": lambda: linked(group(s("tasks.add",1,1,q="A"), s("tasks.fail","gf",q="B")), lk("eb_group","A"), err=True),
 "chord_body_link": lambda: chord([s("tasks.add",1,1,q="A"), s("tasks.add",2,2,q="B")], linked(s("tasks.tsum",q="B"), lk("who_body_link","A"))),
 "chain_step_link": lambda: chain(s("tasks.add",1,1,q="A"), linked(s("tasks.add",2,q="B"), lk("who_mid","A")), s("tasks.add",3,q="A")),
 "chain_group_fail_then": lambda: chain(s("tasks.add",1,1,q="A"), group(s("tasks.add",1,q="B"), s("tasks.fail","gm",q="B",imm=True)), s("tasks.tsum",q="A")),
 "group_of_chains": lambda: group(chain(s("tasks.add",1,1,q="A"), s("tasks.add",1,q="B")), chain(s("tasks.add",2,2,q="B"), s("tasks.add",2,q="A"))),
 "chord_of_chains": lambda: chord([chain(s("tasks.add",1,1,q="A"), s("tasks.add",1,q="B")), chain(s("tasks.add",2,2,q="B"), s("tasks.fail","cc",q="A",imm=True))], s("tasks.tsum",q="B")),
 "nested_chord_chain": lambda: chain(s("tasks.add",1,1,q="A"), chord([s("tasks.add",1,q="B"), s("tasks.add",2,q="A")], s("tasks.tsum",q="B")), s("tasks.add",10,q="A")),
 "nested_chord_chain2": lambda: chain(s("tasks.add",1,1,q="B"), chord([s("tasks.add",1,q="A"), s("tasks.add",2,q="B")], s("tasks.tsum",q="A")), s("tasks.add",10,q="B")),
 "chord_in_chord": lambda: chord([chord([s("tasks.add",1,1,q="A"), s("tasks.add",2,2,q="B")], s("tasks.tsum",q="B")), s("tasks.add",3,3,q="A")], s("tasks.tsum",q="A")),
 "si": lambda: chain(s("tasks.add",1,2,q="A"), s("tasks.add",10,10,q="B",imm=True), s("tasks.mul",2,q="A"), s("tasks.add",5,5,q="A",imm=True), s("tasks.add",1,q="B")),
 "replace_task_B": lambda: chain(s("tasks.add",1,1,q="A"), s("tasks.by_task",q="B"), s("tasks.add",1000,q="A")),
 "replace_task_A": lambda: chain(s("tasks.add",1,1,q="B"), s("tasks.by_task",q="A"), s("tasks.add",1000,q="B")),
 "replace_group_B": lambda: chain(s("tasks.add",1,1,q="A"), s("tasks.by_group",q="B"), s("tasks.tsum",q="A")),
 "replace_in_chord": lambda: chord([s("tasks.by_task", 1, q="B"), s("tasks.add", 1, 1, q="A")], s("tasks.tsum", q="A")),
 "chain_eb_fail": lambda: chain(s("tasks.add",1,1,q="A"), s("tasks.fail","x",q="B",imm=True), s("tasks.add",1,q="A")).on_error(lk("eb_chain","A")),
 "link_err_task": lambda: s("tasks.fail","y",q="B").on_error(lk("eb_task","A")),
 "link_chain_group_of_one": lambda: linked(s("tasks.add",1,1,q="B"), lkc("chain_one", one_group_chain(s("tasks.add",1,q="A"), group([s("tasks.add",2,q="A")]), s("tasks.mul",2,q="A")))),
 "link_chain_ends_group_of_one": lambda: linked(s("tasks.add",1,1,q="B"), lkc("chain_end_one", one_group_chain(s("tasks.add",1,q="A"), group([s("tasks.add",2,q="A")])))),
 "link_chain_starts_group_of_one": lambda: linked(s("tasks.add",1,1,q="B"), lkc("chain_start_one", one_group_chain(group([s("tasks.add",1,q="A")]), s("tasks.mul",2,q="A")))),
}


def info(r):
    st = r.state
    if st == "SUCCESS":
        return [st, r.result]
    if st == "FAILURE":
        e = r.result
        args = [a if isinstance(a, (int, float)) else str(a)[:60] for a in getattr(e, "args", [])]
        if type(e).__name__ == "ChordError":
            args = ["Dependency <id> " + " ".join(args[0].split(" ")[2:])]
        return [st, [type(e).__name__, args]]
    return [st, None]


def tree(r, ids):
    ids.append(r.id)
    d = {"group": [tree(c, ids) for c in r.results]} if isinstance(r, GroupResult) else {"s": info(r)}
    if getattr(r, "parent", None) is not None:
        d["parent"] = tree(r.parent, ids)
    return d


pending = {}
for name, build in canvases.items():
    links.clear()
    pending[name] = (build().apply_async(), dict(links))
deadline = time.time() + float(os.environ.get("INTEROP_TIMEOUT", "30"))
for r, _ in pending.values():
    try:
        r.get(timeout=max(0.1, deadline - time.time()), propagate=False)
    except Exception:  # noqa: BLE001 - a canvas still running is reported by its states
        pass
time.sleep(1.5)  # links and errbacks sent after the canvas's own result
out, ids = {}, []
for name, (r, lks) in pending.items():
    out[name] = {"tree": tree(r, ids), "links": {k: info(AsyncResult(v, app=app)) for k, v in lks.items()}}
    ids += list(lks.values())
print(json.dumps({"canvases": out, "ids": ids}, sort_keys=True))
