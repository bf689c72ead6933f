#!/usr/bin/env python3
"""Summarises an async-profiler CPU profile of a `bench stream` JVM (collapsed stacks, one thread per stack).

Record one (async-profiler is on Maven Central; nothing is added to the project):
    mvn -q dependency:get -Dartifact=tools.profiler:async-profiler:3.0:jar:linux-x64
    unzip -o -q ~/.m2/repository/tools/profiler/async-profiler/3.0/async-profiler-3.0-linux-x64.jar \
        'linux-x64/*' -d target/async-profiler
    java -Xmx4g -agentpath:target/async-profiler/linux-x64/libasyncProfiler.so=start,event=cpu,interval=5ms,threads,collapsed,file=target/prof.collapsed \
        -jar target/lora-lego.jar bench stream --shape llama-7b --adapters 20 --rank 16 --dtype bf16 --k 16 --warmup 4
    python3 scripts/profile-summary.py target/prof.collapsed

Prints the share of samples per thread group, then, for the Kafka Streams threads, the share of samples under
each of our methods (inclusive: a sample counts once for every distinct method on its stack) and the hottest
frames (self). With `--callers FRAME` it prints, for the stream threads, the chain of our methods that leads to
FRAME instead. The profile covers the whole run (adapter generation and warm-up included); the stream threads
do nothing before the warm-up starts.
"""
import collections
import re
import sys

OURS = 'dev/loralego/'


def stacks(path):
    for line in open(path):
        stack, _, n = line.rstrip().rpartition(' ')
        if not stack:
            continue
        frames = stack.split(';')
        yield frames[0], frames[1:], int(n)


def group(thread):
    name = re.sub(r'\s*tid=\d+\]$', '', thread).lstrip('[')
    if 'StreamThread' in name:
        return 'Kafka Streams threads'
    return re.sub(r'\d+', '#', name)


def short(frame):
    return frame.rsplit('/', 1)[-1]


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    path = argv[1]
    callers_of = argv[argv.index('--callers') + 1] if '--callers' in argv else None
    groups = collections.Counter()
    inclusive = collections.Counter()
    own = collections.Counter()
    chains = collections.Counter()
    total = stream = 0
    for thread, frames, n in stacks(path):
        total += n
        g = group(thread)
        groups[g] += n
        if g != 'Kafka Streams threads':
            continue
        stream += n
        if callers_of:
            hit = next((i for i, f in enumerate(frames) if callers_of in f), None)
            if hit is not None:
                ours = [short(f) for f in frames[:hit] if OURS in f][-3:]
                chains[' < '.join(reversed(ours))] += n
            continue
        for f in set(frames):
            if OURS in f:
                inclusive[f] += n
        if frames:
            own[frames[-1]] += n
    print(f'{total} samples')
    for g, n in groups.most_common(12):
        print(f'{100 * n / total:6.1f}%  {g}')
    if stream == 0:
        return
    if callers_of:
        print(f'\nstream threads: paths to {callers_of}')
        for c, n in chains.most_common(15):
            print(f'{100 * n / stream:6.1f}%  {c}')
        return
    print('\nstream threads, inclusive (our methods)')
    for f, n in inclusive.most_common(40):
        print(f'{100 * n / stream:6.1f}%  {f[len(OURS):]}')
    print('\nstream threads, self (hottest frames)')
    for f, n in own.most_common(25):
        print(f'{100 * n / stream:6.1f}%  {f[:120]}')


if __name__ == '__main__':
    main(sys.argv)
