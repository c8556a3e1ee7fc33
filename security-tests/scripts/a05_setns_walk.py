"""Catalog A05: walk /proc/*/ns/* and try setns() on every namespace file that opens.

Usage: a05_setns_walk.py [all|self]   ("self": only /proc/self/ns/{uts,ipc,net}; host control)
Prints "self PID", "pids P...", "ppid PID PPID" lines, then "reached", then per target
"open PATH errno N" or "setns PATH errno N" / "setns PATH JOINED", then "attempts N", "joined N".
"""
import ctypes
import os
import sys

libc = ctypes.CDLL(None, use_errno=True)


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    print("self", os.getpid())
    print("pids", " ".join(str(p) for p in pids))
    for pid in pids:
        try:
            stat = open(f"/proc/{pid}/stat").read()
            print("ppid", pid, stat[stat.rfind(")") + 2:].split()[1])
        except OSError as e:
            print("ppid", pid, "errno", e.errno)
    print("reached", flush=True)
    if mode == "self":
        targets = [f"/proc/self/ns/{n}" for n in ("uts", "ipc", "net")]
    else:
        targets = []
        for pid in ["self"] + [str(p) for p in pids]:
            d = f"/proc/{pid}/ns"
            try:
                targets += [f"{d}/{n}" for n in sorted(os.listdir(d))]
            except OSError as e:
                print("open", d, "errno", e.errno)
    attempts = joined = 0
    for path in targets:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            print("open", path, "errno", e.errno)
            continue
        attempts += 1
        rc = libc.setns(fd, 0)
        err = ctypes.get_errno()
        os.close(fd)
        if rc == 0:
            joined += 1
            print("setns", path, "JOINED")
        else:
            print("setns", path, "errno", err)
    print("attempts", attempts)
    print("joined", joined, flush=True)


if __name__ == "__main__":
    main()
