"""Catalog C31: leave data in every writable place, or look for what an earlier run left.

Usage: c31_persist.py write|check TAG
write: lists the writable directories ("writable DIR"; /proc excluded), writes TAG files in
/tmp, /dev/shm and /env, creates a SysV shm segment and a POSIX message queue named after TAG.
check: prints "found WHERE" for every TAG file or IPC object it can still see, and "shm ..."
lines from /proc/sysvipc/shm. Prints "reached" first and "done" last.
"""
import ctypes
import os
import subprocess
import sys
import zlib

libc = ctypes.CDLL(None, use_errno=True)
IPC_CREAT = 0o1000
O_RDWR, O_CREAT = 2, 0o100


def main():
    mode, tag = sys.argv[1], sys.argv[2]
    key = zlib.crc32(tag.encode()) & 0x7FFFFFFF
    mq_name = ("/" + tag).encode()
    libc.mq_open.restype = ctypes.c_int
    print("reached", flush=True)
    if mode == "write":
        # The whole tree except /proc, and /usr below its first two levels (a read-only bind of
        # the host's /usr: walking all of it would take seconds).
        found = subprocess.run(["find", "/", "-path", "/proc", "-prune", "-o", "-path",
                                "/usr/*/*", "-prune", "-o", "-type", "d", "-writable",
                                "-print"], capture_output=True, text=True)
        for line in found.stdout.splitlines():
            print("writable", line)
        for d in ("/tmp", "/dev/shm", "/env"):
            try:
                with open(f"{d}/{tag}", "w") as f:
                    f.write(tag)
                print("wrote", d)
            except OSError as e:
                print("write", d, "errno", e.errno)
        shm = libc.shmget(key, 4096, IPC_CREAT | 0o600)
        print("shmget", shm, ctypes.get_errno() if shm < 0 else 0)
        mq = libc.mq_open(mq_name, O_RDWR | O_CREAT, 0o600, None)
        print("mq_open", mq, ctypes.get_errno() if mq < 0 else 0)
    else:
        for d in ("/tmp", "/dev/shm", "/env", "/var/tmp", "/run"):
            if os.path.exists(f"{d}/{tag}"):
                print("found", d)
        if libc.shmget(key, 0, 0) >= 0:
            print("found shm")
        if libc.mq_open(mq_name, O_RDWR, 0, None) >= 0:
            print("found mqueue")
        for line in open("/proc/sysvipc/shm").read().splitlines()[1:]:
            print("shm", line)
    print("done", flush=True)


if __name__ == "__main__":
    main()
