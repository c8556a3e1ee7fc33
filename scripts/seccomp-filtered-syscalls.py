#!/usr/bin/python3
"""Syscalls made under packvisor's seccomp filter, from
`strace -f -ff -qq --pidns-translation -o PREFIX packvisor ...` traces (one file per pid).
Prints "name count" per syscall over every PREFIX given. The measurement behind
docs/threat-model.md, "Allow-list mode".

  scripts/seccomp-filtered-syscalls.py /tmp/traces/run1 /tmp/traces/run2 ...

The process that loads the filter counts from its seccomp(SECCOMP_SET_MODE_FILTER) on, and every
process it (or a descendant) clones afterwards counts whole: they inherit the filter. Clone
results inside the sandbox's pid namespace are read through strace's translation comment."""
import collections, glob, re, sys
call_re = re.compile(r"^(?:\d+\.\d+ )?([a-z_0-9]+)\(")
child_re = re.compile(r"= (\d+)(?: /\* (\d+) in strace's PID NS \*/)?\s*$")
lines_of = {}
for prefix in sys.argv[1:]:
    for path in glob.glob(prefix + ".*"):
        lines_of[(prefix, int(path.rsplit(".", 1)[1]))] = open(path, errors="replace").read().splitlines()
counts = collections.Counter()
def walk(key, start):
    for i, line in enumerate(lines_of.get(key, [])):
        if i < start:
            continue
        m = call_re.match(line)
        if not m:
            continue
        counts[m.group(1)] += 1
        if m.group(1) in ("clone", "clone3", "fork", "vfork"):
            r = child_re.search(line)
            if r and int(r.group(1)) > 0:
                walk((key[0], int(r.group(2) or r.group(1))), 0)
for key, lines in lines_of.items():
    for i, line in enumerate(lines):
        if " seccomp(SECCOMP_SET_MODE_FILTER" in line and line.rstrip().endswith("= 0"):
            walk(key, i + 1)
            break
for name, n in sorted(counts.items()):
    print(name, n)
