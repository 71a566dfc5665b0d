#!/usr/bin/env bash
# Makes (once) the two virtualenvs the client conformance test uses, and prints their paths as
# `az=DIR` and `sdk=DIR`: the Azure CLI, and the Azure SDK for Python, each pinned by its
# requirements file (the CLI pins its own SDK versions, so they cannot share one). Each is
# cached under ~/.cache/acr-attach/clients by the hash of its requirements file, so only the
# first run downloads (from PyPI, about a minute).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${ACR_ATTACH_CLIENTS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/acr-attach/clients}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
for name in az sdk; do
    req="$here/requirements-$name.txt"
    dir="$cache/$name-$(sha256sum "$req" | cut -c1-16)"
    if [ ! -f "$dir/.complete" ]; then
        rm -rf "$dir"
        python3 -m venv "$dir"
        "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
        touch "$dir/.complete"
    fi
    echo "$name=$dir"
done
