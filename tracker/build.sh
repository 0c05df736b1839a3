#!/usr/bin/env bash
# Minify the tracker: tracker/liveinsight.js -> tracker/dist/liveinsight.min.js (checked in;
# the Flask app serves it at /tracker.js, so the server needs no npm at run time).
# Usage: tracker/build.sh [OUTPUT]   (OUTPUT defaults to tracker/dist/liveinsight.min.js)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/dist/liveinsight.min.js}"
mkdir -p "$(dirname "$out")"
out="$(cd "$(dirname "$out")" && pwd)/$(basename "$out")"
cd "$here"
if [ ! -x node_modules/.bin/terser ]; then
  npm ci --silent
fi
node_modules/.bin/terser liveinsight.js \
  --ecma 2017 --compress passes=2 --mangle --toplevel \
  --comments false --output "$out"
