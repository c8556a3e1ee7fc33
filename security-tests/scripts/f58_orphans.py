# Catalog F58: the action must not be PID 1. Makes COUNT orphans (each child forks a grandchild
# and exits at once, so the grandchild is reparented to PID 1), then counts zombies, then sends
# itself SIGTERM (which a PID 1 without a handler would ignore). Usage: f58_orphans.py COUNT
import os
import signal
import sys
import time

count = int(sys.argv[1])
print("self pid", os.getpid(), "ppid", os.getppid(), flush=True)
try:
    with open("/proc/1/comm") as f:
        print("pid1 comm", f.read().strip(), flush=True)
except OSError as e:
    print("pid1 comm unreadable", e.errno, flush=True)
made = 0
failures = 0
while made < count and failures < 2000:
    try:
        pid = os.fork()
    except OSError:
        failures += 1
        time.sleep(0.01)
        continue
    if pid == 0:
        try:
            if os.fork() == 0:
                os._exit(0)
        except OSError:
            pass
        os._exit(0)
    os.waitpid(pid, 0)
    made += 1
print("orphans made", made, flush=True)


def zombies():
    found = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2] == "Z":
            found += 1
    return found


time.sleep(0.3)
print("zombies", zombies(), flush=True)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(5)
print("still alive after SIGTERM to self", flush=True)
