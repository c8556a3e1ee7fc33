# Catalog F57: hide CPU use from wait4 accounting. Two burners are double-forked into sessions of
# their own: the main process never waits for them (their parent becomes the sandbox's init), and
# they die with the sandbox, so no wait4 ever returns their rusage. Each burner reports that it
# started, then spins. The main process watches their CPU time in /proc/<pid>/stat until together
# they used TARGET_MS, prints what they used and what its own wait4 accounting saw, and exits 0.
# Usage: f57_hidden_cpu.py TARGET_MS MARKER (MARKER only tags every process's command line).
import os
import resource
import sys
import time

target_ms = int(sys.argv[1])
ticks_per_second = os.sysconf("SC_CLK_TCK")
r, w = os.pipe()
for index in range(2):
    if os.fork() == 0:
        os.close(r)
        os.setsid()
        if os.fork() == 0:
            os.write(w, ("burner %d started pid=%d sid=%d\n" %
                         (index, os.getpid(), os.getsid(0))).encode())
            os.close(w)
            n = 0
            while True:
                n += 1
        os._exit(0)
    os.wait()  # the intermediate child only; the burner is now init's
os.close(w)

lines = b""
while lines.count(b"\n") < 2:
    chunk = os.read(r, 4096)
    if not chunk:
        break
    lines += chunk
text = lines.decode()
print("main pid=%d sid=%d" % (os.getpid(), os.getsid(0)))
print(text, end="", flush=True)
pids = [int(line.split("pid=")[1].split()[0]) for line in text.splitlines()]


def burned_ms():
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total * 1000 // ticks_per_second


deadline = time.monotonic() + 60
while burned_ms() < target_ms and time.monotonic() < deadline:
    time.sleep(0.05)
waited = resource.getrusage(resource.RUSAGE_CHILDREN)
print("burners cpu_ms %d" % burned_ms())
print("wait4 children cpu_ms %d" % int((waited.ru_utime + waited.ru_stime) * 1000), flush=True)
sys.exit(0)
