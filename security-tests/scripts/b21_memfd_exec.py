"""Catalog B21: copy a binary into a memfd and execute it from there (fexecve).

packvisor does not forbid memfd_create: the exec works, but the new image keeps the sandbox
(no capabilities, no_new_privs, the seccomp filter). Prints "reached", then execs
`cat /proc/self/status` from the memfd; "exec errno N" if the exec itself failed.
"""
import os


def main():
    data = open(os.path.realpath("/bin/cat"), "rb").read()
    fd = os.memfd_create("pv-b21", 0)
    os.write(fd, data)
    print("memfd", fd)
    print("reached", flush=True)
    try:
        os.execve(fd, ["memfd-cat", "/proc/self/status"], {})
    except OSError as e:
        print("exec errno", e.errno, flush=True)


if __name__ == "__main__":
    main()
