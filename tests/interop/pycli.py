"""Python Celery 5.2's `celery` command line, run several times in one process.

Reads one JSON list of arguments a line from stdin, e.g.
  ["-A", "pytasks", "inspect", "ping", "--json"]
runs the `celery` entry point (`python -m celery`'s celery.__main__.main,
with sys.argv set to those arguments) and writes one JSON line to stdout:
  {"code": <exit status>, "stdout": "...", "stderr": "..."}
What the command prints is captured, so it never mixes with these lines. Ends
at the end of stdin. The interop tests start one of these per test instead of
a Python interpreter per command (each start costs most of a second of CPU).
"""
import contextlib
import io
import json
import sys

from celery.__main__ import main

reply = sys.stdout
for line in sys.stdin:
    sys.argv = ["celery", *json.loads(line)]
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            if isinstance(e.code, str):
                err.write(e.code)
    reply.write(json.dumps({"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}) + "\n")
    reply.flush()
