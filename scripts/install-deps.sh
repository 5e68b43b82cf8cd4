#!/usr/bin/env bash
# Installs the Debian packages Confab needs to build, run and test, when they are missing.
# Called by `make run` and `make test`; safe to run repeatedly (it only installs what is
# absent). The package list lives here and nowhere else.
set -euo pipefail

packages=(
  build-essential   # C compiler: ring (TLS crypto), openh264, libopus
  pkg-config
  cmake             # libopus build (audiopus_sys)
  nasm              # openh264's assembly: about 3x faster encoding
  clang libclang-dev  # bindgen, for nokhwa's V4L2 bindings
  libasound2-dev    # cpal (ALSA)
  libudev-dev       # device enumeration
  # Audio tests run against a real sound server with a virtual sink and microphone.
  pulseaudio pulseaudio-utils libasound2-plugins alsa-utils
  # The echo room test speaks (espeak-ng) and shapes its clips and noise (sox).
  espeak-ng sox
  # The interop test's second WebRTC stack (aiortc, from PyPI) runs in a venv.
  python3 python3-venv
  # The relay-only test calls through a real TURN server.
  coturn
  # The browser test: Debian's Chromium, driven from Node.js (playwright-core, from npm),
  # and openssl for the certificate of its https server.
  chromium openssl
  iproute2          # tests/networks.rs: network namespaces and veth cables
  nats-server       # the signaling cluster's tests: servers sharing a roster through NATS
  # The window: winit loads the X11 libraries at run time; Mesa renders in software
  # (llvmpipe/lavapipe) where there is no GPU, for the app and the UI snapshot tests.
  libx11-xcb1 libxcursor1 libxi6 libxrandr2 libxkbcommon-x11-0
  libgl1-mesa-dri libegl1 mesa-vulkan-drivers
  # A virtual display for the app on machines without one (screenshots, measurements,
  # the notification test).
  xvfb xauth
  # The notification test: a real notification server on its own session bus.
  dbus-daemon dunst
  # `make check-packaging` validates the desktop entry and the AppStream metainfo.
  desktop-file-utils appstream
)
case "${1:-}" in
  # `install-deps.sh screenshots`: also what takes pictures of that display.
  screenshots) packages+=(imagemagick) ;;
  # `install-deps.sh icons`: scripts/make-icons.sh draws the PNG icons from the SVG.
  icons) packages+=(librsvg2-bin) ;;
  # `install-deps.sh deb`: `make deb` checks the packages it builds (cargo-deb is below).
  deb) packages+=(lintian) ;;
esac

# `make deb` builds the Debian packages with cargo-deb, a pinned version from crates.io.
CARGO_DEB_VERSION=3.8.0
install_cargo_deb() {
  if [ "$(cargo deb --version 2>/dev/null)" != "cargo-deb $CARGO_DEB_VERSION" ]; then
    echo "installing cargo-deb $CARGO_DEB_VERSION"
    cargo install --locked --quiet "cargo-deb@$CARGO_DEB_VERSION"
  fi
}

missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# Node.js and npm for the browser test, from Debian unless the machine has them already
# (from another source, such as NodeSource's nodejs, which includes npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  missing+=(nodejs npm)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing system packages: ${missing[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    sudo=""
  elif command -v sudo >/dev/null; then
    sudo="sudo"
  else
    echo "error: missing packages ${missing[*]}; run as root or install them with apt-get" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "deb" ]; then
  install_cargo_deb
fi
