#!/usr/bin/env bash
# Shell completions (bash, zsh, fish) and man pages for `tunnel`, generated from the command
# definitions themselves (swift-argument-parser's --generate-completion-script and its
# generate-manual tool), so they can never disagree with `tunnel --help`.
#   scripts/make-cli-docs.sh [path/to/tunnel] [OUTPUT-DIR]     (defaults: .build/debug/tunnel, .build/cli-docs)
# Writes OUTPUT-DIR/completions/{tunnel.bash,_tunnel,tunnel.fish} and OUTPUT-DIR/man/man1/*.1;
# deploy/install-cli-docs.sh installs them.
set -euo pipefail
cd "$(dirname "$0")/.."

TUNNEL=$(readlink -f "${1:-.build/debug/tunnel}")
OUT=${2:-.build/cli-docs}
[ -x "$TUNNEL" ] || { echo "no tunnel binary at $TUNNEL (swift build first)"; exit 2; }

# generate-manual is a tool of the swift-argument-parser package; built once, beside the binary.
BIN_DIR=$(dirname "$TUNNEL")
if [ ! -x "$BIN_DIR/generate-manual" ]; then
    configuration=debug
    [ "$(basename "$BIN_DIR")" = release ] && configuration=release
    swift build -c "$configuration" --product generate-manual >/dev/null
fi

rm -rf "$OUT/completions" "$OUT/man"
mkdir -p "$OUT/completions" "$OUT/man/man1"
"$TUNNEL" --generate-completion-script bash >"$OUT/completions/tunnel.bash"
"$TUNNEL" --generate-completion-script zsh >"$OUT/completions/_tunnel"
"$TUNNEL" --generate-completion-script fish >"$OUT/completions/tunnel.fish"
# The commit's date, not today's, so the same source makes the same pages.
date=$(git log -1 --format=%cs 2>/dev/null || date -u +%F)
"$BIN_DIR/generate-manual" "$TUNNEL" --multi-page --date "$date" --output-directory "$OUT/man/man1" >/dev/null
echo "wrote $OUT/completions (bash, zsh, fish) and $(find "$OUT/man/man1" -name '*.1' | wc -l) man pages in $OUT/man/man1"
