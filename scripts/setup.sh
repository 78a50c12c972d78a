#!/usr/bin/env bash
# Installs the Debian packages tunnel builds and tests with; a no-op when they are present.
# Swift itself (6.x, with Swift Testing) must already be on PATH.
set -euo pipefail

packages=(
    pkg-config libuv1-dev libssl-dev          # build: the system-library targets
    libsqlite3-dev sqlite3                    # build: the gateway's fleet database; its backup in backup-restore.sh
    libpq-dev postgresql                      # build: the cluster's PostgreSQL store; tests: a real server
    libhttp-parser-dev                        # build: TunnelHTTP (the console, the Kubernetes proxy)
    libyaml-dev                               # build: TunnelYAML (settings files, without Foundation)
    openssh-server openssh-client rsync       # end-to-end tests: a real sshd, ssh, scp
    python3 openssl curl                      # the Kubernetes API stand-in and its checks
    iproute2                                  # network namespaces for the half-open link test
    asciinema                                 # plays the gateway's shell recordings in the tests
    faketime                                  # a node whose clock reads 1970, in the tests
    node-xterm libjs-xterm                    # xterm.js for the audit console's shell player
    chromium                                  # the audit console's browser tests
    man-db zsh fish                           # man pages render, completion scripts parse (zsh -n, fish -n)
)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
# Any kubectl will do; Debian's own is kubernetes-client (some images ship another one).
command -v kubectl >/dev/null || missing+=(kubernetes-client)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# Prometheus and promtool for Tests/EndToEnd/metrics.sh, which runs its own on a free port: no
# recommends (node exporter), and no packaged service left running (policy-rc.d refuses starts).
if ! dpkg-query -W -f='${Status}' prometheus 2>/dev/null | grep -q 'ok installed'; then
    guard=""
    [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; guard=1; }
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    [ -z "$guard" ] || rm -f /usr/sbin/policy-rc.d
fi
# The Kubernetes OpenAPI schemas, bundled, for the offline manifest check (Tests/EndToEnd/deploy-check.sh).
python3 -c "import kubernetes_validate" 2>/dev/null || python3 -m pip install --quiet --break-system-packages kubernetes-validate==1.37.0
# Playwright drives the system Chromium in the console tests; it is told never to fetch a browser.
python3 -c 'import playwright' 2>/dev/null || PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 python3 -m pip install --quiet --break-system-packages playwright
command -v swift >/dev/null || { echo "setup: swift is not on PATH; install Swift 6 (swift.org) first" >&2; exit 1; }
