"""Catalog A03: run by an interpreter copy that carries file capabilities (cap_net_raw+ep).

Prints the Cap*/NoNewPrivs/Seccomp lines of /proc/self/status, "reached", then
"socket ok" or "socket errno N" for socket(AF_PACKET, SOCK_RAW).
"""
import socket

for line in open("/proc/self/status"):
    if line.startswith(("Cap", "NoNewPrivs:", "Seccomp:")):
        print(line.strip())
print("reached", flush=True)
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    s.close()
    print("socket ok")
except OSError as e:
    print("socket errno", e.errno)
