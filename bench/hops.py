#!/usr/bin/env python3
"""hops.py DIR: follow bench_rpc's calls hop by hop through what bench/hops.c
noted in DIR (ev.PID.TID files), and print the median of each hop in
microseconds. The root is the lowest pid; the child, the other process
whose main thread noted most; in each process the I/O thread is the one
that sent and received.
"""
import bisect
import glob
import os
import statistics
import sys

HOPS = [
    ('RI', 'E', "root I/O thread wakes"),
    ('RI', 'S', "root I/O thread sends the call"),
    ('CI', 'E', "child I/O thread wakes"),
    ('CI', 'R', "child I/O thread reads it"),
    ('CI', 'W', "child I/O thread signals main"),
    ('CM', 'E', "child main thread wakes"),
    ('CM', 'W', "child answers (signal to I/O)"),
    ('CI', 'E', "child I/O thread wakes"),
    ('CI', 'S', "child I/O thread sends the answer"),
    ('RI', 'E', "root I/O thread wakes"),
    ('RI', 'R', "root I/O thread reads it"),
    ('RI', 'W', "root I/O thread signals main"),
    ('RM', 'E', "root main thread wakes"),
    ('RM', 'W', "root calls again (signal to I/O)"),
]


def load(directory):
    procs = {}
    for path in glob.glob(os.path.join(directory, 'ev.*')):
        _, pid, tid = os.path.basename(path).split('.')
        with open(path) as f:
            role = f.readline().strip()
            events = [(int(t), c) for t, c in (line.split() for line in f if line.strip())]
        procs.setdefault(int(pid), {})[(role, int(tid))] = events
    return procs


def pick(threads, role, marks):
    best = max((k for k in threads if k[0] == role),
               key=lambda k: sum(1 for _, c in threads[k] if c in marks))
    return threads[best]


def main():
    procs = load(sys.argv[1])
    root = min(procs)
    child = max((p for p in procs if p != root),
                key=lambda p: sum(len(v) for (r, _), v in procs[p].items() if r == 'main'))
    streams = {'RM': pick(procs[root], 'main', 'W'), 'RI': pick(procs[root], 'io', 'SR'),
               'CM': pick(procs[child], 'main', 'W'), 'CI': pick(procs[child], 'io', 'SR')}
    times = {k: [t for t, _ in v] for k, v in streams.items()}
    low = max(v[0] for v in times.values())
    high = min(v[-1] for v in times.values())

    def after(stream, t, marks):
        events = streams[stream]
        i = bisect.bisect_right(times[stream], t)
        while i < len(events) and events[i][1] not in marks:
            i += 1
        return events[i][0] if i < len(events) else None

    hops = [[] for _ in HOPS]
    totals = []
    for start, mark in streams['RM']:
        if mark != 'W' or start < low or start > high:
            continue
        t, spans = start, []
        for stream, marks, _ in HOPS:
            nxt = after(stream, t, marks)
            if nxt is None:
                break
            spans.append(nxt - t)
            t = nxt
        if len(spans) == len(HOPS) and t - start < 1000000:
            totals.append(t - start)
            for i, span in enumerate(spans):
                hops[i].append(span)
    if not totals:
        sys.exit("hops.py: no whole round trip in %s" % sys.argv[1])
    print("round trips followed: %d, median %.2f us" % (len(totals), statistics.median(totals) / 1e3))
    for (_, _, name), spans in zip(HOPS, hops):
        print("  %-36s %6.2f us" % (name, statistics.median(spans) / 1e3))


if __name__ == '__main__':
    main()
