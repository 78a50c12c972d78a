#!/usr/bin/env bash
# The generated shell completions and man pages: scripts/make-cli-docs.sh makes them from the
# built binary, each completion script parses in its shell (bash -n, and zsh -n / fish -n where
# installed), bash's completes a subcommand, every man page renders with `man -l` without a
# warning, and deploy/install-cli-docs.sh puts them where the shells and man look.
#   Tests/EndToEnd/cli-docs.sh [path/to/tunnel]        (default: .build/debug/tunnel)
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/scripts/lib/e2e.sh"
e2e_begin cli-docs "${1:-}"

out=$("$ROOT/scripts/make-cli-docs.sh" "$TUNNEL" "$WORK/docs" 2>&1) && pass "make-cli-docs.sh: $out" || { fail "make-cli-docs.sh" "$out"; exit; }
COMPLETIONS=$WORK/docs/completions

out=$(bash -n "$COMPLETIONS/tunnel.bash" 2>&1) && pass "the bash completion parses (bash -n)" || fail "bash -n" "$out"
for shell in zsh fish; do
    file=$COMPLETIONS/_tunnel
    [ "$shell" = fish ] && file=$COMPLETIONS/tunnel.fish
    if command -v "$shell" >/dev/null; then
        out=$("$shell" -n "$file" 2>&1) && pass "the $shell completion parses ($shell -n)" || fail "$shell -n" "$out"
    else
        echo "skip - $shell is not installed"
    fi
done
# Completing `tunnel aud` must offer `audit`: the script knows the real command tree.
out=$(bash -c 'source "$1"; COMP_WORDS=(tunnel aud); COMP_CWORD=1; COMP_LINE="tunnel aud"; COMP_POINT=${#COMP_LINE}
    fn=$(complete -p tunnel | sed -n "s/.*-F \([^ ]*\).*/\1/p"); "$fn" tunnel aud tunnel; printf "%s\n" "${COMPREPLY[@]}"' _ "$COMPLETIONS/tunnel.bash" 2>&1)
grep -qx audit <<<"$out" && pass "bash completes 'tunnel aud' to audit" || fail "bash completion of 'tunnel aud'" "$out"

pages=("$WORK"/docs/man/man1/*.1)
bad=""
for page in "${pages[@]}"; do
    rendered=$(MANWIDTH=80 man -l "$page" 2>"$WORK/man.err")
    if [ -s "$WORK/man.err" ] || ! grep -q "NAME" <<<"$rendered"; then bad+="$(basename "$page"): $(head -3 "$WORK/man.err")"$'\n'; fi
done
[ -z "$bad" ] && [ "${#pages[@]}" -ge 30 ] && pass "all ${#pages[@]} man pages render with man -l, no warnings" || fail "man pages (${#pages[@]})" "$bad"
grep -q "sh -c 'exit 3'" <(MANWIDTH=200 man -l "$WORK/docs/man/man1/tunnel.shell.1" 2>/dev/null) \
    && pass "tunnel.shell(1) carries the command's own help text" || fail "tunnel.shell(1) text"

out=$("$ROOT/deploy/install-cli-docs.sh" "$WORK/docs" "$WORK/prefix" 2>&1) \
    && [ -f "$WORK/prefix/share/bash-completion/completions/tunnel" ] && [ -f "$WORK/prefix/share/zsh/site-functions/_tunnel" ] \
    && [ -f "$WORK/prefix/share/fish/vendor_completions.d/tunnel.fish" ] && [ -f "$WORK/prefix/share/man/man1/tunnel.1" ] \
    && pass "deploy/install-cli-docs.sh installs them where bash, zsh, fish and man look" || fail "install-cli-docs.sh" "$out"
