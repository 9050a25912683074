#!/bin/sh
# Builds a Python plugin into a component with componentize-py (from PyPI).
# Usage: build-python.sh DIR WORLD OUT.wasm [COMPONENTIZE_PY]
#   e.g. build-python.sh webhook-py notifier-plugin webhook.wasm
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dir=$1 world=$2 out=$3
tool=${4:-componentize-py}
case $out in /*) ;; *) out=$PWD/$out ;; esac
cd "$here/$dir"
"$tool" -d "$here/../wit" -w "$world" componentize app -o "$out"
