"""Catalog D38-D42: a hostile action that receives a secret on stdin and probes what it can.

Reads one JSON line on stdin: {"token": SECRET, "mode": MODE, "needle": TEXT, "peers": N}.
It never prints the secret itself; it prints "reached" once the secret has arrived, then:
  hold:   "in_own_environ B", "in_own_cmdline B", "in_visible_procs B" (the token in any
          visible /proc/*/{environ,cmdline}), then sleeps ~1 s so the host can sample.
  leave:  writes the token to /tmp and /dev/shm (never /env), a SysV shm segment and a POSIX
          queue, and starts a detached `sleep 30 TOKEN`; then exits at once.
  search: looks for NEEDLE in every file under /tmp, /env and /dev/shm, in the cmdline and
          environ of every visible process, in SysV shm keys 0..1024 and the shm/mq objects
          "leave" makes; prints "found WHERE" per hit and "searched N" at the end.
  init:   tries /proc/1/{environ,mem,maps,fd,root,cwd} and /proc/self/environ; "OP ok|errno N".
  crash:  prints RLIMIT_CORE, tries to raise it, makes itself dumpable, chdir /env, SIGSEGV.
  stderr: prints the secret to stdout and stderr (the action's own output) and exits 1.
  peers:  keeps its secret in /dev/shm, SysV shm (key 4242+i) and an abstract socket, then for
          ~1 s reads every channel it can reach; prints "saw <content>" for what it reads.
"""
import ctypes
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import zlib

libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.mq_open.restype = ctypes.c_int
IPC_CREAT = 0o1000


def visible_pids():
    return [p for p in os.listdir("/proc") if p.isdigit()]


def read(path, limit=1 << 20):
    try:
        with open(path, "rb") as f:
            return f.read(limit)
    except OSError:
        return b""


def shm_key(token):
    return zlib.crc32(b"pv-d41") & 0x7FFFFFFF


def hold(token):
    t = token.encode()
    print("in_own_environ", t in read("/proc/self/environ"))
    print("in_own_cmdline", t in read("/proc/self/cmdline"))
    hit = any(t in read(f"/proc/{p}/environ") or t in read(f"/proc/{p}/cmdline")
              for p in visible_pids())
    print("in_visible_procs", hit, flush=True)
    time.sleep(1.0)


def leave(token):
    for d in ("/tmp", "/dev/shm"):
        with open(f"{d}/pv-secret", "w") as f:
            f.write(token)
        print("wrote", d)
    shm = libc.shmget(shm_key(token), 4096, IPC_CREAT | 0o666)
    if shm >= 0:
        addr = libc.shmat(shm, None, 0)
        ctypes.memmove(addr, token.encode(), len(token))
        print("shm", shm)
    mq = libc.mq_open(b"/pv-d41", os.O_RDWR | os.O_CREAT, 0o600, None)
    print("mq", mq)
    subprocess.Popen(["/bin/sleep", "30", token], start_new_session=True,
                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL)
    print("left", flush=True)


def search(needle):
    n = needle.encode()
    searched = 0
    for top in ("/tmp", "/env", "/dev/shm"):
        for root, _, files in os.walk(top):
            for name in files:
                path = os.path.join(root, name)
                searched += 1
                if n in name.encode() or n in read(path):
                    print("found", path)
    for p in visible_pids():
        for what in ("cmdline", "environ"):
            searched += 1
            if n in read(f"/proc/{p}/{what}"):
                print("found", f"/proc/{p}/{what}")
    for key in list(range(0, 1025)) + [shm_key(needle)]:
        shm = libc.shmget(key, 0, 0)
        if shm >= 0:
            print("found shm key", key)
    if libc.mq_open(b"/pv-d41", os.O_RDONLY, 0, None) >= 0:
        print("found mqueue")
    print("searched", searched, flush=True)


def init_memory():
    for what in ("environ", "mem", "maps", "fd", "root", "cwd", "cmdline"):
        path = f"/proc/1/{what}"
        try:
            if what in ("fd", "root", "cwd"):
                os.listdir(path)
            else:
                with open(path, "rb") as f:
                    f.read(4096)
            print("init", what, "ok")
        except OSError as e:
            print("init", what, "errno", e.errno)
    try:
        print("self environ", "ok" if read("/proc/self/environ") else "empty")
    except OSError as e:
        print("self environ errno", e.errno)
    sys.stdout.flush()


def crash():
    print("rlimit_core", *resource.getrlimit(resource.RLIMIT_CORE))
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        print("raise ok")
    except (ValueError, OSError) as e:
        print("raise failed", type(e).__name__)
    libc.prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE
    os.chdir("/env")
    print("crashing", flush=True)
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)


def peers(token, index, count):
    with open(f"/dev/shm/peer-{index}", "w") as f:
        f.write(token)
    shm = libc.shmget(4242 + index, 4096, IPC_CREAT | 0o666)
    if shm >= 0:
        ctypes.memmove(libc.shmat(shm, None, 0), token.encode(), len(token))
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(f"\0pv-d42-{index}")
    server.listen(8)
    server.settimeout(0.05)
    print("reached-peers", flush=True)
    deadline = time.time() + 1.0
    while time.time() < deadline:
        for p in visible_pids():
            for what in ("cmdline", "environ"):
                data = read(f"/proc/{p}/{what}")
                if data:
                    print("saw", data.decode("utf-8", "replace").replace("\0", " "))
        for name in os.listdir("/dev/shm"):
            print("saw", read(f"/dev/shm/{name}").decode("utf-8", "replace"))
        for other in range(count):
            seg = libc.shmget(4242 + other, 0, 0)
            if seg >= 0 and other != index:
                addr = libc.shmat(seg, None, 0)
                print("saw", ctypes.string_at(addr, 64).decode("utf-8", "replace"))
            if other == index:
                continue
            try:
                c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                c.connect(f"\0pv-d42-{other}")
                print("saw connected", other)
                c.close()
            except OSError:
                pass
        try:
            server.accept()[0].close()
        except OSError:
            pass
        time.sleep(0.1)
    sys.stdout.flush()


def main():
    inputs = json.loads(sys.stdin.readline())
    token = inputs["token"]
    mode = inputs.get("mode", "hold")
    print("reached", len(token), flush=True)
    if mode == "hold":
        hold(token)
    elif mode == "leave":
        leave(token)
    elif mode == "search":
        search(inputs["needle"])
    elif mode == "init":
        init_memory()
    elif mode == "crash":
        crash()
    elif mode == "stderr":
        print("stdout", token)
        print("stderr", token, file=sys.stderr)
        sys.exit(1)
    elif mode == "peers":
        peers(token, int(inputs["index"]), int(inputs["count"]))


if __name__ == "__main__":
    main()
