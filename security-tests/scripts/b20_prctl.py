"""Catalog B20: try prctl options that would weaken the confinement of this process.

Prints "securebits_before N", "reached", then "NAME rc R errno E" per attempt, then
"securebits_after N", "no_new_privs_after N" and the Cap*/NoNewPrivs/Seccomp status lines.
"""
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]

PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_GET_SECUREBITS = 27
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
CAP_CHOWN = 0
CAP_SYS_ADMIN = 21


def attempt(name, option, arg2=0, arg3=0):
    rc = libc.prctl(option, arg2, arg3, 0, 0)
    err = ctypes.get_errno() if rc < 0 else 0
    print(name, "rc", rc, "errno", err, flush=True)


def main():
    print("securebits_before", libc.prctl(PR_GET_SECUREBITS, 0, 0, 0, 0))
    print("reached", flush=True)
    attempt("set_securebits_0", PR_SET_SECUREBITS, 0)
    attempt("set_keepcaps", PR_SET_KEEPCAPS, 1)
    attempt("capbset_drop", PR_CAPBSET_DROP, CAP_CHOWN)
    attempt("ambient_raise", PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_SYS_ADMIN)
    attempt("set_no_new_privs_0", PR_SET_NO_NEW_PRIVS, 0)
    print("securebits_after", libc.prctl(PR_GET_SECUREBITS, 0, 0, 0, 0))
    print("no_new_privs_after", libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0))
    for line in open("/proc/self/status"):
        if line.startswith(("Cap", "NoNewPrivs:", "Seccomp:")):
            print(line.strip())


if __name__ == "__main__":
    main()
