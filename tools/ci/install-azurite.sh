#!/bin/sh
# Install Azurite 3.35.0 (the Azure Storage emulator) for the outbox tests, project-locally.
# 3.36+ needs a newer Node than Debian 12's Node 20. Never commit node_modules.
#   usage: tools/ci/install-azurite.sh            # into target/azurite
#          OUTPOST_AZURITE_DIR=/opt/azurite tools/ci/install-azurite.sh
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${OUTPOST_AZURITE_DIR:-$root/target/azurite}
version=3.35.0
bin=$dir/node_modules/.bin/azurite-blob
if [ -x "$bin" ] && [ "$("$bin" --version 2>/dev/null)" = "$version" ]; then
    echo "azurite $version already in $dir"
    exit 0
fi
command -v npm >/dev/null || { echo "npm not found: apt-get install -y nodejs npm" >&2; exit 1; }
mkdir -p "$dir"
cd "$dir"
[ -f package.json ] || echo '{"private": true}' > package.json
npm install --no-audit --no-fund --save-exact "azurite@$version"
"$bin" --version
