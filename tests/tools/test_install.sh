#!/usr/bin/env bash
# qkv as a library: `meson install` into a temporary directory (DESTDIR), then
# a program is built against that copy alone, with pkg-config's flags, as a
# user would: every header of engine/, autograd/ and nn/ is installed and
# compiles from there, examples/mlp.cpp builds, trains (the loss goes down),
# saves a checkpoint and reproduces PyTorch's output from a state_dict.
set -u
build=${1:?usage: test_install.sh BUILD_DIR SOURCE_DIR}
src=${2:?usage: test_install.sh BUILD_DIR SOURCE_DIR}
build=$(cd "$build" && pwd); src=$(cd "$src" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

meson install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet >"$tmp/install.log" 2>&1 \
  || fail "meson install: $(tail -n 3 "$tmp/install.log")"
pc=$(find "$tmp/root" -name qkv.pc | head -n 1)
[ -n "$pc" ] || fail "no qkv.pc installed"
[ -x "$(find "$tmp/root" -path '*/bin/qkv' | head -n 1)" ] || fail "the qkv program is not installed"
# pkg-config reads the temporary copy: the .pc's own directory first, its prefix moved under DESTDIR.
prefix=$(sed -n 's/^prefix=//p' "$pc")
export PKG_CONFIG_PATH="$(dirname "$pc")${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
pc_args=(--define-variable=prefix="$tmp/root$prefix")
cflags=$(pkg-config "${pc_args[@]}" --cflags qkv) || fail "pkg-config --cflags qkv"
libs=$(pkg-config "${pc_args[@]}" --libs qkv) || fail "pkg-config --libs qkv"
inc=$(pkg-config "${pc_args[@]}" --variable=includedir qkv)/qkv
[[ " $cflags " == *" -I$inc "* ]] || fail "Cflags lack -I$inc: $cflags"
[[ " $cflags " == *" -fopenmp "* && " $libs " == *" -fopenmp "* ]] || fail "-fopenmp missing: $cflags / $libs"
grep -q -- "-march=native" "$build/build.ninja" && { [[ " $cflags " == *" -march=native "* ]] || fail "a native build's Cflags lack -march=native: $cflags"; }

# Every public header is installed, and each compiles from the installed copy.
: >"$tmp/all.cpp"
for h in $(cd "$src" && ls engine/*.h engine/kernels/*.h autograd/*.h nn/*.h); do
  [ -f "$inc/$h" ] || fail "$h is not installed (add it to meson.build's *_headers)"
  echo "#include \"$h\"" >>"$tmp/all.cpp"
done
echo 'int main() {}' >>"$tmp/all.cpp"
cxx=${CXX_FOR_TEST:-c++}
# shellcheck disable=SC2086
$cxx -std=c++20 -fsyntax-only $cflags "$tmp/all.cpp" 2>"$tmp/headers.log" \
  || fail "the installed headers do not compile alone: $(grep -m 3 error "$tmp/headers.log")"

# The example: built with the installed headers and libraries only, then run.
# shellcheck disable=SC2086
$cxx -std=c++20 -O1 -o "$tmp/mlp" "$src/examples/mlp.cpp" $cflags $libs 2>"$tmp/build.log" \
  || fail "building examples/mlp.cpp: $(grep -m 3 -E 'error|undefined' "$tmp/build.log")"
(cd "$tmp" && QKV_THREADS=1 ./mlp "$src/examples") >"$tmp/out.txt" 2>&1 || fail "mlp exited $?: $(tail -n 2 "$tmp/out.txt")"
first=$(awk '/^step 0 loss/ {print $4}' "$tmp/out.txt")
last=$(awk '/^step [0-9]+ loss/ {v = $4} END {print v}' "$tmp/out.txt")
awk -v a="$first" -v b="$last" 'BEGIN {exit !(a != "" && b != "" && b < 0.7 * a)}' \
  || fail "the loss did not go down (first '$first', last '$last')"
[ -s "$tmp/mlp.safetensors" ] || fail "the example saved no checkpoint"
diff=$(awk '/^max abs diff vs PyTorch:/ {print $6}' "$tmp/out.txt")
[ "$(grep -c '^row ' "$tmp/out.txt")" -gt 0 ] || fail "the example printed no output rows"
awk -v d="$diff" 'BEGIN {exit !(d != "" && d + 0 < 1e-5)}' || fail "the loaded module differs from PyTorch by '$diff'"
echo "install: all checks passed (loss $first -> $last, max diff vs PyTorch $diff)"
