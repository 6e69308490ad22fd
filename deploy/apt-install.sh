#!/bin/sh
# Image build helper (Dockerfile, deploy/anvil.Dockerfile): install Debian packages without
# recommends and leave no package lists behind. With APT_MIRROR=URL set, the image's apt sources
# are replaced first by that mirror (suites <codename> and <codename>-updates, component main),
# for builds that cannot reach the base image's own mirror.
#   APT_MIRROR=http://mirror.example/debian apt-install PACKAGE...
set -eu
[ "$#" -gt 0 ] || { echo "apt-install: no package named" >&2; exit 2; }
if [ -n "${APT_MIRROR:-}" ]; then
    . /etc/os-release
    codename="${VERSION_CODENAME:?apt-install: /etc/os-release names no VERSION_CODENAME}"
    rm -f /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list
    printf 'deb %s %s main\ndeb %s %s-updates main\n' \
        "$APT_MIRROR" "$codename" "$APT_MIRROR" "$codename" > /etc/apt/sources.list
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "$@"
apt-get clean
rm -rf /var/lib/apt/lists/*
