#!/usr/bin/env bash
# Build the wheel the way a release is built, check that auditwheel finds it manylinux-compatible,
# install it into a fresh virtualenv and run deploy/ci/wheel_smoke.py with that environment's
# python, outside the source tree. Called by .ci/run:
#   bash deploy/ci/wheel-smoke.sh [WORK_DIR]
# WORK_DIR (default: a new temporary directory) receives dist/ (sdist + wheel), auditwheel.txt
# and the virtualenvs. Needs python3 with venv and a C compiler; build requirements come from
# the package index.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${1:-$(mktemp -d -t akri-wheel-XXXXXX)}"
mkdir -p "$work"
echo "wheel smoke test in $work"

python3 -m venv "$work/tools"
"$work/tools/bin/pip" install -q --disable-pip-version-check build auditwheel

# sdist first, then the wheel from that sdist: the sdist must carry everything the build needs
rm -rf "$work/dist"
"$work/tools/bin/python" -m build --outdir "$work/dist" "$repo" > "$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log"; echo "wheel build FAILED"; exit 1; }
wheels=("$work"/dist/*.whl)
[ "${#wheels[@]}" -eq 1 ] || { echo "expected one wheel, got: ${wheels[*]}"; exit 1; }
wheel="${wheels[0]}"
echo "built $(basename "$wheel")"

# The extensions may link only to libraries every manylinux system has (libc, libpthread, ...);
# `auditwheel repair` would then only retag the wheel.
"$work/tools/bin/auditwheel" show "$wheel" | tee "$work/auditwheel.txt"
tr -s ' \n' ' ' < "$work/auditwheel.txt" \
    | grep -Eq 'is consistent with the following platform tag: "manylinux_[0-9]+_[0-9]+_' \
    || { echo "auditwheel: the wheel is not manylinux-compatible"; exit 1; }

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install -q --disable-pip-version-check "$wheel"
cd "$work"  # nothing importable from the source tree
"$work/venv/bin/python" "$repo/deploy/ci/wheel_smoke.py" --samples "$repo/deploy/samples"
