"""Catalog C35: write to /proc and /sys, read kernel memory, lower oom_score_adj.

Prints "reached", then "OP ok" / "OP errno N" lines, "oom_score_adj N", "pids P..." and
"sys LIST ..." or "sys errno N".
"""
import os


def attempt(name, fn):
    try:
        fn()
        print(name, "ok", flush=True)
    except OSError as e:
        print(name, "errno", e.errno, flush=True)


def write(path, data):
    with open(path, "w") as f:
        f.write(data)


def read(path):
    with open(path, "rb") as f:
        f.read(4096)


def main():
    print("reached", flush=True)
    attempt("core_pattern", lambda: write("/proc/sys/kernel/core_pattern", "|/tmp/x"))
    attempt("hostname_sysctl", lambda: write("/proc/sys/kernel/hostname", "x"))
    attempt("sysrq_trigger", lambda: write("/proc/sysrq-trigger", "h"))
    attempt("kcore", lambda: read("/proc/kcore"))
    attempt("kmsg", lambda: read("/proc/kmsg"))
    current = int(open("/proc/self/oom_score_adj").read())
    print("oom_score_adj", current)
    attempt("oom_lower", lambda: write("/proc/self/oom_score_adj", str(current - 100)))
    nonzero = 0
    try:
        for line in open("/proc/kallsyms"):
            if int(line.split()[0], 16) != 0:
                nonzero += 1
        print("kallsyms_nonzero", nonzero)
    except OSError as e:
        print("kallsyms errno", e.errno)
    print("pids", " ".join(sorted(p for p in os.listdir("/proc") if p.isdigit())))
    try:
        print("sys LIST", " ".join(os.listdir("/sys")))
    except OSError as e:
        print("sys errno", e.errno)
    attempt("sys_write", lambda: write("/sys/kernel/uevent_helper", "/tmp/x"))


if __name__ == "__main__":
    main()
