#!/usr/bin/env bash
# `cmake --install` into a scratch DESTDIR (prefix /usr, as the Debian package): the exact file
# list and modes, no security suite, and the installed binary reading the runtime definitions
# installed beside it ({prefix}/share/packvisor/runtimes) under the ownership rules. Run by ctest
# (tests/CMakeLists.txt) after a build of `all`; usage: scripts/test-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: test-install.sh BUILD_DIR}" && pwd)
source_dir=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mktemp -d /tmp/packvisor-install-test.XXXXXX)
trap 'rm -rf "$dest"' EXIT
fail() { echo "test-install: FAIL: $*" >&2; exit 1; }

DESTDIR="$dest" cmake --install "$build" --prefix /usr >/dev/null
root="$dest/usr"

# Every path with its type and mode; the worker's unit is expected once it is in the tree.
expected=(
  "d755 bin" "f755 bin/packvisor"
  "d755 lib" "d755 lib/systemd" "d755 lib/systemd/system"
  "f644 lib/systemd/system/packvisor.service" "f644 lib/systemd/system/packvisor.socket"
  "d755 share" "d755 share/bash-completion" "d755 share/bash-completion/completions"
  "f644 share/bash-completion/completions/packvisor"
  "d755 share/doc" "d755 share/doc/packvisor" "f644 share/doc/packvisor/packvisor.example.toml"
  "d755 share/man" "d755 share/man/man1" "f644 share/man/man1/packvisor.1"
  "d755 share/packvisor" "d755 share/packvisor/runtimes"
)
[[ -e "$source_dir/config/packvisor-worker.service" ]] &&
  expected+=("f644 lib/systemd/system/packvisor-worker.service")
for toml in "$source_dir"/config/runtimes/*.toml; do
  expected+=("f644 share/packvisor/runtimes/$(basename "$toml")")
done
# Directories 0755 and files 0644/0755 whatever the umask of the install: CMake sets them.
actual=$(cd "$root" && find . -mindepth 1 -printf '%y%m %P\n' | sed 's/^\([df]\)0*/\1/' | sort)
want=$(printf '%s\n' "${expected[@]}" | sort)
if [[ "$actual" != "$want" ]]; then
  diff <(echo "$want") <(echo "$actual") >&2 || true
  fail "installed files differ from the expected list (< expected, > installed)"
fi
owners=$(find "$root" ! -uid 0 -o ! -gid 0 | head -3)
[[ -z "$owners" || $(id -u) != 0 ]] || fail "not owned by root:root: $owners"
echo "test-install: ok: $(echo "$actual" | wc -l) paths, modes as expected, no security suite"

# The installed binary: runs, and reads {prefix}/share/packvisor/runtimes.
pv=("$root/bin/packvisor" --config "$source_dir/examples/packvisor-demo.toml")
"${pv[@]}" --version >/dev/null || fail "installed packvisor --version"
"${pv[@]}" pack list >/dev/null || fail "installed packvisor pack list"
runtimes="$root/share/packvisor/runtimes"
printf 'name = "broken"\nbogus = 1\n' >"$runtimes/zz-broken.toml"
chmod 0644 "$runtimes/zz-broken.toml"
if out=$("${pv[@]}" pack list 2>&1); then fail "a broken installed definition was not read"; fi
[[ "$out" == *"$runtimes/zz-broken.toml:2: bogus: unknown key"* ]] ||
  fail "the error does not name the installed definition: $out"
rm "$runtimes/zz-broken.toml"
chmod g+w "$runtimes"
if out=$("${pv[@]}" pack list 2>&1); then fail "a group-writable runtimes directory was read"; fi
[[ "$out" == *"$runtimes: writable by group or others"* ]] || fail "unexpected error: $out"
chmod g-w "$runtimes"
"${pv[@]}" pack list >/dev/null || fail "pack list after restoring the directory's mode"
echo "test-install: ok: the installed binary reads $runtimes and refuses it when group-writable"

# The units, as systemd 252 reads them (ExecStart pointed at the installed binary).
if command -v systemd-analyze >/dev/null 2>&1; then
  units="$dest/units"
  mkdir "$units"
  cp "$root"/lib/systemd/system/packvisor* "$units/"
  sed -i "s|/usr/bin/packvisor|$root/bin/packvisor|" "$units"/*.service
  (cd "$units" && systemd-analyze verify --man=no ./*.socket ./*.service) ||
    fail "systemd-analyze verify of the installed units"
  echo "test-install: ok: systemd-analyze verify of $(ls "$units" | tr '\n' ' ')"
else
  echo "test-install: systemd-analyze not found: the units were not verified"
fi
