#!/usr/bin/env bash
# Debian packages the tests use but pip cannot provide: rtsp-server-perl, the RTSP server of the
# live reconnect test, and chromium, the headless browser the review-page test renders in.
# Installed with apt-get when missing and the machine allows it (root or password-less sudo);
# otherwise says so and the test that needs it is skipped. Never fails.
set -uo pipefail
need=()
command -v rtsp-server-perl >/dev/null 2>&1 || need+=("rtsp-server-perl:the RTSP live test")
command -v chromium >/dev/null 2>&1 || need+=("chromium:the review-page browser test")
[ "${#need[@]}" -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  for n in "${need[@]}"; do echo "[system] no apt-get: ${n#*:} will be skipped (install ${n%%:*})" >&2; done
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  for n in "${need[@]}"; do echo "[system] not root: ${n#*:} will be skipped (apt-get install ${n%%:*})" >&2; done
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
for n in "${need[@]}"; do
  pkg="${n%%:*}"
  echo "[system] installing $pkg (Debian) for ${n#*:}" >&2
  install=("${sudo[@]}" apt-get install -y -q --no-install-recommends "$pkg")
  if ! "${install[@]}" >/dev/null 2>&1; then
    [ "$updated" -eq 0 ] && "${sudo[@]}" apt-get update -q >/dev/null 2>&1 && updated=1
    "${install[@]}" >/dev/null 2>&1 \
      || echo "[system] apt-get could not install $pkg: ${n#*:} will be skipped" >&2
  fi
done
exit 0
