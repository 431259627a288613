#!/usr/bin/env bash
# Debian packages the tests use but pip cannot provide: rtsp-server-perl, the RTSP server of the
# live reconnect test. Installed with apt-get when missing and the machine allows it (root or
# password-less sudo); otherwise says so and the test that needs it is skipped. Never fails.
set -uo pipefail
command -v rtsp-server-perl >/dev/null 2>&1 && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "[system] no apt-get: the RTSP live test will be skipped (install rtsp-server-perl)" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "[system] not root: the RTSP live test will be skipped (apt-get install rtsp-server-perl)" >&2
  exit 0
fi
echo "[system] installing rtsp-server-perl (Debian) for the RTSP live test" >&2
export DEBIAN_FRONTEND=noninteractive
install=("${sudo[@]}" apt-get install -y -q --no-install-recommends rtsp-server-perl)
if ! "${install[@]}" >/dev/null 2>&1; then
  "${sudo[@]}" apt-get update -q >/dev/null 2>&1
  "${install[@]}" >/dev/null 2>&1 \
    || echo "[system] apt-get could not install rtsp-server-perl: the RTSP live test will be skipped" >&2
fi
exit 0
