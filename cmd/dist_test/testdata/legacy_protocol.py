"""Speaks the original dist_test's protocol (COMPAT.md) to a dist_test master,
as the original Python client and slave did: urllib, form posts, JSON
answers, HTML-escaped logs. Standard library only.

Usage: python3 legacy_protocol.py SPEC.json
SPEC: {"master": URL, "pass": HASH, "fail": HASH, "hang": HASH, "absent": HASH}
(absent: a well-formed hash the isolate server does not have).

Prints "PASS <check>" or "FAIL <check>: <why>" for each check, and exits 1
when any failed. The original client retried any HTTP error status 10
times, 5 s apart: every answer here must be HTTP 200 at the first try, so
an error status is a failure, never retried.
"""

import html
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

spec = json.load(open(sys.argv[1]))
MASTER = spec["master"].rstrip("/")
failures = 0


def check(name, ok, why=""):
    global failures
    if ok:
        print("PASS " + name)
    else:
        failures += 1
        print("FAIL %s: %s" % (name, why))
    sys.stdout.flush()
    return ok


class HTTPStatus(Exception):
    pass


def request(path, params=None, post=False):
    """One request as the original client made it; the body as text."""
    query = urllib.parse.urlencode(params or {})
    if post:
        req = urllib.request.Request(MASTER + path, data=query.encode())
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    else:
        req = urllib.request.Request(MASTER + path + ("?" + query if query else ""))
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read().decode()
            cache = resp.headers.get("Cache-Control", "")
    except urllib.error.HTTPError as e:
        raise HTTPStatus("%s %s: HTTP %d %s" % ("POST" if post else "GET", path, e.code, e.read()[:300]))
    if path != "/view_log" and cache != "no-cache, no-store":
        raise HTTPStatus("%s: Cache-Control %r, want 'no-cache, no-store'" % (path, cache))
    return body


def call(path, params=None, post=False):
    return json.loads(request(path, params, post))


def submit(job_id, tasks):
    return call("/submit_job", {"job_id": job_id, "job_json": json.dumps({"tasks": tasks})}, post=True)


def wait_finished(job_id, deadline_s=120):
    """Polls /job_status as the original client's watch did."""
    end = time.time() + deadline_s
    while True:
        st = call("/job_status", {"job_id": job_id})
        if st.get("status") == "finished" or time.time() > end:
            return st
        time.sleep(0.2)


def view_log(job_id, task, log):
    return request("/view_log", {"job_id": job_id, "task_id": task["task_id"],
                                 "attempt": task["attempt"], "log": log})


def fetch(link):
    with urllib.request.urlopen(link, timeout=30) as resp:
        return resp.read().decode()


def by_description(tasks):
    return {t["description"]: t for t in tasks}


ABSENT = spec["absent"]
MISSING_NOTE = "inputs %s are not on the isolate server %s: archive them first\n" % (ABSENT, MASTER)
TIMEOUT_NOTE = "\n------\nKilling task after 1 seconds\n"


def outcomes():
    """A job of each kind of outcome, submitted by form post."""
    absent, missing_note, timeout_note = ABSENT, MISSING_NOTE, TIMEOUT_NOTE
    job = "py.main"
    tasks = [
        {"isolate_hash": spec["pass"], "description": "pass", "timeout": 60},
        {"isolate_hash": spec["fail"], "description": "fail", "timeout": 60},
        {"isolate_hash": spec["hang"], "description": "hang", "timeout": 1},
        {"isolate_hash": absent, "description": "absent", "timeout": 60, "max_retries": 2},
    ]
    check("submit_job answers SUCCESS", submit(job, tasks) == {"status": "SUCCESS"})

    st = wait_finished(job)
    want = {"status": "finished", "total_tasks": 4, "finished_tasks": 4, "running_tasks": 0,
            "retried_tasks": 0, "timedout_tasks": 1, "failed_tasks": 3, "succeeded_tasks": 1,
            "total_groups": 4, "finished_groups": 4, "failed_groups": 3, "succeeded_groups": 1,
            "flaky_groups": 0, "flaky_tasks": 0}
    got = {k: st.get(k) for k in want}
    check("job_status counts the job: the absent inputs' task failed, not retried", got == want,
          "got %s, want %s" % (got, want))

    all_tasks = call("/tasks", {"job_id": job})
    ids = sorted(t["task_id"] for t in all_tasks)
    want_ids = sorted("%s.%d" % (t["isolate_hash"], i) for i, t in enumerate(tasks))
    check("tasks lists every attempt, named <isolate_hash>.<index>", ids == want_ids, "%s" % ids)
    failed = call("/failed_tasks", {"job_id": job})
    check("failed_tasks lists the three failures",
          sorted(t["description"] for t in failed) == ["absent", "fail", "hang"], "%s" % failed)
    check("tasks?status=failed is failed_tasks",
          sorted(map(json.dumps, call("/tasks", {"job_id": job, "status": "failed"}))) == sorted(map(json.dumps, failed)))
    succeeded = call("/tasks", {"job_id": job, "status": "succeeded"})
    check("tasks?status=succeeded", [t["description"] for t in succeeded] == ["pass"], "%s" % succeeded)
    check("tasks?status=finished", len(call("/tasks", {"job_id": job, "status": "finished"})) == 4)
    for t in all_tasks:
        check("task record %s has the original's keys" % t["description"],
              {"task_id", "attempt", "description"} <= set(t) and
              set(t) <= {"task_id", "attempt", "description", "stdout_link", "stderr_link", "artifact_archive_link"},
              "%s" % t)

    f = by_description(failed)
    # Logs are HTML-escaped: the failing task printed "<b>&" in each.
    out, err = view_log(job, f["fail"], "stdout"), view_log(job, f["fail"], "stderr")
    check("view_log of a failure's stdout", out == "<pre>stdout of failure &lt;b&gt;&amp;\n</pre>", out)
    check("view_log of a failure's stderr", err == "<pre>stderr of failure &lt;b&gt;&amp;\n</pre>", err)
    check("the timed-out task's stdout is kept", view_log(job, f["hang"], "stdout") == "<pre>hanging h\n</pre>",
          view_log(job, f["hang"], "stdout"))
    check("view_log of a timed-out task's stderr says it was killed",
          view_log(job, f["hang"], "stderr") == "<pre>" + html.escape(timeout_note) + "</pre>", view_log(job, f["hang"], "stderr"))
    check("the stderr link of the timed-out task gives the note", "stderr_link" in f["hang"] and
          fetch(f["hang"]["stderr_link"]) == timeout_note, "%s" % f["hang"])
    check("the absent inputs' task has a stderr that says why, and no stdout",
          "stderr_link" in f["absent"] and "stdout_link" not in f["absent"] and
          fetch(f["absent"]["stderr_link"]) == missing_note, "%s" % f["absent"])
    check("view_log of the absent inputs' stderr",
          view_log(job, f["absent"], "stderr") == "<pre>" + html.escape(missing_note) + "</pre>",
          view_log(job, f["absent"], "stderr"))

    # The original slave asked for a retry after each failure with retries
    # left; this master queues retries itself, so it changes nothing here.
    for d in ("fail", "absent"):
        task_json = json.dumps({"job_id": job, "task_id": f[d]["task_id"], "attempt": 0})
        check("retry_task of %s answers SUCCESS" % d,
              call("/retry_task", {"task_json": task_json}, post=True) == {"status": "SUCCESS"})
    check("retry_task queued no attempt without a retry left",
          len(call("/tasks", {"job_id": job})) == 4 and call("/job_status", {"job_id": job})["status"] == "finished")



def absent_only():
    """A job whose every task names absent inputs is over at once."""
    absent = ABSENT
    check("submit_job of absent inputs only answers SUCCESS",
          submit("py.absent", [{"isolate_hash": absent, "description": "a%d" % i, "max_retries": 3} for i in range(3)])
          == {"status": "SUCCESS"})
    st = call("/job_status", {"job_id": "py.absent"})
    check("that job is finished at its first poll, every task failed once",
          st["status"] == "finished" and st["failed_groups"] == 3 and st["total_tasks"] == 3 and st["retried_tasks"] == 0,
          "%s" % st)



def cancel():
    """Cancel a job whose task runs for minutes."""
    check("submit_job of a long task", submit("py.cancel", [{"isolate_hash": spec["hang"], "description": "long",
                                                             "timeout": 300}]) == {"status": "SUCCESS"})
    end = time.time() + 60
    while call("/job_status", {"job_id": "py.cancel"})["running_tasks"] != 1 and time.time() < end:
        time.sleep(0.2)
    check("cancel_job (POST) answers SUCCESS", call("/cancel_job", {"job_id": "py.cancel"}, post=True) == {"status": "SUCCESS"})
    st = wait_finished("py.cancel")
    check("the canceled job is finished, its task failed", st["status"] == "finished" and st["failed_groups"] == 1 and
          st["succeeded_groups"] == 0, "%s" % st)
    check("cancel_job (GET) of a finished job answers SUCCESS", call("/cancel_job", {"job_id": "py.cancel"}) == {"status": "SUCCESS"})



def unknown():
    """Unknown jobs and statuses: HTTP 200 with the original's bodies."""
    check("job_status of an unknown job", call("/job_status", {"job_id": "py.nope"}) ==
          {"error": "Did not fetch any tasks for specified job_id py.nope"})
    check("tasks of an unknown job", call("/tasks", {"job_id": "py.nope"}) == [])
    check("failed_tasks of an unknown job", call("/failed_tasks", {"job_id": "py.nope"}) == [])
    check("tasks with an unknown status", call("/tasks", {"job_id": "py.main", "status": "bogus"}) ==
          {"error": "Unknown status type bogus"})
    check("cancel_job of an unknown job", call("/cancel_job", {"job_id": "py.nope"}, post=True) == {"status": "SUCCESS"})


# Each part runs whatever became of the others, so that one broken answer
# does not hide the rest.
for part in (outcomes, absent_only, cancel, unknown):
    try:
        part()
    except HTTPStatus as e:
        check("every answer of %s is HTTP 200" % part.__name__, False, str(e))
    except Exception as e:  # a broken answer: say what, as a failure
        check(part.__name__, False, "%s: %s" % (type(e).__name__, e))
sys.exit(1 if failures else 0)
