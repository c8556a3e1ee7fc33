"""Catalog C26: replace names in /env (the pack's environment) with symlinks to host files.

Reads one JSON line on stdin: {"canary_file": HOST_PATH, "canary_dir": HOST_PATH,
"break_interpreter": bool}. The host paths do not exist inside the sandbox (dangling links
here); they aim at whatever the supervisor may later do to the env as root on the host.
Prints "reached", then "plant NAME ok" or "plant NAME errno N".
"""
import json
import os
import shutil
import sys


def plant(name, target):
    path = os.path.join("/env", name)
    try:
        if os.path.islink(path) or os.path.isfile(path):
            os.unlink(path)
        elif os.path.isdir(path):
            shutil.rmtree(path)
        os.symlink(target, path)
        print("plant", name, "ok", flush=True)
    except OSError as e:
        print("plant", name, "errno", e.errno, flush=True)


def main():
    inputs = json.loads(sys.stdin.readline())
    f, d = inputs["canary_file"], inputs["canary_dir"]
    print("reached", flush=True)
    for name in ("pyvenv.cfg", ".python.ready", ".python.used", "requirements.txt", "lock",
                 ".lock", "bin/activate", "bin/pip"):
        plant(name, f)
    for name in ("include", "lib2", "share", "bin/sub"):
        plant(name, d)
    if inputs.get("break_interpreter"):
        # Last: this process keeps running from the old inode.
        for name in ("bin/python3", "bin/python", "lib64"):
            plant(name, f if name != "lib64" else d)


if __name__ == "__main__":
    main()
