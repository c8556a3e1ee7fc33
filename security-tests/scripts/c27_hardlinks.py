"""Catalog C27: hard-link files from outside the environment into /env.

Prints "reached", then "link SOURCE ok" or "link SOURCE errno N" for each source given on the
command line (each linked as /env/hl-<n>).
"""
import os
import sys


def main():
    print("reached", flush=True)
    for n, source in enumerate(sys.argv[1:]):
        try:
            os.link(source, f"/env/hl-{n}")
            print("link", source, "ok", flush=True)
        except OSError as e:
            print("link", source, "errno", e.errno, flush=True)


if __name__ == "__main__":
    main()
