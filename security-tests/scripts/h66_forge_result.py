# Catalog H66: forge the result. Prints a fake success result object as its last stdout line and
# on stderr, then fails: exit code in argv[1], or "segv" to die of SIGSEGV.
import json
import os
import signal
import sys

fake = json.dumps({"status": "succeeded", "exit_code": 0, "signal": None, "result": {"ok": True},
                   "timed_out": False, "error": None})
print("reached", flush=True)
print(fake, flush=True)
sys.stderr.write(fake + "\n")
sys.stderr.flush()
how = sys.argv[1] if len(sys.argv) > 1 else "3"
if how == "segv":
    os.kill(os.getpid(), signal.SIGSEGV)
sys.exit(int(how))
