#!/usr/bin/env bash
# Installs the system packages the test suite drives for real (README.md "The two commands"): coturn's
# clients and server, Redis, Mosquitto and its clients, Chromium, ffmpeg, iproute2, promtool, and
# for the lab (docs/lab.md): iptables and ipset (its NATs), libnetfilter_queue (its delay stage).
# As root it installs what is missing with apt-get; otherwise it prints what to install.
set -euo pipefail

PACKAGES=(coturn redis-server mosquitto mosquitto-clients chromium ffmpeg iproute2 iptables ipset openssl prometheus libnetfilter-queue-dev)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all system packages present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing system packages: ${missing[*]}" >&2
  echo "install them with: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# Services must not start by themselves: the tests start their own on free ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
rm -f /usr/sbin/policy-rc.d
echo "install-deps: done"
