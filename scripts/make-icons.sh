#!/usr/bin/env bash
# Draws Confab's PNG icons, in the hicolor theme's sizes, from the SVG in packaging/icons/.
# The PNGs are committed, so building and packaging need no SVG renderer: run this after
# changing the SVG, and commit what it writes.
#
#   scripts/make-icons.sh    (installs librsvg2-bin first: scripts/install-deps.sh icons)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh icons

# The same layout as the icon theme's, so `make deb` installs the folder as it is.
icons=packaging/icons/hicolor
svg=$icons/scalable/apps/confab.svg
for size in 16 22 24 32 48 64 128 256 512; do
  out=$icons/${size}x${size}/apps/confab.png
  mkdir -p "$(dirname "$out")"
  rsvg-convert --width "$size" --height "$size" "$svg" --output "$out"
  echo "$out"
done
