#!/bin/sh
# Installs what rostesim needs on Debian 12: make (to run `make deps`), then the
# Debian packages listed in the Makefile (`make deps`). Works as root or with sudo.
set -e
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
if ! command -v make >/dev/null 2>&1; then
  echo "bootstrap: installing make"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends make
fi
make deps
