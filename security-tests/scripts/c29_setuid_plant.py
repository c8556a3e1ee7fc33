"""Catalog C29: plant setuid/setgid files and a security.capability xattr in /env.

Usage: c29_setuid_plant.py plant|run
plant: copies /usr/bin/id to /env/suid-id, chmod 06755, tries setxattr security.capability
(cap_setuid+ep, v2 format). run: executes /env/suid-id -u and -g. Prints "reached" first.
"""
import os
import shutil
import struct
import subprocess
import sys


def main():
    print("reached", flush=True)
    path = "/env/suid-id"
    if sys.argv[1] == "plant":
        shutil.copy("/usr/bin/id", path)
        for mode in (0o6755, 0o4755):
            try:
                os.chmod(path, mode)
                print("chmod", oct(mode), "ok")
            except OSError as e:
                print("chmod", oct(mode), "errno", e.errno)
        # VFS_CAP_REVISION_2 | effective, permitted = CAP_SETUID (7), inheritable = 0.
        blob = struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0)
        try:
            os.setxattr(path, "security.capability", blob)
            print("setxattr ok")
        except OSError as e:
            print("setxattr errno", e.errno)
        print("mode", oct(os.stat(path).st_mode))
    else:
        for flag in ("-u", "-g"):
            out = subprocess.run([path, flag], capture_output=True, text=True)
            print("id" + flag, out.stdout.strip(), out.returncode)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
