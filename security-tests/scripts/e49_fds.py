# Catalog E49: exhaust file descriptors and kernel objects. Usage: e49_fds.py TARGET KIND...
# (KIND: files | eventfd | inotify). For each kind, opens up to TARGET objects, then prints
# "KIND opened N errno E" (E = 0 when all TARGET were opened) and closes them again. With
# "hold SECONDS" as the last two arguments, the objects of the last kind stay open that long
# after "holding" is printed. Arguments "marker=..." are ignored (they tag the process).
import ctypes
import os
import sys
import time

libc = ctypes.CDLL(None, use_errno=True)


def open_one(kind):
    if kind == "files":
        return os.open("/dev/null", os.O_RDONLY)
    if kind == "eventfd":
        return os.eventfd(0)
    if kind == "inotify":
        fd = libc.inotify_init1(0)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        return fd
    raise SystemExit("unknown kind " + kind)


args = [a for a in sys.argv[1:] if not a.startswith("marker=")]
hold = 0.0
if len(args) >= 2 and args[-2] == "hold":
    hold = float(args[-1])
    args = args[:-2]
target = int(args[0])
print("reached", flush=True)
for index, kind in enumerate(args[1:]):
    fds = []
    err = 0
    for _ in range(target):
        try:
            fds.append(open_one(kind))
        except OSError as e:
            err = e.errno
            break
    print(kind, "opened", len(fds), "errno", err, flush=True)
    if hold and index == len(args) - 2:
        print("holding", flush=True)
        time.sleep(hold)
    for fd in fds:
        os.close(fd)
print("done", flush=True)
