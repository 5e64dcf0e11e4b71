#!/usr/bin/env bash
# docs/concepts.md stays true: every `file:function` it names is a file of the
# repository that defines that function (for Class::method, "Class::method(";
# for a free function, "name(" after a type), and every configs/ or docs/ file
# it names exists. A renamed function or a moved file fails here.
set -u
root=${1:?usage: test_concepts.sh REPO_ROOT}
page="$root/docs/concepts.md"
[ -f "$page" ] || { echo "FAIL: $page missing"; exit 1; }
fails=0 refs=0
while read -r ref; do
  file=${ref%%:*} fn=${ref#*:}
  refs=$((refs + 1))
  if [ ! -f "$root/$file" ]; then
    echo "FAIL: docs/concepts.md names $file, which does not exist"; fails=$((fails + 1)); continue
  fi
  # A definition: the name at the start of a line or after a return type, then '('.
  if ! grep -qE "(^|[ *&>])${fn//:/\\:}\(" "$root/$file"; then
    echo "FAIL: docs/concepts.md names $file:$fn, but $file defines no $fn("; fails=$((fails + 1))
  fi
done < <(grep -oE '`[a-z_/]+\.(cpp|h):[A-Za-z_][A-Za-z0-9_:]*`' "$page" | tr -d '`' | sort -u)
while read -r f; do
  refs=$((refs + 1))
  [ -f "$root/$f" ] || { echo "FAIL: docs/concepts.md names $f, which does not exist"; fails=$((fails + 1)); }
done < <(grep -oE '`(configs|docs)/[A-Za-z0-9_./-]+\.(json|svg|md)`' "$page" | tr -d '`' | sort -u)
[ "$refs" -ge 20 ] || { echo "FAIL: only $refs references found in docs/concepts.md"; fails=$((fails + 1)); }
[ $fails = 0 ] && echo "concepts: $refs references checked" || echo "concepts: $fails failed"
exit $((fails > 0))
