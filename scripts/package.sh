#!/usr/bin/env bash
# Builds kbridge_<version>_<arch>.deb from the CMake install rules: /usr/bin/kbridge, its man
# pages and bash/zsh completions, kbridge.service and kbridge@.service, /etc/kbridge with an
# example, and the kbridge user with /var/lib/kbridge (sysusers.d and tmpfiles.d, applied by the
# postinst). Then checks it with lintian when installed (an error fails the build).
#   scripts/package.sh [--build-dir DIR] [--out DIR] [--no-lintian]
# Without --build-dir it builds a Release tree in build-package/. No network, no root needed.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$KBRIDGE_ROOT"
umask 022

build_dir="" out_dir="$KBRIDGE_ROOT" lintian=1
maintainer=${KBRIDGE_MAINTAINER:-kbridge maintainers <kbridge-maintainers@users.noreply.github.com>}
while (($#)); do
    case $1 in
        --build-dir) build_dir=$2; shift 2 ;;
        --out) out_dir=$2; shift 2 ;;
        --no-lintian) lintian=0; shift ;;
        *) echo "usage: $0 [--build-dir DIR] [--out DIR] [--no-lintian]" >&2; exit 2 ;;
    esac
done
if [[ -z $build_dir ]]; then
    ensure_packages "${KBRIDGE_PACKAGES[@]}"
    build_dir=build-package
    say "build (Release) in $build_dir"
    # Debian's hardening flags (stack protector, fortify, relro, bindnow), as debhelper uses.
    export DEB_BUILD_MAINT_OPTIONS=hardening=+all
    build_kbridge "$build_dir" -DCMAKE_BUILD_TYPE=Release -DKBRIDGE_TESTS=OFF \
        "-DCMAKE_CXX_FLAGS=$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)" \
        "-DCMAKE_EXE_LINKER_FLAGS=$(dpkg-buildflags --get LDFLAGS)"
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
chmod 755 "$stage"
DESTDIR=$stage cmake --install "$build_dir" --prefix /usr --strip >/dev/null
strip --remove-section=.comment --remove-section=.note "$stage/usr/bin/kbridge"  # as dh_strip

version=$("$stage/usr/bin/kbridge" --version | awk '{print $2}')
arch=$(dpkg --print-architecture)
deb="$out_dir/kbridge_${version}_${arch}.deb"

# Debian's documentation: copyright and a changelog (a native package: changelog.gz).
doc=$stage/usr/share/doc/kbridge
install -d "$doc"
install -m 644 packaging/debian/copyright "$doc/copyright"
when=$(git log -1 --format=%cD 2>/dev/null || date -R)
printf 'kbridge (%s) unstable; urgency=medium\n\n  * Release %s.\n\n -- %s  %s\n' \
    "$version" "$version" "$maintainer" "$when" | gzip -9n >"$doc/changelog.gz"
# The config files are 0640 on purpose (secrets): say so to lintian.
install -d "$stage/usr/share/lintian/overrides"
install -m 644 packaging/debian/lintian-overrides "$stage/usr/share/lintian/overrides/kbridge"

# Control files: dependencies from the binary's libraries, conffiles = everything in /etc.
install -d "$stage/DEBIAN"
shlibs=$(
    tmp=$(mktemp -d)
    mkdir "$tmp/debian"
    printf 'Source: kbridge\n\nPackage: kbridge\nArchitecture: any\n' >"$tmp/debian/control"
    cd "$tmp" && dpkg-shlibdeps -O "$stage/usr/bin/kbridge" 2>/dev/null | sed -n 's/^shlibs:Depends=//p'
    rm -rf "$tmp"
)
[[ -n $shlibs ]] || { echo "package.sh: dpkg-shlibdeps found no dependencies" >&2; exit 1; }
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@DEPENDS@/$shlibs/" -e "s/@SIZE@/$size/" \
    -e "s|@MAINTAINER@|$maintainer|" \
    packaging/debian/control.in >"$stage/DEBIAN/control"
(cd "$stage" && find etc -type f | sed 's|^|/|' | sort) >"$stage/DEBIAN/conffiles"
install -m 755 packaging/debian/postinst packaging/debian/postrm "$stage/DEBIAN/"
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) \
    >"$stage/DEBIAN/md5sums"
chmod 644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles" "$stage/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
say "built $deb"
if ((lintian)) && command -v lintian >/dev/null; then
    # Errors fail the build; warnings and info are shown.
    lintian --fail-on error "$deb" 2> >(grep -v 'running with root privileges' >&2)
fi
echo "$deb"
