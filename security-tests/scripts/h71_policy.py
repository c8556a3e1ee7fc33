# Catalog H71: the sandbox writes its own policy. Reads {"targets": [PATH...]} on stdin, tries to
# create/overwrite each path, and (unless "plant" is false) plants fake ready markers in /env. Then prints the confinement
# it runs under ("policy KEY VALUE" lines from /proc/self/status and /proc/self/limits), so two
# runs can be compared.
import json
import os
import sys

params = json.loads(sys.stdin.readline() or "{}")
print("reached", flush=True)
for path in params.get("targets", []):
    try:
        with open(path, "w") as f:
            f.write('runtime = "python"\ndigest = "forged"\n')
        print("wrote", path, flush=True)
    except OSError as e:
        print("target", path, "errno", e.errno, flush=True)
for name in ((".python.ready", ".ready", ".packvisor-ready", ".deps_installed")
             if params.get("plant", True) else ()):
    try:
        with open(os.path.join("/env", name), "w") as f:
            f.write('{"digest": "forged", "runtime": "python"}\n')
    except OSError as e:
        print("env marker", name, "errno", e.errno, flush=True)
with open("/proc/self/status") as f:
    for line in f:
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups", "NoNewPrivs", "Seccomp", "Seccomp_filters", "CapInh",
                   "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            print("policy", key, " ".join(value.split()), flush=True)
with open("/proc/self/limits") as f:
    for line in f.readlines()[1:]:
        print("policy limit", " ".join(line.split()), flush=True)
with open("/proc/self/mountinfo") as f:
    for line in f:
        fields = line.split()
        print("policy mount", fields[4], fields[5], flush=True)
print("interpreter", sys.executable, flush=True)
