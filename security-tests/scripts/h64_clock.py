# Catalog H64: set the clock, or fake time in a time namespace. Each call asks for the current
# time (harmless if it ever went through). Prints "NAME errno E" (E = 0 when the call worked).
import ctypes
import os

libc = ctypes.CDLL(None, use_errno=True)


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class Timeval(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_usec", ctypes.c_long)]


def report(name, rc):
    print(name, "errno", 0 if rc >= 0 else ctypes.get_errno(), flush=True)


print("reached", flush=True)
now = Timespec()
libc.clock_gettime(0, ctypes.byref(now))
report("clock_settime", libc.clock_settime(0, ctypes.byref(now)))
tv = Timeval(now.tv_sec, now.tv_nsec // 1000)
report("settimeofday", libc.settimeofday(ctypes.byref(tv), None))
buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: a query
report("adjtimex", libc.adjtimex(buf))
report("clock_adjtime", libc.clock_adjtime(0, buf))
report("unshare_newtime", libc.unshare(0x80))
