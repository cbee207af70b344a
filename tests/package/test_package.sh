#!/usr/bin/env bash
# The .deb as a user gets it: built by scripts/package.sh from BUILD_DIR (lintian: no errors),
# its contents and control data, then unpacked into a throwaway root (dpkg -x) where the binary,
# the man pages, the bash (and zsh) completion, the systemd units, sysusers.d and tmpfiles.d are
# tried. Run by ctest (test "package"), or by hand: tests/package/test_package.sh build
set -euo pipefail
build=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    "$@" >/dev/null 2>&1 || fail "$what"
}

deb=$("$repo/scripts/package.sh" --build-dir "$build" --out "$work" | tail -n 1)
[[ -f $deb ]] || { echo "FAIL: no package built" >&2; exit 1; }
version=$("$build/kbridge" --version | awk '{print $2}')
[[ $(basename "$deb") == "kbridge_${version}_$(dpkg --print-architecture).deb" ]] ||
    fail "package name $(basename "$deb")"

# Contents: every file the issue asks for, and the modes that keep the config private.
contents=$(dpkg-deb --contents "$deb")
for path in ./usr/bin/kbridge ./lib/systemd/system/kbridge@.service \
    ./lib/systemd/system/kbridge.service ./etc/kbridge/example.yaml ./etc/kbridge/example.env \
    ./usr/lib/sysusers.d/kbridge.conf ./usr/lib/tmpfiles.d/kbridge.conf \
    ./usr/share/man/man1/kbridge.1.gz ./usr/share/man/man5/kbridge.yaml.5.gz \
    ./usr/share/bash-completion/completions/kbridge ./usr/share/zsh/vendor-completions/_kbridge \
    ./usr/share/doc/kbridge/copyright ./usr/share/doc/kbridge/examples/kbridge.cron; do
    grep -q " $path\$" <<<"$contents" || fail "the package lacks $path"
done
grep -q '^-rw-r----- root/root .* ./etc/kbridge/example.env$' <<<"$contents" ||
    fail "example.env is not 0640: $(grep example.env <<<"$contents")"
grep -q '^-rwxr-xr-x root/root .* ./usr/bin/kbridge$' <<<"$contents" || fail "/usr/bin/kbridge mode"
control=$(dpkg-deb --field "$deb")
grep -q "^Version: $version\$" <<<"$control" || fail "control Version"
grep -q '^Depends:.*librdkafka' <<<"$control" || fail "Depends lacks librdkafka: $control"
[[ $(dpkg-deb --ctrl-tarfile "$deb" | tar -tf - | sort | tr '\n' ' ') == \
    "./ ./conffiles ./control ./md5sums ./postinst ./postrm " ]] || fail "control files"
dpkg-deb --info "$deb" conffiles | grep -qx /etc/kbridge/example.yaml || fail "conffiles"

# The installed binary.
root=$work/root
dpkg -x "$deb" "$root"
kbridge=$root/usr/bin/kbridge
[[ $("$kbridge" --version) == "kbridge $version "* ]] || fail "--version"
check "-V" "$kbridge" -V
"$kbridge" describe --format json | python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["sources"] and d["sinks"]' ||
    fail "describe --format json"
"$kbridge" describe kafka | grep -q connect_timeout || fail "describe kafka"
check "validate the shipped example" "$kbridge" validate "$root/etc/kbridge/example.yaml"

# Man pages: rendered without a warning from groff, naming what they document.
for page in man1/kbridge.1.gz man5/kbridge.yaml.5.gz; do
    file=$root/usr/share/man/$page
    warnings=$(MANWIDTH=80 man --warnings -l "$file" 2>&1 >/dev/null || echo "man failed")
    [[ -z $warnings ]] || fail "man -l $page: $warnings"
done
MANWIDTH=80 man -l "$root/usr/share/man/man1/kbridge.1.gz" 2>/dev/null | grep -q 'kbridge describe' ||
    fail "kbridge(1) lacks describe"
MANWIDTH=80 man -l "$root/usr/share/man/man5/kbridge.yaml.5.gz" 2>/dev/null | grep -q 'connect_timeout' ||
    fail "kbridge.yaml(5) lacks the option tables"

# bash completion: loads, completes subcommands, options and their values.
complete_words() { # complete_words WORD... : what <TAB> after them offers
    bash --norc --noprofile -c '
        source "$1"; shift
        COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        _kbridge; printf "%s\n" "${COMPREPLY[@]}"' _ \
        "$root/usr/share/bash-completion/completions/kbridge" "$@"
}
[[ $(complete_words kbridge des) == describe ]] || fail "bash: kbridge des<TAB>: $(complete_words kbridge des)"
complete_words kbridge describe ka | grep -qx kafka || fail "bash: describe ka<TAB>"
complete_words kbridge run x.yaml --metr | grep -qx -- --metrics-port || fail "bash: --metr<TAB>"
[[ $(complete_words kbridge run x.yaml --log-level w) == warn ]] || fail "bash: --log-level w<TAB>"
[[ $(complete_words kbridge topics cr) == create ]] || fail "bash: topics cr<TAB>"
if command -v zsh >/dev/null; then
    check "zsh -n _kbridge" zsh -n "$root/usr/share/zsh/vendor-completions/_kbridge"
fi

# The units: hardened to an exposure of 3.0 or below, and valid as far as systemd can tell here.
if command -v systemd-analyze >/dev/null; then
    units=$root/lib/systemd/system
    for unit in "$units/kbridge.service" "$units/kbridge@.service"; do
        out=$(systemd-analyze security --offline=yes --threshold=30 "$unit" 2>&1) ||
            fail "systemd-analyze security $(basename "$unit"): $(tail -n 1 <<<"$out")"
    done
    grep -q '^RestartPreventExitStatus=2$' "$units/kbridge@.service" || fail "RestartPreventExitStatus"
    grep -q '^ExecReload=/bin/kill -HUP $MAINPID$' "$units/kbridge@.service" || fail "ExecReload"
    grep -q '^ExecStart=/usr/bin/kbridge run /etc/kbridge/kbridge.yaml ' "$units/kbridge.service" ||
        fail "kbridge.service runs /etc/kbridge/kbridge.yaml"
    # verify checks that ExecStart='s binary exists: the units name the unpacked one here.
    verify=$work/verify
    mkdir -p "$verify"
    for unit in kbridge.service kbridge@.service; do
        sed "s|/usr/bin/kbridge|$kbridge|" "$units/$unit" >"$verify/$unit"
    done
    ln -s kbridge@.service "$verify/kbridge@example.service"
    out=$(cd "$verify" && systemd-analyze verify --man=no ./kbridge.service ./kbridge@example.service 2>&1) ||
        fail "systemd-analyze verify: $out"
    [[ -z $out ]] || fail "systemd-analyze verify complains: $out"
fi

# The postinst's work, done in the throwaway root: the user, then its directories.
if [[ $EUID -eq 0 ]] && command -v systemd-sysusers >/dev/null; then
    mkdir -p "$root/etc" && touch "$root/etc/passwd" "$root/etc/group" && echo "adm:x:4:" >"$root/etc/group"
    systemd-sysusers --root="$root" >/dev/null 2>&1 || fail "systemd-sysusers --root"
    uid=$(awk -F: '$1 == "kbridge" {print $3}' "$root/etc/passwd")
    [[ -n $uid ]] || fail "sysusers.d created no kbridge user"
    systemd-tmpfiles --root="$root" --create kbridge.conf >/dev/null 2>&1 || fail "systemd-tmpfiles --create"
    [[ $(stat -c '%u %a' "$root/var/lib/kbridge") == "$uid 750" ]] || fail "/var/lib/kbridge: $(stat -c '%u %a' "$root/var/lib/kbridge")"
    [[ $(stat -c '%u %a' "$root/var/log/kbridge") == "$uid 750" ]] || fail "/var/log/kbridge"
    [[ $(stat -c '%a' "$root/etc/kbridge") == 2750 ]] || fail "/etc/kbridge: $(stat -c '%a %g' "$root/etc/kbridge")"
fi

((failures == 0)) || { echo "$failures check(s) failed" >&2; exit 1; }
echo "package checks passed: $deb"
