#!/usr/bin/env python3
"""Per-thread CPU, disk writes and minor page faults of a running `bench stream` JVM over its measured phase.

Usage: start it, then the benchmark with its output going to LOG:
    python3 scripts/thread-cpu.py LOG > cpu.txt &
    java -Xmx4g -jar target/lora-lego.jar bench stream ... --warmup 4 > LOG 2>&1

It finds the newest `java ... stream ...` process, takes a snapshot of every thread's CPU time, write_bytes and minor faults
(/proc/PID/task/*/{stat,io}) when LOG says "measuring" (the end of the warm-up), keeps the last values seen of
every thread until the JVM exits, and prints the differences summed by thread name (names as the kernel keeps
them: 15 characters, so every Kafka Streams thread of the bench shows as "lora-lego-bench"). It reads /proc
only, once a second, without starting processes, so it takes almost no CPU itself.
"""
import collections
import glob
import os
import re
import sys
import time

TICK = os.sysconf('SC_CLK_TCK')


def snapshot(pid):
    threads = {}
    for task in glob.glob(f'/proc/{pid}/task/*'):
        try:
            name = open(task + '/comm').read().strip()
            stat = open(task + '/stat').read().rsplit(')', 1)[1].split()
            io = dict(line.split(': ') for line in open(task + '/io').read().splitlines())
            threads[task] = (name, (int(stat[11]) + int(stat[12])) / TICK, int(io['write_bytes']), int(stat[7]))
        except (OSError, KeyError, IndexError, ValueError):
            pass  # the thread ended meanwhile
    return threads


def bench_pid():
    while True:
        for p in os.listdir('/proc'):
            if not p.isdigit():
                continue
            try:
                args = open(f'/proc/{p}/cmdline', 'rb').read().split(b'\0')
            except OSError:
                continue
            if args and args[0].endswith(b'java') and b'stream' in args:
                return p
        time.sleep(0.2)


def group(name):
    return re.sub(r'[-#_ ]?\d+$', '', name)


def main(log):
    pid = bench_pid()
    start, start_time, seen, last_time = None, None, {}, None
    while os.path.exists(f'/proc/{pid}'):
        threads = snapshot(pid)
        if start is not None and threads:
            seen.update(threads)
            last_time = time.time()
        elif start is None and os.path.exists(log) and 'measuring' in open(log).read():
            start, start_time = threads, time.time()
        time.sleep(1)
    if start is None:
        sys.exit('the benchmark never reported "measuring" (run it with --warmup N)')
    totals = collections.defaultdict(lambda: [0.0, 0, 0])
    for task, (name, cpu, written, faults) in seen.items():
        cpu0, written0, faults0 = start[task][1:] if task in start else (0.0, 0, 0)
        totals[group(name)][0] += cpu - cpu0
        totals[group(name)][1] += written - written0
        totals[group(name)][2] += faults - faults0
    print(f'measured window {last_time - start_time:.1f} s; thread CPU {sum(v[0] for v in totals.values()):.1f} core-s; '
          f'minor page faults {sum(v[2] for v in totals.values()) / 1e3:.0f} k')
    for name, (cpu, written, faults) in sorted(totals.items(), key=lambda kv: -kv[1][0])[:14]:
        print(f'{cpu:7.1f} core-s {written / 1e6:8.0f} MB written {faults / 1e3:7.0f} k faults  {name}')


if __name__ == '__main__':
    main(sys.argv[1])
