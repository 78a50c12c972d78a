#!/usr/bin/env bash
# The checks that keep the code's habits, each in its own scratch path so the debug build stays:
#   - ThreadSanitizer over the loop and the runtime (TunnelIO's waker is the one cross-thread
#     door; the runtime suites drive real gateways and clients through it),
#   - the Multiplex tests built in release as shipped (TUNNEL_UNCHECKED_EXCLUSIVITY=1), the
#     configuration the session ships in.
# Prints how long each took, so CI time stays visible. Usage: scripts/test-habits.sh [tsan|release]...
set -euo pipefail
cd "$(dirname "$0")/.."

runtime_suites='TunnelIOTests|TunnelIntegrationTests\.(FinDeliveryTests|RapidResetTests|SessionEndTests|ShellFramingTests)'
checks=("$@")
[ ${#checks[@]} -gt 0 ] || checks=(tsan release)
for check in "${checks[@]}"; do
    start=$SECONDS
    case $check in
        tsan) swift test --sanitize=thread --scratch-path .build-tsan --filter "$runtime_suites" ;;
        # As shipped: release, with Multiplex's exclusivity checks off (Package.swift).
        release) TUNNEL_UNCHECKED_EXCLUSIVITY=1 swift test -c release --scratch-path .build-release --filter MultiplexTests ;;
        *) echo "test-habits.sh: unknown check '$check'; use: tsan release" >&2; exit 2 ;;
    esac
    echo "test-habits.sh: $check took $((SECONDS - start)) s"
done
