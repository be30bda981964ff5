#!/usr/bin/env bash
# Build the Python plugin into a WebAssembly component.
#
#   ./build.sh [OUT]        OUT defaults to build/sms_first_py.wasm (relative to this folder)
#
# Installs componentize-py 0.25.1 from PyPI, once, into a virtualenv under
# ${FUNNEL_PY_VENV:-$HOME/.cache/funnel/componentize-py-0.25.1}, then runs
# `componentize-py componentize`, which generates the Python bindings of the WIT world on the
# fly (nothing generated lands in this folder) and bundles app.py with a Python interpreter.
# Works from any directory. Prints one line: where the component is.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="0.25.1"
venv="${FUNNEL_PY_VENV:-$HOME/.cache/funnel/componentize-py-$version}"

# The contract: ./wit in a standalone project (what `funnel plugin new` makes), else the
# repository's wit/ two levels up.
if [ -d "$here/wit" ]; then
    wit="$here/wit"
else
    wit="$here/../../wit"
fi
if [ ! -f "$wit/funnel.wit" ]; then
    echo "build.sh: no funnel.wit in $here/wit or $here/../../wit" >&2
    exit 1
fi

out="${1:-build/sms_first_py.wasm}"
case "$out" in
    /*) ;;
    *) out="$here/$out" ;;
esac
mkdir -p "$(dirname "$out")"

# componentize-py, installed once (pip output goes to stderr so stdout stays one line).
if ! "$venv/bin/componentize-py" --version 2>/dev/null | grep -q "$version"; then
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet "componentize-py==$version" >&2
fi

# -d/-w: the WIT and its world; -p: where app.py is; app: the module that implements the
# world (the class `Funnel` in app.py). --stub-wasi would remove WASI imports, but the host
# links WASI (granting nothing), so the default is fine.
"$venv/bin/componentize-py" -d "$wit" -w funnel componentize -p "$here" app -o "$out" >&2

echo "$out"
