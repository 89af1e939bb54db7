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
#                                    the extracted dev package, and Debian's
#                                    own kamailio of that arch (fetched by
#                                    kamailio/build.sh) under qemu-user with
#                                    the packaged floodgate.so answering the
#                                    same sipp calls.
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
KAM_PID=""; KAM_KIDS=""; SIPP_PID=""; INSTALLED=0

installed_pkgs() { local p; for p in "${PKGS[@]}"; do dpkg-query -W -f '${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^.i' && printf '%s ' "$p"; done; true; }
purge() { DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq "$@" >"$WORK/purge.log" 2>&1 || { cat "$WORK/purge.log" >&2; return 1; }; }
. "$ROOT/kamailio/procs.sh"
kam_stop() {
    [ -n "$KAM_PID" ] || return 0
    # shellcheck disable=SC2086 # one word per child pid
    stop_kamailio "$KAM_PID" $KAM_KIDS
    KAM_PID=""; KAM_KIDS=""
}
cleanup() {
    local rc=$?
    trap - EXIT
    [ -n "$SIPP_PID" ] && { kill -KILL "$SIPP_PID" 2>/dev/null || true; wait "$SIPP_PID" 2>/dev/null || true; }
    if [ "$rc" -ne 0 ]; then for l in "$WORK"/kamailio-*.log; do [ -f "$l" ] && { echo "---- last lines of $l"; tail -n 20 "$l"; }; done; fi
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

# kam_sipp LABEL CFG MODULE_SO KAMAILIO_CMD...: checks CFG with `kamailio -c`,
# starts kamailio with it in the foreground on 127.0.0.1:$KAM_PORT (bounded
# wait for kamcmd), checks that the process mapped MODULE_SO (the packaged
# file), sends 3 INVITEs with sipp (kamailio/uac_pl.xml) for
# pl_check("deb", "TAILDROP", 2) in one window (want 2 x 200, 1 x 503),
# reads the pipe back through RPC (kamcmd pl.list deb: counter 3), and stops
# kamailio and its children.
kam_sipp() {
    local label=$1 cfg=$2 module=$3; shift 3
    local kam=("$@") ctl="$WORK/ctl-$label" run="$WORK/run-$label" log="$WORK/kamailio-$label.log" p
    for p in "$KAM_PORT" "$SIPP_PORT"; do
        if ss -Hlun "sport = :$p" 2>/dev/null | grep -q .; then fail "udp port $p is taken on this machine"; fi
    done
    mkdir -p "$run"
    local args=(-f "$cfg" -DD -E -Y "$run" -A "PORT=$KAM_PORT" -A "CTL_SOCK=\"unix:$ctl\"")
    "${kam[@]}" -c "${args[@]}" >"$log" 2>&1 || { cat "$log"; fail "$label: kamailio -c rejects $cfg"; }
    grep -q 'config file ok' "$log" || fail "$label: kamailio -c: $(tail -3 "$log")"
    "${kam[@]}" "${args[@]}" >>"$log" 2>&1 &
    KAM_PID=$!
    local up=0
    for _ in $(seq 300); do
        kill -0 "$KAM_PID" 2>/dev/null || { tail -20 "$log"; fail "$label: kamailio exited at start"; }
        if kamcmd -s "unix:$ctl" core.uptime >/dev/null 2>&1; then up=1; break; fi
        sleep 0.1
    done
    [ "$up" = 1 ] || fail "$label: kamailio does not answer kamcmd within 30 s"
    KAM_KIDS=$(pgrep -P "$KAM_PID" | tr '\n' ' ' || true)
    grep -q " $module\$" "/proc/$KAM_PID/maps" || fail "$label: kamailio has not mapped $module"
    ok "$label: $("${kam[@]}" -v | head -1 | sed 's/ *$//'), pid $KAM_PID, udp 127.0.0.1:$KAM_PORT, floodgate.so mapped from ${module%/floodgate.so}/"
    timeout 60 sipp "127.0.0.1:$KAM_PORT" -sf kamailio/uac_pl.xml -s deb -key algo TAILDROP -key limit 2 \
        -i 127.0.0.1 -p "$SIPP_PORT" -r 10 -m 3 -l 10 -nostdin -timeout 40s -recv_timeout 5s \
        -trace_screen -screen_file "$WORK/sipp-$label.screen" </dev/null >/dev/null 2>&1 &
    SIPP_PID=$!
    local src=0; wait "$SIPP_PID" || src=$?
    SIPP_PID=""
    local s200 s503
    s200=$(awk '$1=="200" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$WORK/sipp-$label.screen")
    s503=$(awk '$1=="503" && $2 ~ /^<-/ {v=$3} END {print v+0}' "$WORK/sipp-$label.screen")
    [ "$src" = 0 ] || { cat "$WORK/sipp-$label.screen"; fail "$label: sipp exit $src"; }
    [ "$s200" = 2 ] && [ "$s503" = 1 ] || { cat "$WORK/sipp-$label.screen"; fail "$label: 3 INVITEs under TAILDROP 2: $s200 x 200, $s503 x 503 (want 2 and 1)"; }
    ok "$label: sipp, 3 INVITEs, pl_check(\"deb\", \"TAILDROP\", 2): $s200 x 200, $s503 x 503"
    local list; list=$(kamcmd -s "unix:$ctl" pl.list deb | tr '\n' ' ')
    grep -Eq 'counter: 3( |$)' <<<"$list" || fail "$label: kamcmd pl.list deb: $list (want counter 3)"
    ok "$label: kamcmd pl.list deb: $(tr -s ' \t' ' ' <<<"$list")"
    kam_stop
    ok "$label: kamailio stopped"
}

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
    grep -q '^loadmodule "floodgate.so"$' packaging/kamailio-deb.cfg || fail "kamailio-deb.cfg must load floodgate.so by its bare name"
    if grep -q '^mpath' packaging/kamailio-deb.cfg; then fail "kamailio-deb.cfg must not set mpath"; fi
    kam_sipp amd64 packaging/kamailio-deb.cfg /usr/lib/x86_64-linux-gnu/kamailio/modules/floodgate.so kamailio

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
            arm64) gnu="aarch64-linux-gnu"; qemu="qemu-aarch64" ;;
            armhf) gnu="arm-linux-gnueabihf"; qemu="qemu-arm" ;;
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

        stage "$arch: Debian's $arch kamailio with the packaged floodgate.so, under $qemu, answers sipp"
        kam_ref=$(ls -d target/kamailio-src/*/ref-"$arch"/root 2>/dev/null | head -1)
        [ -n "$kam_ref" ] && [ -x "$kam_ref/usr/sbin/kamailio" ] || fail "no Debian $arch kamailio in target/kamailio-src/*/ref-$arch (kamailio/build.sh fetches it)"
        # The same config; mpath names the extracted package's module
        # directory, then Debian's $arch kamailio's own (sl, pv, ctl).
        sed "s|^loadmodule \"sl.so\"|mpath=\"$root/usr/lib/$gnu/kamailio/modules/:$kam_ref/usr/lib/$gnu/kamailio/modules/\"\n&|" \
            packaging/kamailio-deb.cfg >"$WORK/kamailio-$arch.cfg"
        kam_sipp "$arch" "$WORK/kamailio-$arch.cfg" "$root/usr/lib/$gnu/kamailio/modules/floodgate.so" \
            "${run[@]}" "$kam_ref/usr/sbin/kamailio"
    done
}

case "${1:-}" in
    amd64) amd64 ;;
    cross) cross ;;
    *) echo "usage: bash packaging/ci-deb.sh amd64|cross" >&2; exit 2 ;;
esac
stage "${1} passed in $(( $(date +%s) - START ))s"
