#!/usr/bin/python3
"""Derives the set of x86_64 syscalls that Docker's default seccomp profile blocks.

Owns security-tests/data/docker-default-blocked.txt: that file is this script's output, checked in
so that the tests need no network. Regenerate it when moving to a newer moby profile:

  scripts/docker-seccomp-blocked.py DEFAULT_JSON MOBY_COMMIT > security-tests/data/docker-default-blocked.txt

DEFAULT_JSON is moby's profiles/seccomp/default.json at MOBY_COMMIT. The x86_64 syscall table is
libseccomp's (the library packvisor compiles its policy with), read through ctypes.

Model of the profile (what runc does with it): a rule applies on x86_64 ("amd64") when its
`includes` are met (arches lists amd64 or is empty; every listed cap is one of Docker's default
capabilities; minKernel <= the running kernel) and its `excludes` are not (arches does not list
amd64; no listed cap is a default capability). A syscall is allowed unconditionally when an
applying ALLOW rule without `args` names it; it is blocked under a condition when only applying
ALLOW rules with `args` name it (blocked unless one of them matches); every other syscall of the
table is blocked with the errno of an applying ERRNO rule, else with the profile's default errno.
"""
import ctypes
import json
import os
import sys

# Docker's default capability set (moby oci/caps/defaults.go).
DEFAULT_CAPS = {
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}
ARCH = "amd64"
SCMP_ARCH_X86_64 = 0xC000003E
ERRNO_NAMES = {1: "EPERM", 38: "ENOSYS"}


def kernel_version():
    release = os.uname().release.split("-")[0].split(".")
    return tuple(int(part) for part in release[:2])


def rule_applies(rule):
    inc = rule.get("includes") or {}
    exc = rule.get("excludes") or {}
    if inc.get("arches") and ARCH not in inc["arches"]:
        return False
    if any(cap not in DEFAULT_CAPS for cap in inc.get("caps") or []):
        return False
    if inc.get("minKernel"):
        wanted = tuple(int(part) for part in inc["minKernel"].split(".")[:2])
        if kernel_version() < wanted:
            return False
    if ARCH in (exc.get("arches") or []):
        return False
    if any(cap in DEFAULT_CAPS for cap in exc.get("caps") or []):
        return False
    return True


def condition(args_list):
    """One condition string for the ALLOW rules with args of one syscall (an OR of rules)."""
    values = []
    masks = set()
    for args in args_list:
        if len(args) != 1 or args[0]["index"] != 0:
            raise SystemExit(f"unsupported args {args}: extend this script and the test")
        arg = args[0]
        if arg["op"] == "SCMP_CMP_EQ":
            values.append(arg["value"])
        elif arg["op"] == "SCMP_CMP_MASKED_EQ" and arg.get("valueTwo", 0) == 0:
            masks.add(arg["value"])
        else:
            raise SystemExit(f"unsupported op {arg}: extend this script and the test")
    if values and not masks:
        return "unless-arg0-in:" + ",".join(hex(v) for v in sorted(values))
    if masks and not values and len(masks) == 1:
        return "unless-arg0-masked-zero:" + hex(masks.pop())
    raise SystemExit(f"unsupported mix of conditions {args_list}")


def x86_64_table():
    lib = ctypes.CDLL("libseccomp.so.2")
    lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_char_p
    lib.seccomp_syscall_resolve_num_arch.argtypes = [ctypes.c_uint32, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    version = ".".join(str(v) for v in lib.seccomp_version().contents)
    table = {}
    for nr in range(0, 1024):
        name = lib.seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr)
        if name:
            table[name.decode()] = nr
    return table, version


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: docker-seccomp-blocked.py DEFAULT_JSON MOBY_COMMIT")
    with open(sys.argv[1], encoding="utf-8") as f:
        profile = json.load(f)
    default_errno = profile.get("defaultErrnoRet", 1)
    if profile["defaultAction"] != "SCMP_ACT_ERRNO":
        raise SystemExit("the profile is no longer an allow list")
    allowed = set()
    conditional = {}
    errnos = {}
    for rule in profile["syscalls"]:
        if not rule_applies(rule):
            continue
        for name in rule["names"]:
            if rule["action"] == "SCMP_ACT_ALLOW":
                if rule.get("args"):
                    conditional.setdefault(name, []).append(rule["args"])
                else:
                    allowed.add(name)
            elif rule["action"] == "SCMP_ACT_ERRNO":
                errnos[name] = rule.get("errnoRet", default_errno)
            else:
                raise SystemExit(f"unsupported action {rule['action']}")
    table, version = x86_64_table()
    print("# Syscalls that Docker's default seccomp profile blocks on x86_64, with Docker's default")
    print("# capabilities (" + " ".join(sorted(c[4:] for c in DEFAULT_CAPS)) + ").")
    print("# source: moby/moby profiles/seccomp/default.json @ " + sys.argv[2])
    print(f"# syscall table: libseccomp {version}, SCMP_ARCH_X86_64, {len(table)} syscalls, "
          f"numbers 0..{max(table.values())}; minKernel rules taken as met (kernel >= 4.8)")
    print("# generated by scripts/docker-seccomp-blocked.py; regenerate it, do not edit it")
    print("# columns: name number errno condition")
    print("#   condition '-': blocked whatever the arguments")
    print("#   'unless-arg0-in:V,...': blocked unless arg0 (all 64 bits) equals one of the values")
    print("#   'unless-arg0-masked-zero:M': blocked unless (arg0 & M) == 0")
    for name, nr in sorted(table.items(), key=lambda item: item[1]):
        if name in allowed:
            continue
        err = ERRNO_NAMES[errnos.get(name, default_errno)]
        cond = condition(conditional[name]) if name in conditional else "-"
        print(f"{name} {nr} {err} {cond}")


if __name__ == "__main__":
    main()
