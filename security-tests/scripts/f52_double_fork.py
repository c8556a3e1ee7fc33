# Catalog F52: double fork + setsid, the grandchild ignores HUP/TERM and writes a heartbeat,
# the parent exits 0 as soon as the grandchild has started. Usage: f52_double_fork.py HEARTBEAT
# MARKER (MARKER only puts a recognisable string on the command line of every process).
import os
import signal
import sys
import time

heartbeat = sys.argv[1]
r, w = os.pipe()
if os.fork() == 0:
    os.close(r)
    os.setsid()
    if os.fork() == 0:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_IGN)
        with open(heartbeat, "a") as f:
            f.write("x")
        os.write(w, ("grandchild pid=%d sid=%d pgid=%d\n" %
                     (os.getpid(), os.getsid(0), os.getpgid(0))).encode())
        os.close(w)
        while True:
            try:
                with open(heartbeat, "a") as f:
                    f.write("x")
            except OSError:
                pass
            time.sleep(0.02)
    os._exit(0)
os.close(w)
line = os.read(r, 200).decode()
print("parent pid=%d sid=%d" % (os.getpid(), os.getsid(0)))
print(line, end="", flush=True)
sys.exit(0)
