# Catalog G61: walk everything the sandbox can see (except /proc) and list sockets and FIFOs the
# action did not create. Prints "walked N" and one "special TYPE PATH" line per find.
import os
import stat

seen = 0
for root, dirs, files in os.walk("/", topdown=True, followlinks=False):
    if root == "/":
        dirs[:] = [d for d in dirs if d != "proc"]
    for name in dirs + files:
        path = os.path.join(root, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        seen += 1
        if stat.S_ISSOCK(st.st_mode):
            print("special socket", path, flush=True)
        elif stat.S_ISFIFO(st.st_mode):
            print("special fifo", path, flush=True)
print("walked", seen, flush=True)
