#!/usr/bin/env bash
# CI of the Debian packages (.ci/run runs it; it runs by hand the same way,
# as root, on Debian bookworm amd64):
#
#   bash packaging/ci-deb.sh amd64   build the amd64 packages (lintian-gated),
#                                    apt-get install them, then: floodgate
#                                    --version; the README's C quick start
#                                    built with pkg-config against the
#                                    installed libfloodgate-dev and run;
#                                    Debian's kamailio with loadmodule
#                                    "floodgate.so" (bare name, no mpath)
#                                    answering sipp calls (200 under the
#                                    limit, 503 over it, counted through
#                                    RPC); apt-get purge, and no file of the
#                                    packages left.
#   bash packaging/ci-deb.sh cross   build the arm64 and armhf packages
#                                    (lintian-gated), extract them with
#                                    dpkg-deb -x and run under qemu-user:
#                                    floodgate --version, an app_rpt link
#                                    check against a table (admit, refuse,
#                                    usage), the C quick start built against
#                                    the extracted dev package, and the
#                                    module loaded by Debian's kamailio of
#                                    that arch (kamailio -c).
#
# Ports: kamailio 127.0.0.1:5394, sipp 127.0.0.1:5395 (udp). Everything it
# starts is stopped, and what it installed purged, by an EXIT trap.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
START=$(date +%s)
stage() { printf '\n==> [%4ss] deb: %s\n' "$(( $(date +%s) - START ))" "$*"; }
ok() { printf 'ok    %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "run as root (apt-get install / purge)"
VERSION=$(sed -n '/^\[workspace.package\]/,/^\[/ s/^version = "\(.*\)"/\1/p' Cargo.toml)
PKGS=(floodgate libfloodgate-dev kamailio-floodgate-module)
KAM_PORT=${FG_DEB_KAM_PORT:-5394}
SIPP_PORT=${FG_DEB_SIPP_PORT:-5395}
WORK=$(mktemp -d /tmp/floodgate-ci-deb.XXXXXX)
KAM_PID=""; SIPP_PID=""; INSTALLED=0

installed_pkgs() { local p; for p in "${PKGS[@]}"; do dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.i' && printf '%s ' "$p"; done; true; }
purge() { DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$@" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; return 1; }; }
kam_stop() {
    [ -n "$KAM_PID" ] || return 0
    kill -TERM "$KAM_PID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$KAM_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$KAM_PID" 2>/dev/null || true
    wait "$KAM_PID" 2>/dev/null || true
    KAM_PID=""
}
cleanup() {
    local rc=$?
    trap - EXIT
    [ -n "$SIPP_PID" ] && { kill -KILL "$SIPP_PID" 2>/dev/null || true; wait "$SIPP_PID" 2>/dev/null || true; }
    if [ "$rc" -ne 0 ] && [ -f "$WORK/kamailio.log" ]; then echo "---- last lines of kamailio.log"; tail -n 20 "$WORK/kamailio.log"; fi
    kam_stop
    if [ "$INSTALLED" = 1 ]; then
        local left; left=$(installed_pkgs)
        [ -z "$left" ] || { echo "cleanup: apt-get purge $left"; purge $left || true; }
    fi
    if [ "$rc" -eq 0 ]; then rm -rf "$WORK"; else echo "logs kept in $WORK"; printf '\n!!! packaging/ci-deb.sh FAILED (exit %s)\n' "$rc" >&2; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
amd64() {
    stage "make deb for amd64 (packaging/deb.sh amd64: dpkg-buildpackage, lintian --fail-on warning)"
    bash packaging/deb.sh amd64
    local debs=(target/deb/amd64/floodgate_"$VERSION"_amd64.deb target/deb/amd64/libfloodgate-dev_"$VERSION"_amd64.deb
                target/deb/amd64/kamailio-floodgate-module_"$VERSION"_amd64.deb)
    for d in "${debs[@]}"; do [ -f "$d" ] || fail "no $d"; done

    stage "apt-get install -y ./floodgate_${VERSION}_amd64.deb ./libfloodgate-dev_... ./kamailio-floodgate-module_..."
    local left; left=$(installed_pkgs)
    if [ -n "$left" ]; then echo "installed before the test (an earlier run?): $left; purging first"; purge $left; fi
    [ ! -e /usr/bin/floodgate ] || fail "/usr/bin/floodgate exists before the packages are installed"
    INSTALLED=1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${debs[@]/#/./}" >"$WORK/install.log" 2>&1 \
        || { cat "$WORK/install.log" >&2; fail "apt-get install"; }
    for p in "${PKGS[@]}"; do
        [ "$(dpkg-query -W -f '${Version}' "$p")" = "$VERSION" ] || fail "$p is not installed at $VERSION"
    done
    ok "installed: $(dpkg-query -W -f '${Package} ${Version} ${Architecture}, ' "${PKGS[@]}")"
    # Every file the packages hold, for the purge check.
    dpkg -L "${PKGS[@]}" | sort -u >"$WORK/files"
    # (/lib is /usr/lib on a merged-/usr system; ldconfig may name either.)
    ldconfig -p | grep -Eq "libfloodgate\.so\.0\.1 .*=> (/usr)?/lib/x86_64-linux-gnu/libfloodgate\.so\.0\.1$" \
        || fail "ldconfig's cache lacks libfloodgate.so.0.1 (the package's ldconfig trigger)"
    ok "ldconfig -p: $(ldconfig -p | grep libfloodgate | sed 's/^\s*//' | paste -sd ';')"

    stage "floodgate --version (the installed /usr/bin/floodgate)"
    out=$(/usr/bin/floodgate --version)
    [ "$out" = "floodgate $VERSION" ] || fail "floodgate --version: '$out' (want 'floodgate $VERSION')"
    ok "$out"

    stage "the README's C quick start, built with pkg-config against the installed libfloodgate-dev (shared, then static) and run"
    local readme_c; readme_c=$(awk '/^```c$/{f=1;next} /^```$/{f=0} f' README.md)
    [ "$readme_c" = "$(cat c-examples/quickstart.c)" ] || fail "README's C quick start differs from c-examples/quickstart.c"
    local pc=(env -u PKG_CONFIG_PATH -u PKG_CONFIG_LIBDIR pkg-config)
    [ "$("${pc[@]}" --modversion floodgate)" = "$VERSION" ] || fail "pkg-config --modversion floodgate"
    [ "$("${pc[@]}" --variable=libdir floodgate)" = /usr/lib/x86_64-linux-gnu ] || fail "floodgate.pc libdir: $("${pc[@]}" --variable=libdir floodgate)"
    ok "pkg-config floodgate: $("${pc[@]}" --modversion floodgate), $("${pc[@]}" --cflags --libs floodgate)"
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Wpedantic -Werror c-examples/quickstart.c $("${pc[@]}" --cflags --libs floodgate) -o "$WORK/quickstart"
    readelf -d "$WORK/quickstart" | grep -q 'NEEDED.*\[libfloodgate.so.0.1\]' || fail "quickstart does not record libfloodgate.so.0.1"
    ldd "$WORK/quickstart" | grep -Eq 'libfloodgate\.so\.0\.1 => (/usr)?/lib/x86_64-linux-gnu/libfloodgate\.so\.0\.1 ' || fail "quickstart: $(ldd "$WORK/quickstart")"
    env -u LD_LIBRARY_PATH "$WORK/quickstart" | tee "$WORK/quickstart.out"
    grep -q "request 4: -1 (drop)" "$WORK/quickstart.out" || fail "quick start: the 4th request should drop"
    # shellcheck disable=SC2046
    cc -std=c99 -Wall -Wextra -Wpedantic -Werror c-examples/quickstart.c $("${pc[@]}" --cflags floodgate) \
        /usr/lib/x86_64-linux-gnu/libfloodgate.a $("${pc[@]}" --static --libs-only-l floodgate | sed 's/-lfloodgate //') -o "$WORK/quickstart_static"
    "$WORK/quickstart_static" | grep -q "request 4: -1 (drop)" || fail "static quick start"
    ok "quick start: shared (libfloodgate.so.0.1 from /usr/lib/x86_64-linux-gnu) and static (libfloodgate.a)"

    stage "Debian's kamailio with loadmodule \"floodgate.so\" (bare name, no mpath: the package's module directory) answers sipp"
    for p in "$KAM_PORT" "$SIPP_PORT"; do
        if ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then fail "udp port $p is taken on this machine"; fi
    done
    grep -q '^loadmodule "floodgate.so"$' packaging/kamailio-deb.cfg || fail "kamailio-deb.cfg must load floodgate.so by its bare name"
    if grep -q '^mpath' packaging/kamailio-deb.cfg; then fail "kamailio-deb.cfg must not set mpath"; fi
    local ctl="$WORK/ctl" args
    args=(-f packaging/kamailio-deb.cfg -DD -E -Y "$WORK/run" -A "PORT=$KAM_PORT" -A "CTL_SOCK=\"unix:$ctl\"")
    mkdir -p "$WORK/run"
    kamailio -c "${args[@]}" >"$WORK/kamailio.log" 2>&1 || { cat "$WORK/kamailio.log"; fail "kamailio -c rejects packaging/kamailio-deb.cfg"; }
    kamailio "${args[@]}" >>"$WORK/kamailio.log" 2>&1 &
    KAM_PID=$!
    local up=0
    for _ in $(seq 100); do
        kill -0 "$KAM_PID" 2>/dev/null || fail "kamailio exited at start"
        if kamcmd -s "unix:$ctl" core.uptime >/dev/null 2>&1; then up=1; break; fi
        sleep 0.1
    done
    [ "$up" = 1 ] || fail "kamailio does not answer kamcmd within 10 s"
    grep -q ' /usr/lib/x86_64-linux-gnu/kamailio/modules/floodgate.so$' "/proc/$KAM_PID/maps" \
        || fail "kamailio has not mapped /usr/lib/x86_64-linux-gnu/kamailio/modules/floodgate.so"
    ok "kamailio pid $KAM_PID on udp 127.0.0.1:$KAM_PORT, floodgate.so mapped from /usr/lib/x86_64-linux-gnu/kamailio/modules/"
    # 3 calls, pl_check("deb", "TAILDROP", 2) in one 60 s window: 2 x 200, 1 x 503.
    timeout 30 sipp "127.0.0.1:$KAM_PORT" -sf kamailio/uac_pl.xml -s deb -key algo TAILDROP -key limit 2 \
        -i 127.0.0.1 -p "$SIPP_PORT" -r 10 -m 3 -l 10 -nostdin -timeout 20s -recv_timeout 3s \
        -trace_screen -screen_file "$WORK/sipp.screen" </dev/null >/dev/null 2>&1 &
    SIPP_PID=$!
    local src=0; wait "$SIPP_PID" || src=$?
    SIPP_PID=""
    local s200 s503
    s200=$(awk '$1=="200" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$WORK/sipp.screen")
    s503=$(awk '$1=="503" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$WORK/sipp.screen")
    [ "$src" = 0 ] || { cat "$WORK/sipp.screen"; fail "sipp exit $src"; }
    [ "$s200" = 2 ] && [ "$s503" = 1 ] || { cat "$WORK/sipp.screen"; fail "3 INVITEs under TAILDROP 2: $s200 x 200, $s503 x 503 (want 2 and 1)"; }
    ok "sipp: 3 INVITEs, pl_check(\"deb\", \"TAILDROP\", 2): $s200 x 200, $s503 x 503"
    local list; list=$(kamcmd -s "unix:$ctl" pl.list deb | tr '\n' ' ')
    grep -Eq 'counter: 3( |$)' <<<"$list" || fail "kamcmd pl.list deb: $list (want counter 3)"
    ok "kamcmd pl.list deb: $list"
    kam_stop
    ok "kamailio stopped"

    stage "apt-get purge -y ${PKGS[*]}, and no file of them left"
    purge "${PKGS[@]}" || fail "apt-get purge"
    INSTALLED=0
    [ -z "$(installed_pkgs)" ] || fail "still installed after purge: $(installed_pkgs)"
    for p in "${PKGS[@]}"; do
        if dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.[^n]'; then fail "$p: dpkg status $(dpkg-query -W -f '${db:Status-Abbrev}' "$p") after purge"; fi
    done
    local f left_files=""
    while read -r f; do
        # Directories the packages share with the system (/usr/lib, ...) stay.
        [ -d "$f" ] && [ ! -L "$f" ] && continue
        if [ -e "$f" ] || [ -L "$f" ]; then left_files="$left_files $f"; fi
    done <"$WORK/files"
    [ -z "$left_files" ] || fail "files left after purge:$left_files"
    for d in /usr/share/doc/floodgate /usr/share/doc/libfloodgate-dev /usr/share/doc/kamailio-floodgate-module; do
        [ ! -e "$d" ] || fail "$d left after purge"
    done
    if ldconfig -p | grep -q libfloodgate; then fail "ldconfig's cache still lists libfloodgate"; fi
    ok "purged: $(wc -l <"$WORK/files") paths checked, none of the packages' files left, ldconfig cache clean"
}

# ---------------------------------------------------------------------------
cross() {
    stage "make deb for arm64 and armhf (packaging/deb.sh arm64 armhf: cross dpkg-buildpackage, lintian --fail-on warning)"
    bash packaging/deb.sh arm64 armhf
    local arch gnu qemu root out t kam_ref
    for arch in arm64 armhf; do
        case "$arch" in
            arm64) gnu=aarch64-linux-gnu; qemu=qemu-aarch64 ;;
            armhf) gnu=arm-linux-gnueabihf; qemu=qemu-arm ;;
        esac
        local run=("$qemu" -L "/usr/$gnu")
        stage "$arch: dpkg-deb -x the three packages; floodgate --version and an app_rpt link check against a table under $qemu"
        root="$WORK/root-$arch"; mkdir -p "$root"
        for p in "${PKGS[@]}"; do
            dpkg-deb -x "target/deb/$arch/${p}_${VERSION}_$arch.deb" "$root"
            [ "$(dpkg-deb -f "target/deb/$arch/${p}_${VERSION}_$arch.deb" Architecture)" = "$arch" ] || fail "$p: not Architecture $arch"
        done
        local machine; machine=$(readelf -h "$root/usr/bin/floodgate" | sed -n 's/^ *Machine: *//p')
        [ "$machine" = "$( [ $arch = arm64 ] && echo AArch64 || echo ARM)" ] || fail "$arch floodgate is built for '$machine'"
        out=$("${run[@]}" "$root/usr/bin/floodgate" --version)
        [ "$out" = "floodgate $VERSION" ] || fail "$arch floodgate --version: '$out'"
        ok "$qemu floodgate --version: $out"
        t="$WORK/table-$arch"
        # Two AGI 'link' calls to node 2000 under max 1 (Asterisk's side of
        # the AGI protocol on stdin): the first is admitted with a lease, the
        # second refused; then usage counts the one link.
        local agi='agi_request: floodgate\nagi_channel: SIP/ci-0001\n\n200 result=1\n200 result=1\n'
        out=$(printf "$agi" | "${run[@]}" "$root/usr/bin/floodgate" --path "$t" agi link --node 2000 --max 1)
        grep -q '^SET VARIABLE FG_VERDICT "ADMIT"$' <<<"$out" || fail "$arch first agi link: $out"
        out=$(printf "$agi" | "${run[@]}" "$root/usr/bin/floodgate" --path "$t" agi link --node 2000 --max 1)
        grep -q '^SET VARIABLE FG_VERDICT "REFUSE"$' <<<"$out" || fail "$arch second agi link over max 1: $out"
        out=$("${run[@]}" "$root/usr/bin/floodgate" --path "$t" --json usage node/2000)
        [ "$out" = '{"key":"node/2000","usage":1}' ] || fail "$arch usage node/2000: $out"
        ok "$qemu floodgate agi link --node 2000 --max 1, twice: ADMIT then REFUSE; usage node/2000: $out"

        stage "$arch: the C quick start, cross-built with pkg-config against the extracted libfloodgate-dev, run under $qemu"
        local pc=(env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$root/usr/lib/$gnu/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$root" pkg-config)
        # shellcheck disable=SC2046
        "$gnu-gcc" -std=c99 -Wall -Wextra -Wpedantic -Werror c-examples/quickstart.c $("${pc[@]}" --cflags --libs floodgate) -o "$WORK/quickstart-$arch"
        out=$(LD_LIBRARY_PATH="$root/usr/lib/$gnu" "${run[@]}" "$WORK/quickstart-$arch")
        grep -q "request 4: -1 (drop)" <<<"$out" || fail "$arch quick start: $out"
        ok "$arch quick start against libfloodgate.so.0.1 from the package: $(grep -c '^request' <<<"$out") requests, the 4th dropped"

        stage "$arch: Debian's $arch kamailio loads the packaged floodgate.so (kamailio -c under $qemu)"
        kam_ref=$(ls -d target/kamailio-src/*/ref-"$arch"/root 2>/dev/null | head -1)
        [ -n "$kam_ref" ] && [ -x "$kam_ref/usr/sbin/kamailio" ] || fail "no Debian $arch kamailio in target/kamailio-src/*/ref-$arch (kamailio/build.sh fetches it)"
        sed "s|^loadmodule \"sl.so\"|mpath=\"$root/usr/lib/$gnu/kamailio/modules/:$kam_ref/usr/lib/$gnu/kamailio/modules/\"\n&|" \
            packaging/kamailio-deb.cfg >"$WORK/kamailio-$arch.cfg"
        if ! "${run[@]}" "$kam_ref/usr/sbin/kamailio" -c -f "$WORK/kamailio-$arch.cfg" >"$WORK/kamailio-$arch.log" 2>&1; then
            cat "$WORK/kamailio-$arch.log"; fail "Debian's $arch kamailio refuses the packaged module"
        fi
        grep -q 'config file ok' "$WORK/kamailio-$arch.log" || fail "$arch kamailio -c: $(tail -3 "$WORK/kamailio-$arch.log")"
        ok "$("${run[@]}" "$kam_ref/usr/sbin/kamailio" -v | head -1 | sed 's/ *$//'): config with loadmodule \"floodgate.so\" from the package: config file ok"
    done
}

case "${1:-}" in
    amd64) amd64 ;;
    cross) cross ;;
    *) echo "usage: bash packaging/ci-deb.sh amd64|cross" >&2; exit 2 ;;
esac
stage "${1} passed in $(( $(date +%s) - START ))s"
