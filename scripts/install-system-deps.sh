#!/usr/bin/env bash
# Installs what the tests need from Debian's packages and npm cannot provide:
# PostgreSQL (PostgresStorage tests), Chromium (dashboard tests) and Google's Python API client
# (the Storage emulator's Python test). Skips what is present.
set -euo pipefail

missing=()
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
/usr/bin/python3 -c 'import googleapiclient' >/dev/null 2>&1 || missing+=(python3-googleapi)
[ ${#missing[@]} -eq 0 ] && { echo "system packages present: postgresql, chromium, python3-googleapi"; exit 0; }

if ! command -v apt-get >/dev/null 2>&1; then
  echo "missing ${missing[*]} and no apt-get here: install them with your package manager" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing from Debian's packages: ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
