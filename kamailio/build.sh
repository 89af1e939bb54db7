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
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CACHE=${KAMAILIO_SRC_CACHE:-$ROOT/target/kamailio-src}
OUT=${FLOODGATE_MODULE_OUT:-$ROOT/target/kamailio-module}
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
if [ ! -f "$TREE/src/config.mak" ]; then
    say "make cfg (FLAVOUR=kamailio prefix=/usr, dpkg-buildflags, as debian/rules)"
    make -s -C "$TREE" cfg quiet=silent prefix=/usr cfg_target=/etc/kamailio/ FLAVOUR=kamailio \
        CC_EXTRA_OPTS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS) -DVERSION_NODATE" \
        LD_EXTRA_OPTS="$(dpkg-buildflags --get LDFLAGS)" >/dev/null
fi
C_DEFS=$(sed -n 's/^C_DEFS= *//p' "$TREE/src/config.mak")
PMUTEX=$(sed -n 's/^CC_PMUTEX_OPTS= *//p' "$TREE/src/config.mak")
mkdir -p "$OUT"
printf '#include <stdio.h>\n#include "core/ver_defs.h"\nint main(void){ printf("%%s|%%s\\n", VERSION, SER_COMPILE_FLAGS); return 0; }\n' > "$OUT/flags_check.c"
eval "gcc $C_DEFS $PMUTEX -I'$TREE/src' -o '$OUT/flags_check' '$OUT/flags_check.c'"
built=$("$OUT/flags_check")
installed="$KAM_VERSION|$(kamailio -I | sed -n 's/^ *Compile flags: //p')"
if [ "$built" != "$installed" ]; then
    printf 'module flags:    %s\nkamailio -I:     %s\n' "$built" "$installed" >&2
    die "the configured source tree's compile flags differ from the installed kamailio's"
fi
say "compile flags equal kamailio -I: ${installed#*|}"

# --- 4. libfloodgate.a ---------------------------------------------------------
# FLOODGATE_LIB=/path/libfloodgate.a uses a library built elsewhere.
if [ -n "${FLOODGATE_LIB:-}" ]; then
    LIB=$FLOODGATE_LIB
    say "using $LIB"
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
nm -D --defined-only "$OUT/floodgate.so" | grep -qw exports || die "floodgate.so exports no 'exports'"
if nm -D --defined-only "$OUT/floodgate.so" | grep -q ' T fg_'; then die "floodgate.so exports libfloodgate's symbols"; fi
say "built $OUT/floodgate.so ($(du -h "$OUT/floodgate.so" | cut -f1)); load it with loadmodule \"$OUT/floodgate.so\""
