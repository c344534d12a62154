#!/bin/sh
# Re-copy Leaflet's dist files from node_modules into web/public/vendor/leaflet/,
# which the Rust binary embeds and serves at /static/vendor/leaflet/.
# After `npm install` (or an upgrade of leaflet in package.json): sh vendor.sh
set -eu
cd "$(dirname "$0")"
src=node_modules/leaflet
dst=public/vendor/leaflet
[ -f "$src/dist/leaflet.js" ] || { echo "vendor.sh: $src missing; run npm install first" >&2; exit 1; }
rm -rf "$dst"
mkdir -p "$dst/images"
cp "$src/dist/leaflet.js" "$src/dist/leaflet.css" "$src/LICENSE" "$dst/"
cp "$src"/dist/images/*.png "$dst/images/"
version=$(node -p "require('./$src/package.json').version" 2>/dev/null || echo unknown)
echo "$version" > "$dst/VERSION"
echo "vendored leaflet $version into $dst"
