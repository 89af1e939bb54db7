#!/usr/bin/env bash
# Builds floodgate's Debian packages (make deb):
#
#   bash packaging/deb.sh [amd64] [arm64] [armhf]     (default: all three)
#
# For each architecture, into target/deb/<arch>/:
#   floodgate_<v>_<arch>.deb                  the floodgate command, libfloodgate.so.<abi>
#   libfloodgate-dev_<v>_<arch>.deb           floodgate.h, libfloodgate.a, libfloodgate.so, floodgate.pc
#   kamailio-floodgate-module_<v>_<arch>.deb  floodgate.so in /usr/lib/<multiarch>/kamailio/modules/
# <v> is the workspace version (Cargo.toml). The packaging is an ordinary
# debhelper one (packaging/debian/): this script copies it into
# target/deb/<arch>/floodgate-<v>/debian/, writes debian/changelog for <v>
# and runs `dpkg-buildpackage -b -a<arch>` there (cross for arm64 and armhf,
# with Debian's cross gcc and rustup's targets), then lintian on every .deb
# with --fail-on warning (overrides, each with its reason, in
# packaging/debian/*.lintian-overrides).
#
# Needs (root installs them with apt-get if missing): debhelper, dpkg-dev, help2man,
# lintian; for cross builds gcc-aarch64-linux-gnu / gcc-arm-linux-gnueabihf,
# libc6-dev-arm64-cross / libc6-dev-armhf-cross, qemu-user and the rustup
# targets aarch64-unknown-linux-gnu / armv7-unknown-linux-gnueabihf. The
# Kamailio module needs Debian's kamailio installed (kamailio/build.sh).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
say() { printf -- '--- deb: %s\n' "$*"; }
die() { printf -- '!!! deb: %s\n' "$*" >&2; exit 1; }
ARCHS=("$@"); [ ${#ARCHS[@]} -gt 0 ] || ARCHS=(amd64 arm64 armhf)
BUILD_ARCH=$(dpkg --print-architecture)
for a in "${ARCHS[@]}"; do
    case "$a" in amd64|arm64|armhf) ;; *) die "unknown architecture '$a' (amd64, arm64, armhf)";; esac
    [ "$a" = "$BUILD_ARCH" ] || [ "$BUILD_ARCH" = amd64 ] || die "cross builds run on amd64 only"
done

need=""
for p in debhelper dpkg-dev lintian help2man; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
for a in "${ARCHS[@]}"; do
    case "$a" in
        arm64) pk="gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user" ;;
        armhf) pk="gcc-arm-linux-gnueabihf libc6-dev-armhf-cross qemu-user" ;;
        *) pk="" ;;
    esac
    for p in $pk; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
done
if [ -n "$need" ]; then
    [ "$(id -u)" -eq 0 ] || die "missing Debian packages:$need (apt-get install them)"
    say "apt-get install$need"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi

VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml")
[ -n "$VERSION" ] || die "no version in $ROOT/Cargo.toml [workspace.package]"
# Reproducible dates: the last commit's, else now.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
REV=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)

# crates TARGET PKG...: " name version: license" for every crate linked into
# PKG's outputs for TARGET (normal dependencies, no proc-macros, not ours).
crates() {
    local target=$1 args=() p; shift
    for p in "$@"; do args+=(-p "$p"); done
    (cd "$ROOT" && cargo tree -q "${args[@]}" -e normal,no-proc-macro --prefix none --format '{p}|{l}' --target "$target") \
        | sed 's/ (\*)$//' | grep -v ' (/' | sort -u \
        | awk -F'|' 'NF == 2 { split($1, a, " "); sub(/^v/, "", a[2]); printf " %s %s: %s\n", a[1], a[2], $2 }'
}
# fill FILE PLACEHOLDER CONTENT_FILE: the placeholder's line becomes the file.
fill() {
    awk -v ph="$2" -v cf="$3" '{ if (index($0, ph)) { while ((getline l < cf) > 0) print l } else print }' "$1" >"$1.new"
    mv "$1.new" "$1"
}
# font_stanza TARGET: a copyright stanza for the DejaVu fonts that the dejavu
# crate embeds into the command (floodgate simulate's charts), with their
# license text from the crate; nothing if the command has no such crate.
font_stanza() {
    local dir
    dir=$(cd "$ROOT" && cargo metadata -q --format-version 1 --filter-platform "$1" \
          | grep -o '"manifest_path":"[^"]*/dejavu-[0-9.]*/Cargo.toml"' | head -1 | sed 's/^"manifest_path":"//; s|/Cargo.toml"$||')
    [ -n "$dir" ] || return 0
    local lic; lic=$(ls "$dir"/assets/dejavu-fonts-ttf-*/LICENSE 2>/dev/null | head -1)
    [ -f "$lic" ] || die "the dejavu crate in $dir has no assets/dejavu-fonts-ttf-*/LICENSE"
    printf 'Files: %s/ttf/*\n' "$(basename "$(dirname "$lic")")"
    printf 'Copyright: 2003 Bitstream, Inc.\n 2006 Tavmjong Bah\n DejaVu changes are in the public domain\n'
    printf 'Comment: DejaVu Sans, embedded in /usr/bin/floodgate by the %s crate for\n the text of floodgate simulate'"'"'s charts.\n' "$(basename "$dir")"
    printf 'License: Bitstream-Vera and Arev\n'
    sed 's/[[:space:]]*$//; s/^$/./; s/^/ /' "$lic"
    printf '\n'
}

for arch in "${ARCHS[@]}"; do
    out="$ROOT/target/deb/$arch"
    src="$out/floodgate-$VERSION"
    rm -rf "$out"; mkdir -p "$src"
    cp -r "$ROOT/packaging/debian" "$src/debian"
    case "$arch" in
        amd64) rt=x86_64-unknown-linux-gnu ;;
        arm64) rt=aarch64-unknown-linux-gnu ;;
        armhf) rt=armv7-unknown-linux-gnueabihf ;;
    esac
    crates "$rt" floodgate-cli floodgate-ffi >"$out/crates-floodgate"
    crates "$rt" floodgate-ffi >"$out/crates-module"
    font_stanza "$rt" >"$out/font-stanza"
    fill "$src/debian/copyright" @STATIC_CRATES@ "$out/crates-floodgate"
    fill "$src/debian/copyright" @FONT_STANZA@ "$out/font-stanza"
    fill "$src/debian/kamailio-floodgate-module.copyright" @STATIC_CRATES@ "$out/crates-module"
    if grep -n '@[A-Z_]*@' "$src"/debian/*copyright; then die "unfilled placeholders in the copyright files"; fi
    cat > "$src/debian/changelog" <<CHANGELOG
floodgate ($VERSION) bookworm; urgency=medium

  * floodgate $VERSION, built from the repository (git $REV) by
    packaging/deb.sh.

 -- floodgate developers <floodgate@example.invalid>  $(date -u -R -d "@$SOURCE_DATE_EPOCH")
CHANGELOG
    say "$arch: dpkg-buildpackage -b -a$arch in ${src#$ROOT/}"
    # -d: the build dependencies are checked by hand (rustup's cargo is not
    # Debian's, and a cross build cannot install kamailio:<arch>).
    if ! (cd "$src" && FG_ROOT="$ROOT" dpkg-buildpackage -b -a"$arch" -d --no-sign >"$out/build.log" 2>&1); then
        tail -n 40 "$out/build.log" >&2
        die "$arch: dpkg-buildpackage failed (log: ${out#$ROOT/}/build.log)"
    fi
    debs=("$out"/*.deb)
    [ ${#debs[@]} -eq 3 ] || die "$arch: expected 3 .deb files, got: ${debs[*]}"
    for d in "${debs[@]}"; do
        say "$arch: $(basename "$d") ($(du -h "$d" | cut -f1)): $(dpkg-deb -f "$d" Depends)"
    done
    say "$arch: lintian --fail-on warning (overrides: packaging/debian/*.lintian-overrides)"
    # The gate: any error or warning that no override explains fails.
    # Info tags are printed (README explains them); the overridden tags and
    # their reasons are listed from the overrides file.
    if ! lintian --fail-on error,warning --display-level '>=info' "${debs[@]}" >"$out/lintian.log" 2>&1; then
        cat "$out/lintian.log" >&2
        die "$arch: lintian found errors or warnings"
    fi
    grep -v '^running with root privileges' "$out/lintian.log" | sed 's/^/      /' || true
    grep -h '^[a-z]' "$ROOT"/packaging/debian/*.lintian-overrides | sed 's/^/      overridden (reason in the file): /' 
done
say "built: $(cd "$ROOT" && ls target/deb/*/*.deb | tr '\n' ' ')"
