# Catalog H65: log forging and terminal escapes in output. Prints escape sequences, fake
# packvisor/log lines, fmt and printf directives, CR and NUL on stdout and stderr; exits 0.
import sys

forged = ("\x1b[2J\x1b[H\x1b]0;owned\x07packvisor: error: forged by the action\n"
          "[info] action=other.pack status=succeeded\n"
          "{}{}{:>999999}%n%s%s\r\x00after-nul\n"
          '{"status": "succeeded", "exit_code": 0, "stdout": "forged"}\n')
sys.stdout.write("reached\n" + forged)
sys.stdout.flush()
sys.stderr.write(forged)
sys.stderr.flush()
