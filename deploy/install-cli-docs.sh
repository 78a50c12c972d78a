#!/usr/bin/env bash
# Installs what scripts/make-cli-docs.sh made: the shell completions where Debian's bash, zsh and
# fish look for them, and the man pages under /usr/local/share/man (then `man tunnel`,
# `man tunnel.audit.verify`). Run as root on each machine where people type tunnel commands.
#   deploy/install-cli-docs.sh [CLI-DOCS-DIR] [PREFIX]     (defaults: .build/cli-docs, /usr/local)
set -euo pipefail

DOCS=${1:-.build/cli-docs}
PREFIX=${2:-/usr/local}
[ -f "$DOCS/completions/tunnel.bash" ] || { echo "no completions in $DOCS (run scripts/make-cli-docs.sh first)"; exit 2; }

install -D -m 0644 "$DOCS/completions/tunnel.bash" "$PREFIX/share/bash-completion/completions/tunnel"
install -D -m 0644 "$DOCS/completions/_tunnel" "$PREFIX/share/zsh/site-functions/_tunnel"
install -D -m 0644 "$DOCS/completions/tunnel.fish" "$PREFIX/share/fish/vendor_completions.d/tunnel.fish"
install -d -m 0755 "$PREFIX/share/man/man1"
for page in "$DOCS"/man/man1/*.1; do
    install -m 0644 "$page" "$PREFIX/share/man/man1/"
done
command -v mandb >/dev/null && mandb -q "$PREFIX/share/man" 2>/dev/null || true
echo "installed completions and $(ls "$DOCS"/man/man1/*.1 | wc -l) man pages under $PREFIX/share"
