"""Catalog C23: try every way of changing the directory TARGET (the pack, inside the sandbox).

Usage: c23_pack_write.py TARGET [remount]
TARGET must hold victim.txt and victim2.txt. Prints "reached", then "OP ok" or "OP errno N" for:
create truncate append chmod utime setxattr link symlink mkdir mkfifo rename unlink
and, with "remount", remount_rw (mount(MS_REMOUNT|MS_BIND) of TARGET without MS_RDONLY).
"""
import ctypes
import os
import sys

MS_REMOUNT = 32
MS_BIND = 4096


def attempt(name, fn):
    try:
        fn()
        print(name, "ok", flush=True)
    except OSError as e:
        print(name, "errno", e.errno, flush=True)


def remount(target):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.mount(None, target.encode(), None, ctypes.c_ulong(MS_REMOUNT | MS_BIND), None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def main():
    t = sys.argv[1]
    victim = os.path.join(t, "victim.txt")
    print("reached", flush=True)
    attempt("create", lambda: os.close(os.open(t + "/new.txt", os.O_CREAT | os.O_WRONLY, 0o644)))
    attempt("truncate", lambda: os.close(os.open(victim, os.O_WRONLY | os.O_TRUNC)))
    attempt("append", lambda: os.close(os.open(victim, os.O_WRONLY | os.O_APPEND)))
    attempt("chmod", lambda: os.chmod(victim, 0o777))
    attempt("utime", lambda: os.utime(victim, (0, 0)))
    attempt("setxattr", lambda: os.setxattr(victim, "user.pv", b"x"))
    attempt("link", lambda: os.link(victim, t + "/hard.txt"))
    attempt("symlink", lambda: os.symlink("/etc/passwd", t + "/sym"))
    attempt("mkdir", lambda: os.mkdir(t + "/d"))
    attempt("mkfifo", lambda: os.mkfifo(t + "/fifo"))
    attempt("rename", lambda: os.rename(victim, t + "/renamed.txt"))
    attempt("unlink", lambda: os.unlink(t + "/victim2.txt"))
    if len(sys.argv) > 2 and sys.argv[2] == "remount":
        attempt("remount_rw", lambda: remount(t))


if __name__ == "__main__":
    main()
