#!/usr/bin/env bash
# Builds the floodgate Kamailio module (floodgate.so) for Debian's installed
# kamailio, with libfloodgate.a linked in statically.
#
#   bash kamailio/build.sh        (from the repo root; root or sudo)
#
# 1. installs what it needs from Debian: kamailio (for its version and
#    `kamailio -I`), gcc, make, dpkg-dev;
# 2. fetches Debian bookworm's kamailio source package of exactly the
#    installed version (adds a deb-src entry for bookworm main if apt has
#    none) into target/kamailio-src/<version>/ (a cache: fetched once);
# 3. configures it as debian/rules does (`make cfg` with FLAVOUR=kamailio,
#    prefix=/usr and dpkg-buildflags), and checks that the compile flags it
#    gives equal the ones the installed binary reports (`kamailio -I`);
# 4. builds libfloodgate.a (cargo build --release -p floodgate-ffi);
# 5. builds floodgate.so in src/modules/floodgate/ of that tree with
#    Kamailio's own module makefiles, and copies it to
#    target/kamailio-module/floodgate.so.
# Nothing of Kamailio's source is kept in the repository.
#
# Cross builds, for Debian's arm64 or armhf kamailio (packaging/deb.sh uses
# them):
#   KAMAILIO_HOST_ARCH=arm64 bash kamailio/build.sh      (or armhf)
# configures a copy of the same source tree (tree-<arch>/) with the Debian
# cross compiler (aarch64-linux-gnu-gcc, arm-linux-gnueabihf-gcc) and that
# architecture's dpkg-buildflags, builds libfloodgate.a for the matching Rust
# target, and checks the tree's version string and compile flags against
# Debian's own kamailio binary of that architecture and version (fetched with
# apt-get download into a private apt state under the cache, and run with
# `kamailio -v` / `-I` under qemu-user): Kamailio refuses a module whose
# "kamailio 5.6.3 (<arch>/linux)" or flags differ from its own. Output:
# target/kamailio-module-<arch>/floodgate.so; the extracted reference
# kamailio stays in <cache>/<version>/ref-<arch>/root.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${KAMAILIO_SRC_CACHE:-$ROOT/target/kamailio-src}
HOST_ARCH=${KAMAILIO_HOST_ARCH:-$(dpkg --print-architecture)}
CROSS=""; [ "$HOST_ARCH" = "$(dpkg --print-architecture)" ] || CROSS=$HOST_ARCH
case "$CROSS" in
    "") RUST_TARGET=""; GNU_TYPE=""; QEMU="" ;;
    # Kamailio names the architecture from `uname -m` on Debian's arm64
    # build machines (aarch64): its compiler-macro detection knows no
    # aarch64, so a cross build must be told (KAM_ARCH). armhf is detected
    # from the compiler's macros ("arm"), as on Debian's armhf builders.
    arm64) RUST_TARGET=aarch64-unknown-linux-gnu; GNU_TYPE=aarch64-linux-gnu; QEMU=qemu-aarch64; KAM_ARCH=aarch64 ;;
    armhf) RUST_TARGET=armv7-unknown-linux-gnueabihf; GNU_TYPE=arm-linux-gnueabihf; QEMU=qemu-arm; KAM_ARCH="" ;;
    *) printf -- '!!! build: KAMAILIO_HOST_ARCH=%s: only arm64 and armhf cross builds are supported\n' "$CROSS" >&2; exit 2 ;;
esac
if [ -n "$CROSS" ]; then
    OUT=${FLOODGATE_MODULE_OUT:-$ROOT/target/kamailio-module-$CROSS}
else
    OUT=${FLOODGATE_MODULE_OUT:-$ROOT/target/kamailio-module}
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
say() { printf -- '--- build: %s\n' "$*"; }
die() { printf -- '!!! build: %s\n' "$*" >&2; exit 1; }

# --- 1. Debian packages -------------------------------------------------------
need=""
for p in kamailio gcc make dpkg-dev; do dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"; done
if [ -n "$need" ]; then
    say "apt-get install$need"
    $SUDO apt-get update -qq
    # Debian's kamailio package must not start a system service here.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
    $SUDO rm -f /usr/sbin/policy-rc.d; trap - EXIT
fi
DEB_VERSION=$(dpkg-query -W -f '${Version}' kamailio)
KAM_VERSION=$(kamailio -v | sed -n 's/^version: kamailio \([0-9.]*\).*/\1/p')
[ -n "$KAM_VERSION" ] || die "cannot read the version of /usr/sbin/kamailio"
say "installed kamailio $KAM_VERSION (Debian package $DEB_VERSION)"

# --- 2. the source package of the same version --------------------------------
TREE="$CACHE/$DEB_VERSION/tree"
if [ ! -f "$TREE/src/Makefile.defs" ]; then
    DL="$CACHE/$DEB_VERSION/dl"
    rm -rf "$DL" "$TREE"; mkdir -p "$DL"
    fetch() { (cd "$DL" && apt-get -o APT::Sandbox::User=root source --download-only "kamailio=$DEB_VERSION" >/dev/null 2>"$DL/apt.err"); }
    if ! fetch; then
        # No deb-src entry yet: add one for bookworm main on the mirror the
        # machine already uses.
        MIRROR=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1 || true)
        [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
        [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
        say "adding deb-src $MIRROR bookworm main (/etc/apt/sources.list.d/floodgate-debsrc.sources)"
        printf 'Types: deb-src\nURIs: %s\nSuites: bookworm\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$MIRROR" \
            | $SUDO tee /etc/apt/sources.list.d/floodgate-debsrc.sources >/dev/null
        $SUDO apt-get update -qq
        fetch || { cat "$DL/apt.err" >&2; die "apt-get source kamailio=$DEB_VERSION failed"; }
    fi
    say "fetched $(cd "$DL" && ls *.dsc) ($(du -sh "$DL" | cut -f1))"
    # apt checked the files against the signed Sources index; dpkg-source
    # only warns that it has no keyring to check the .dsc signature with.
    dpkg-source -x "$DL"/kamailio_*.dsc "$TREE" >/dev/null 2>"$DL/dpkg-source.err" \
        || { cat "$DL/dpkg-source.err" >&2; die "dpkg-source -x failed"; }
fi

# --- 3. configure as Debian does, and compare the flags -----------------------
CC="gcc"; NM="nm"; RUN=""; KAMAILIO_REF=(kamailio); REF_NAME="the installed kamailio"
if [ -n "$CROSS" ]; then
    CC=$GNU_TYPE-gcc; NM=$GNU_TYPE-nm; RUN="$QEMU -L /usr/$GNU_TYPE"
    command -v "$CC" >/dev/null || die "no $CC (apt-get install gcc-$GNU_TYPE libc6-dev-$CROSS-cross)"
    command -v "$QEMU" >/dev/null || die "no $QEMU (apt-get install qemu-user)"
    # A copy of the fetched tree, configured for $CROSS.
    XTREE="$CACHE/$DEB_VERSION/tree-$CROSS"
    if [ ! -f "$XTREE/src/Makefile.defs" ]; then
        rm -rf "$XTREE"; cp -a "$TREE" "$XTREE"; rm -f "$XTREE/src/config.mak"
    fi
    TREE=$XTREE
    # Debian's kamailio of this architecture and version, the reference.
    REF="$CACHE/$DEB_VERSION/ref-$CROSS"
    if [ ! -x "$REF/root/usr/sbin/kamailio" ]; then
        rm -rf "$REF"; mkdir -p "$REF/lists/partial" "$REF/cache/archives/partial" "$REF/root"
        MIRROR=$(sed -n 's/^URIs: *\([^ ]*\).*/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1 || true)
        [ -n "$MIRROR" ] || MIRROR=$(awk '$1=="deb" && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
        [ -n "$MIRROR" ] || MIRROR=http://deb.debian.org/debian
        printf 'deb [arch=%s signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] %s bookworm main\n' "$CROSS" "$MIRROR" > "$REF/sources.list"
        APTO=(-o "Dir::Etc::SourceList=$REF/sources.list" -o Dir::Etc::SourceParts=/nonexistent
              -o "Dir::State::Lists=$REF/lists" -o "Dir::Cache=$REF/cache" -o "APT::Architectures::=$CROSS"
              -o Acquire::Languages=none -o APT::Sandbox::User=root)
        say "apt-get download kamailio:$CROSS=$DEB_VERSION (private apt state in $REF, signed index)"
        apt-get "${APTO[@]}" update -qq >"$REF/apt.log" 2>&1 || { cat "$REF/apt.log" >&2; die "apt-get update for $CROSS failed"; }
        (cd "$REF" && apt-get "${APTO[@]}" download "kamailio:$CROSS=$DEB_VERSION" >>"$REF/apt.log" 2>&1) \
            || { cat "$REF/apt.log" >&2; die "apt-get download kamailio:$CROSS=$DEB_VERSION failed"; }
        dpkg-deb -x "$REF"/kamailio_*_"$CROSS".deb "$REF/root"
        rm -rf "$REF/lists" "$REF/cache"
    fi
    KAMAILIO_REF=("$QEMU" -L "/usr/$GNU_TYPE" "$REF/root/usr/sbin/kamailio"); REF_NAME="Debian's $CROSS kamailio"
    KAM_VERSION=$("${KAMAILIO_REF[@]}" -v | sed -n 's/^version: kamailio \([0-9.]*\).*/\1/p')
    [ -n "$KAM_VERSION" ] || die "cannot run Debian's $CROSS kamailio under $QEMU"
    say "reference: Debian's kamailio $DEB_VERSION for $CROSS under $QEMU: $("${KAMAILIO_REF[@]}" -v | head -1)"
fi
# dpkg-buildflags for the host architecture (dpkg-architecture -a), with
# the hardening=+all that Debian's kamailio debian/rules exports
# (-Wl,-z,now: its modules are linked BIND_NOW too).
bf() { DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-architecture -a"$HOST_ARCH" -c dpkg-buildflags --get "$1" 2>/dev/null; }
CC_EXTRA="$(bf CPPFLAGS) $(bf CFLAGS) -DVERSION_NODATE"
LD_EXTRA="$(bf LDFLAGS)"
# The configuration is cached with the tree; redone when its inputs change.
CFG_ID="CC=$CC ARCH=${KAM_ARCH:-} CC_EXTRA_OPTS=$CC_EXTRA LD_EXTRA_OPTS=$LD_EXTRA"
if [ ! -f "$TREE/src/config.mak" ] || [ "$(cat "$TREE/src/.floodgate-cfg" 2>/dev/null)" != "$CFG_ID" ]; then
    say "make cfg (FLAVOUR=kamailio prefix=/usr, dpkg-buildflags, as debian/rules)${CROSS:+, for $CROSS with $CC}"
    make -s -C "$TREE" cfg quiet=silent prefix=/usr cfg_target=/etc/kamailio/ FLAVOUR=kamailio \
        CC="$CC" ${KAM_ARCH:+ARCH=$KAM_ARCH} CC_EXTRA_OPTS="$CC_EXTRA" LD_EXTRA_OPTS="$LD_EXTRA" \
        >/dev/null 2>"$TREE/cfg.err" || { cat "$TREE/cfg.err" >&2; die "make cfg failed"; }
    printf '%s' "$CFG_ID" > "$TREE/src/.floodgate-cfg"
fi
C_DEFS=$(sed -n 's/^C_DEFS= *//p' "$TREE/src/config.mak")
PMUTEX=$(sed -n 's/^CC_PMUTEX_OPTS= *//p' "$TREE/src/config.mak")
mkdir -p "$OUT"
# The module's SER_FULL_VERSION ("kamailio 5.6.3 (x86_64/linux)") and
# SER_COMPILE_FLAGS, which Kamailio compares with its own when it loads a
# module, against the reference binary's -v and -I.
printf '#include <stdio.h>\n#include "core/ver_defs.h"\nint main(void){ printf("%%s|%%s\\n", SER_FULL_VERSION, SER_COMPILE_FLAGS); return 0; }\n' > "$OUT/flags_check.c"
eval "$CC $C_DEFS $PMUTEX -I'$TREE/src' -o '$OUT/flags_check' '$OUT/flags_check.c'"
built=$($RUN "$OUT/flags_check")
installed="$("${KAMAILIO_REF[@]}" -v | sed -n 's/^version: *//p' | sed 's/ *$//')|$("${KAMAILIO_REF[@]}" -I | sed -n 's/^ *Compile flags: //p')"
if [ "$built" != "$installed" ]; then
    printf 'module version|flags:    %s\nkamailio -v|-I:           %s\n' "$built" "$installed" >&2
    die "the configured source tree's version string or compile flags differ from those of $REF_NAME"
fi
say "version and compile flags equal $REF_NAME -v / -I: ${installed%%|*}; ${installed#*|}"

# --- 4. libfloodgate.a ---------------------------------------------------------
# FLOODGATE_LIB=/path/libfloodgate.a uses a library built elsewhere.
if [ -n "${FLOODGATE_LIB:-}" ]; then
    LIB=$FLOODGATE_LIB
    say "using $LIB"
elif [ -n "$CROSS" ]; then
    say "cargo build --release -p floodgate-ffi --target $RUST_TARGET"
    lv="CARGO_TARGET_$(echo "$RUST_TARGET" | tr 'a-z-' 'A-Z_')_LINKER"
    (cd "$ROOT" && env "$lv=${!lv:-$CC}" cargo build --release -q -p floodgate-ffi --target "$RUST_TARGET")
    LIB="$ROOT/target/$RUST_TARGET/release/libfloodgate.a"
else
    say "cargo build --release -p floodgate-ffi"
    (cd "$ROOT" && cargo build --release -q -p floodgate-ffi)
    LIB="$ROOT/target/release/libfloodgate.a"
fi
[ -f "$LIB" ] || die "no $LIB"

# --- 5. the module ------------------------------------------------------------
MOD="$TREE/src/modules/floodgate"
rm -rf "$MOD"; mkdir -p "$MOD"
cp "$HERE/floodgate.c" "$MOD/"
cp "$HERE/Makefile.module" "$MOD/Makefile"
# NETWORK pipes: pipelimit's own reader of the bytes waiting on Kamailio's
# sockets, from the same source tree.
cp "$TREE/src/modules/pipelimit/pl_statistics.c" "$TREE/src/modules/pipelimit/pl_statistics.h" "$MOD/"
say "make -C src/modules/floodgate (Kamailio $KAM_VERSION source tree, libfloodgate.a linked in)"
if ! make -C "$MOD" quiet=verbose FLOODGATE_LIB="$LIB" FLOODGATE_INCLUDE="$ROOT/include" >"$OUT/make.log" 2>&1; then
    cat "$OUT/make.log" >&2; die "module build failed"
fi
if grep -E "floodgate\.c.*(warning|error)" "$OUT/make.log" >/dev/null; then
    grep -E -A3 "warning|error" "$OUT/make.log" >&2 || true
fi
cp "$MOD/floodgate.so" "$OUT/floodgate.so"
$NM -D --defined-only "$OUT/floodgate.so" | grep -qw exports || die "floodgate.so exports no 'exports'"
if $NM -D --defined-only "$OUT/floodgate.so" | grep -q ' T fg_'; then die "floodgate.so exports libfloodgate's symbols"; fi
say "built $OUT/floodgate.so ($(du -h "$OUT/floodgate.so" | cut -f1)); load it with loadmodule \"$OUT/floodgate.so\""
