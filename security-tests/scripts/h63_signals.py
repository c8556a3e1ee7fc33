# Catalog H63: signal or kill the supervisor from inside. Usage: h63_signals.py HOST_PID...
# Starts a sandbox sibling, then: kill(getppid(), TERM/KILL), kill(-1, SIGKILL), kill(HOST_PID,
# SIGKILL) for each host pid given, and SIGKILL to every pid number 2..65535 but its own.
# Prints what each call did and whether the sibling died of it.
import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)  # init forwards TERM sent to it to everyone
sibling = os.fork()
if sibling == 0:
    time.sleep(30)
    os._exit(0)
print("reached pid", os.getpid(), "ppid", os.getppid(), "sibling", sibling, flush=True)


def attempt(label, pid, sig):
    try:
        os.kill(pid, sig)
        print(label, "sent", flush=True)
    except OSError as e:
        print(label, "errno", e.errno, flush=True)


attempt("kill-ppid-term", os.getppid(), signal.SIGTERM)
attempt("kill-ppid-kill", os.getppid(), signal.SIGKILL)
attempt("kill-minus-one", -1, signal.SIGKILL)
for host_pid in sys.argv[1:]:
    attempt("kill-host-pid " + host_pid, int(host_pid), signal.SIGKILL)
_, status = os.waitpid(sibling, 0)
print("sibling signal", os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0, flush=True)
reached = 0
for pid in range(2, 65536):
    if pid == os.getpid():
        continue
    try:
        os.kill(pid, signal.SIGKILL)
        reached += 1
    except OSError:
        pass
print("sweep reached", reached, flush=True)
print("survived", flush=True)
