#!/bin/sh
# Install Debian packages when this machine allows it (as root, or with passwordless sudo);
# otherwise say what to install by hand. Used by the Makefile's browser, frontserver and
# bench-tools targets.
#   sh deploy/apt_install.sh "PURPOSE" PACKAGE...
purpose=$1
shift
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then
  sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
else
  echo "$* not found and apt-get not allowed here: install $* $purpose"
fi
