#!/usr/bin/env bash
# The checks that keep the code's habits, each in its own scratch path so the debug build stays:
#   - ThreadSanitizer over the loop and the runtime (TunnelIO's waker is the one cross-thread
#     door; the runtime suites drive real gateways and clients through it),
#   - the Multiplex tests built in release as shipped (TUNNEL_UNCHECKED_EXCLUSIVITY=1), the
#     configuration the session ships in,
#   - layers: TunnelCommands is a thin layer over the role modules and imports neither TunnelIO
#     nor Multiplex (issue #10): a command that needs the loop gets an API from its role module.
# Prints how long each took, so CI time stays visible. Usage: scripts/test-habits.sh [layers|tsan|release]...
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_suites='TunnelIOTests|TunnelIntegrationTests\.(FinDeliveryTests|RapidResetTests|SessionEndTests|ShellFramingTests|RelayCreditTests|HandshakeWorkerTests)'
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(layers tsan release)
for check in "${checks[@]}"; do
    start=$SECONDS
    case $check in
        layers)
            if grep -lE '^(@_exported |@testable )?import (TunnelIO|Multiplex)$' Sources/TunnelCommands/*.swift; then
                echo "test-habits.sh: the files above import TunnelIO or Multiplex; give the role module an API instead" >&2
                exit 1
            fi ;;
        tsan) swift test --sanitize=thread --scratch-path .build-tsan --filter "$runtime_suites" ;;
        # As shipped: release, with Multiplex's exclusivity checks off (Package.swift).
        release) TUNNEL_UNCHECKED_EXCLUSIVITY=1 swift test -c release --scratch-path .build-release --filter MultiplexTests ;;
        *) echo "test-habits.sh: unknown check '$check'; use: layers tsan release" >&2; exit 2 ;;
    esac
    echo "test-habits.sh: $check took $((SECONDS - start)) s"
done
