"""Catalog C25: look for other packs' environments, the envs root and the supervisor's state.

Usage: c25_snoop.py PATH...  (or no arguments and one JSON line {"paths": [...]} on stdin, as
a packvisor action). Each PATH is tried as given, through /proc/1/root, /proc/self/root
and /proc/self/root/../.. . Prints "reached", then "try PATH errno N" or "try PATH LIST names..."
or "try PATH READ <content>"; then walks the whole tree (not /proc, /sys, /usr) printing every
name ("walk PATH") and the content of every small readable file ("file PATH <content>").
"""
import json
import os
import stat
import sys


def show(path):
    try:
        if os.path.isdir(path):
            print("try", path, "LIST", " ".join(sorted(os.listdir(path))))
        else:
            with open(path, "rb") as f:
                print("try", path, "READ", f.read(65536).decode("utf-8", "replace"))
    except OSError as e:
        print("try", path, "errno", e.errno)


def main():
    paths = sys.argv[1:] or json.loads(sys.stdin.readline())["paths"]
    print("reached", flush=True)
    for path in paths:
        for prefix in ("", "/proc/1/root", "/proc/self/root", "/proc/self/root/../.."):
            show(prefix + path)
    for root, dirs, files in os.walk("/", onerror=lambda e: print("walk-error", e.filename,
                                                                  e.errno)):
        if root == "/":
            dirs[:] = [d for d in dirs if d not in ("proc", "sys", "usr")]
        for name in dirs + files:
            print("walk", os.path.join(root, name))
        for name in files:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > 65536:
                    continue  # devices (/dev/zero), FIFOs, links, big files
                with open(path, "rb") as f:
                    print("file", path, f.read().decode("utf-8", "replace"))
            except OSError as e:
                print("file", path, "errno", e.errno)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
