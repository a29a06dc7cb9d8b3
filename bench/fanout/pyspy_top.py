"""Summarise a ``py-spy record --format raw`` profile (collapsed stacks).

    python bench/fanout/pyspy_top.py PROFILE.txt [--top 25] [--idle]

Prints the share of samples per function, inclusive (the function is anywhere on the stack)
and self (it is the leaf). py-spy leaves out idle threads unless recorded with ``--idle``, so
with ``-r R -d D`` a fully busy thread gives about R*D samples. Threads blocked in a C call
still count, so samples whose leaf is a known wait (the event loop in epoll, aiosqlite's worker
thread waiting on its queue) are reported as waiting and left out of the percentages. A thread
that was woken but not yet given a CPU (a busy machine) is still sampled in its wait.
"""
from __future__ import annotations

import argparse
import collections
import re

# Leaf frames (raw py-spy text, line number included) that mean "blocked, waiting for work".
WAIT_LEAVES = (
    "EpollSelector.select (selectors.py:468)",
    "_connection_worker_thread (aiosqlite/core.py:59)",
)


def frame_name(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"  (line numbers folded together)
    m = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not m:
        return frame
    func, path = m.groups()
    parts = path.split("/")
    short = "/".join(parts[-2:]) if parts[-2:-1] and parts[-2] in ("server", "handlers", "realtime", "db",
                                                                     "asyncio", "tornado", "sqlalchemy") \
        else parts[-1]
    return f"{func} ({short})"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("profile")
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--thread", default="", help="only stacks whose thread part contains this text")
    args = p.parse_args()
    incl: collections.Counter[str] = collections.Counter()
    leaf: collections.Counter[str] = collections.Counter()
    total = 0
    waits: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    for line in open(args.profile):
        line = line.rstrip("\n")
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = stack.split(";")
        thread = "all threads"
        if frames[0].startswith("thread ("):  # recorded with --threads
            thread = re.sub(r"^thread \(\d+\): ", "", frames[0])
            thread = re.sub(r"^Thread-\d+ ", "", thread)  # fold worker threads of one kind together
            frames = frames[1:] or frames
        if args.thread and args.thread not in thread:
            continue
        if frames[-1] in WAIT_LEAVES:
            waits[frames[-1]] += n
            continue
        threads[thread] += n
        names = [frame_name(f) for f in frames]
        total += n
        for name in set(names):
            incl[name] += n
        leaf[names[-1]] += n
    print(f"samples: {total} working; waiting: "
          + (", ".join(f"{k} {v}" for k, v in waits.items()) or "none"))
    if len(threads) > 1 or "all threads" not in threads:
        print("working samples by thread: " + ", ".join(f"{k} {v}" for k, v in threads.most_common()))
    print(f"\n{'inclusive':>9}  function")
    for name, n in incl.most_common(args.top):
        print(f"{100 * n / max(total, 1):8.1f}%  {name}")
    print(f"\n{'self':>9}  function")
    for name, n in leaf.most_common(args.top):
        print(f"{100 * n / max(total, 1):8.1f}%  {name}")


if __name__ == "__main__":
    main()
