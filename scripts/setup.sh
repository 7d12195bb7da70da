#!/usr/bin/env bash
# Installs what edge-agent needs to build and test on a fresh Debian machine, only when missing.
# Idempotent; safe to run on every test run.
set -euo pipefail

export PATH="$PATH:/opt/swift/usr/bin"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

APT_PACKAGES=(libmodbus-dev libgpiod-dev libmosquitto-dev libsqlite3-dev libyaml-dev libssl-dev mosquitto mosquitto-clients
              socat mbpoll sqlite3 openssl tmux pkg-config python3 python3-pip
              dpkg-dev systemd util-linux binutils faketime
              rabbitmq-server)
missing=()
for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Independent Python peers: pymodbus (Modbus server nobody here wrote), astral (sun times
# reference), jsonschema + PyYAML (the AsyncAPI contract check), protobuf + pysparkplug (an
# independent Sparkplug B decoder), amqtt (a third MQTT broker for the interop matrix).
PY=python3
PY_PEERS=('pymodbus>=3.16,<3.17' 'astral>=3.2,<4' 'jsonschema>=4.18,<5' 'PyYAML>=6' 'protobuf>=4.21' 'pysparkplug>=0.6,<0.7' 'amqtt>=0.12,<0.13')
if ! $PY -c 'import pymodbus, astral, jsonschema, yaml, google.protobuf, pysparkplug, amqtt' 2>/dev/null; then
    echo "setup: installing Python peers (${PY_PEERS[*]})" >&2
    $PY -m pip install -q "${PY_PEERS[@]}" >&2 \
        || $PY -m pip install -q --break-system-packages "${PY_PEERS[@]}" >&2
fi

# Python's `cryptography`: the Ed25519 cross-check (Tests/EdgeAgentTests/Ed25519Tests.swift).
if ! $PY -c 'import cryptography.hazmat.primitives.asymmetric.ed25519' 2>/dev/null; then
    echo "setup: installing python3-cryptography" >&2
    if [ "$(command -v $PY)" = /usr/bin/python3 ]; then
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-cryptography >&2
    else
        $PY -m pip install -q 'cryptography>=38' >&2 || $PY -m pip install -q --break-system-packages 'cryptography>=38' >&2
    fi
fi

if ! command -v swift >/dev/null; then
    echo "setup: no Swift toolchain on PATH (expected /opt/swift/usr/bin/swift, Swift 6.x)" >&2
    exit 1
fi
