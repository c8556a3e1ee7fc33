"""Catalog A04: try to create a nested user namespace from Python inside the sandbox.

Prints, one per line: "ns-before INODE", "reached", then "PermissionError ERRNO" (blocked),
"OSError ERRNO" (failed some other way) or "unshared" (the attack worked), then "ns-after INODE".
"""
import ctypes
import os
import sys

CLONE_NEWUSER = getattr(os, "CLONE_NEWUSER", 0x10000000)


def unshare(flags):
    if hasattr(os, "unshare"):  # Python >= 3.12
        os.unshare(flags)
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(ctypes.c_int(flags)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))  # EPERM becomes PermissionError


def main():
    print("ns-before", os.stat("/proc/self/ns/user").st_ino, flush=True)
    print("reached", flush=True)
    try:
        unshare(CLONE_NEWUSER)
    except PermissionError as e:
        print("PermissionError", e.errno, flush=True)
    except OSError as e:
        print("OSError", e.errno, flush=True)
    else:
        print("unshared", flush=True)
    print("ns-after", os.stat("/proc/self/ns/user").st_ino, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
