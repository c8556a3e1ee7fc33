# Catalog G59/G60: connect from inside the sandbox. Usage: g_connect.py TARGET...
# TARGET: tcp4:HOST:PORT | tcp6:HOST:PORT | abstract:NAME | bind-abstract:NAME
# Prints "TARGET connected" or "TARGET errno E" for each.
import errno
import socket
import sys
import time

print("reached", flush=True)
for target in sys.argv[1:]:
    kind, _, rest = target.partition(":")
    try:
        if kind in ("tcp4", "tcp6"):
            host, _, port = rest.rpartition(":")
            family = socket.AF_INET if kind == "tcp4" else socket.AF_INET6
            s = socket.socket(family, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect((host, int(port)))
            s.sendall(b"hello from the sandbox\n")
            print(target, "connected", flush=True)
        elif kind == "abstract":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect("\0" + rest)
            s.sendall(b"hello from the sandbox\n")
            print(target, "connected", flush=True)
        elif kind == "bind-abstract":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind("\0" + rest)
            s.listen(1)
            print(target, "bound", flush=True)
            time.sleep(1.0)
        s.close()
    except socket.timeout:
        print(target, "errno", errno.ETIMEDOUT, flush=True)
    except OSError as e:
        print(target, "errno", e.errno, flush=True)
