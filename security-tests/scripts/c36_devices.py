"""Catalog C36: look at /dev, open terminal and kernel devices, mknod.

Prints "reached", "dev NAME TYPE MAJOR:MINOR" for every entry of /dev (recursively, without
following links), then "open PATH ok|errno N" and "mknod ok|errno N".
"""
import os
import stat


def main():
    print("reached", flush=True)
    for root, dirs, files in os.walk("/dev"):
        for name in sorted(dirs + files):
            path = os.path.join(root, name)
            st = os.lstat(path)
            kind = ("chr" if stat.S_ISCHR(st.st_mode) else "blk" if stat.S_ISBLK(st.st_mode)
                    else "dir" if stat.S_ISDIR(st.st_mode) else "lnk"
                    if stat.S_ISLNK(st.st_mode) else "other")
            print("dev", path, kind, f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}")
    for path in ("/dev/tty", "/dev/console", "/dev/mem", "/dev/kmsg", "/dev/sda", "/dev/vda",
                 "/dev/fuse", "/dev/net/tun", "/dev/ptmx", "/dev/tty0"):
        try:
            os.close(os.open(path, os.O_RDWR | os.O_NOCTTY))
            print("open", path, "ok")
        except OSError as e:
            print("open", path, "errno", e.errno)
    for where in ("/tmp/mem", "/env/mem"):
        try:
            os.mknod(where, 0o600 | stat.S_IFCHR, os.makedev(1, 1))
            print("mknod", where, "ok")
        except OSError as e:
            print("mknod", where, "errno", e.errno)


if __name__ == "__main__":
    main()
