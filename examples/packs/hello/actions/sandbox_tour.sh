#!/bin/sh
# Prints what an action sees of its sandbox. Runs with /bin/sh only (no other tools needed).
echo "== who am I"
echo "uid=$(id -u) gid=$(id -g) user=$(id -un) hostname=$(hostname)"
echo "uid_map (inside host count): $(cat /proc/self/uid_map)"
echo "== privileges"
grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status
echo "== filesystem"
echo "root: $(ls / | tr '\n' ' ')"
echo "cwd: $(pwd)"
if touch /pack/.probe 2>/dev/null; then echo "/pack: WRITABLE (unexpected)"; else echo "/pack: read-only"; fi
echo "/tmp entries: $(ls -A /tmp | wc -l) (private tmpfs)"
for p in /root /home /var /opt; do [ -e "$p" ] && echo "$p: visible" || echo "$p: absent"; done
echo "== processes (pid namespace)"
for d in /proc/[0-9]*; do printf '%s ' "${d#/proc/}"; done; echo
echo "== network"
echo "interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "== open fds"
ls /proc/$$/fd | tr '\n' ' '; echo
echo "== environment"
env | sort
