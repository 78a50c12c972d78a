#!/usr/bin/env bash
# The whole test suite: system packages, every `swift test` suite, each fuzz harness for a short
# run (FUZZ_SECONDS, default 60; fails on any new crasher), then the end-to-end tests with real
# sshd, ssh, scp and kubectl, the audit console's browser tests (Chromium) on their scenario,
# kubectl by impersonation (kubernetes.sh), keystrokes over a bulk download on a shaped link
# (shaped-link.sh), a real Prometheus scraping the gateway (metrics.sh), the offline schema checks
# of deploy/ (deploy-check.sh), a one-box backup and restore, one gateway per data directory and
# the SIGHUP policy reload (gateway-process.sh), and a 2-minute fleet soak with the
# fleet simulator (scripts/fleet-soak.sh --ci).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
# A rebase's leftovers fail at once: no tracked file may hold a merge-conflict marker.
if git rev-parse --git-dir >/dev/null 2>&1 && git grep -nE '^(<<<<<<<|>>>>>>>)( |$)' -- . ':!*.png'; then
    echo "merge-conflict markers above: resolve them"; exit 1
fi
# The house format (.swift-format): any finding fails here, before the long build.
# `swift format format -i -r -p Sources Tests Benchmarks Fuzz Package.swift` fixes nearly all.
swift format lint --strict -r -p Sources Tests Benchmarks Fuzz Package.swift
# No function over about 60 lines (docs/ARCHITECTURE.md): a longer one fails here, before the build.
python3 scripts/long-functions.py Sources
# Login shells in the tests (the shell service's suite, `tunnel shell` end to end) run as a
# throwaway account made here, never as root with root's own profile. (Not a TUNNEL_ variable:
# tunnel refuses TUNNEL_* names it does not know.)
if [ "$(id -u)" = 0 ] && [ -z "${TEST_SHELL_ACCOUNT:-}" ]; then
    export TEST_SHELL_ACCOUNT="tnlsh$$"
    useradd --create-home --shell /bin/bash "$TEST_SHELL_ACCOUNT"
    trap 'userdel -r "$TEST_SHELL_ACCOUNT" >/dev/null 2>&1 || true' EXIT
fi
swift build --build-tests
swift test
scripts/test-habits.sh layers tsan release
scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
AUDIT_SCENARIO_OUT=.build/audit-scenario Tests/EndToEnd/run.sh .build/debug/tunnel
Tests/EndToEnd/newcomer.sh .build/debug/tunnel
Tests/EndToEnd/dev-no-openssh.sh .build/debug/tunnel
Tests/EndToEnd/cli-docs.sh .build/debug/tunnel
Tests/EndToEnd/console.sh .build/debug/tunnel .build/audit-scenario
Tests/EndToEnd/hostile.sh .build/debug/tunnel
Tests/EndToEnd/shaped-link.sh .build/debug/tunnel
Tests/EndToEnd/kubernetes.sh .build/debug/tunnel
Tests/EndToEnd/names-and-records.sh .build/debug/tunnel
Tests/EndToEnd/metrics.sh .build/debug/tunnel
Tests/EndToEnd/deploy-check.sh
Tests/EndToEnd/backup-restore.sh .build/debug/tunnel
Tests/EndToEnd/gateway-process.sh .build/debug/tunnel
Tests/EndToEnd/cluster.sh .build/debug/tunnel
Tests/EndToEnd/edge-agent.sh .build/debug/tunnel .build/debug/tunnel-client
# Fleet soak (issue #11): 200 simulated nodes, churn on, 2 minutes of checked streams through the
# debug gateway, the simulator built in release (a debug one cannot check the bytes fast enough);
# fails on any wrong or lost byte, audit or node-list mismatch.
FLEET_TUNNEL=.build/debug/tunnel scripts/fleet-soak.sh --ci
