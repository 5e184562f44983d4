#!/bin/sh
# Builds the fuzz targets with clang's libFuzzer (plus ASan and UBSan) and
# runs each for the given number of seconds (default 60).
#
#   fuzz/run.sh [seconds] [target...]
#       targets: json_parse key_decode id_parse wasm_sections pkg_parse
#                sourcemap_parse validator_compile http_head http_chunked
#                ws_frames cursor sync_msg dotenv jwt
#
# Seeds are read from fuzz/corpus/<name>/ and never modified: new inputs go
# to $CVX_FUZZ_DIR/corpus-<target> (default dir ${TMPDIR:-/tmp}/cvx-fuzz),
# next to the binaries and any crash-* reproducers. Re-run a crash with:
#   $CVX_FUZZ_DIR/<target>_fuzz <crash-file>
set -eu

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"json_parse key_decode id_parse wasm_sections pkg_parse sourcemap_parse validator_compile http_head http_chunked ws_frames cursor sync_msg dotenv jwt"}

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=${CVX_FUZZ_DIR:-${TMPDIR:-/tmp}/cvx-fuzz}
cc=${CC_FUZZ:-clang}
mkdir -p "$work"

if ! command -v "$cc" >/dev/null 2>&1; then
    echo "run.sh: $cc not found; on Debian: apt-get install clang libclang-rt-14-dev" >&2
    exit 2
fi

flags="-std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1 -Wall -Wextra -Werror
       -Wno-unused-parameter -fno-omit-frame-pointer
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined"

# Short runs (./test's 15 s) only catch what breaks quickly: say so, and
# where the long runs' figures are.
kind=
[ "$seconds" -lt 60 ] && kind=" (smoke run; long runs and their results: fuzz/README.md)"

status=0
for t in $targets; do
    # extra_src: sources beyond util/ and value/ (binary.c, app.c and
    # sourcemap.c need nothing from Wasmtime; the wasm target stands in for
    # its module object; protocol.c is the sync layer's pure part).
    extra_src=
    case $t in
    json_parse) corpus=json; extra="-dict=$here/json.dict -max_len=8192" ;;
    key_decode) corpus=key; extra="-max_len=1024" ;;
    id_parse) corpus=id; extra="-max_len=64" ;;
    wasm_sections)
        corpus=wasm; extra="-dict=$here/wasm.dict -max_len=4096"
        extra_src="$root/src/wasm/binary.c $root/src/abi/app.c $root/src/abi/sourcemap.c" ;;
    pkg_parse) corpus=pkg; extra="-max_len=4096" ;;
    sourcemap_parse)
        corpus=sourcemap; extra="-dict=$here/sourcemap.dict -max_len=4096"
        extra_src="$root/src/abi/sourcemap.c" ;;
    validator_compile) corpus=validator; extra="-dict=$here/validator.dict -max_len=4096" ;;
    dotenv) corpus=dotenv; extra="-max_len=2048" ;;
    jwt)
        corpus=jwt; extra="-max_len=8192"
        extra_src="$root/src/auth/jwt.c $root/src/auth/identity.c" ;;
    http_head)
        corpus=http_head; extra="-max_len=8192"
        extra_src="$root/src/server/http_parse.c" ;;
    http_chunked)
        corpus=http_chunked; extra="-max_len=8192"
        extra_src="$root/src/server/http_parse.c" ;;
    ws_frames)
        corpus=ws_frames; extra="-max_len=8192"
        extra_src="$root/src/server/ws_frame.c" ;;
    cursor)
        corpus=cursor; extra="-max_len=1024"
        extra_src="$root/src/store/cursor.c" ;;
    sync_msg)
        corpus=sync_msg; extra="-dict=$here/sync_msg.dict -max_len=4096"
        extra_src="$root/src/sync/protocol.c" ;;
    *) echo "run.sh: unknown target $t" >&2; exit 2 ;;
    esac
    bin="$work/${t}_fuzz"
    echo "== building $t"
    # shellcheck disable=SC2086
    $cc $flags -I"$root/src" "$root"/src/util/*.c "$root"/src/value/*.c $extra_src "$here/${t}_fuzz.c" \
        -lcrypto -lm -o "$bin"
    mkdir -p "$work/corpus-$t"
    echo "== running $t for ${seconds}s$kind"
    # shellcheck disable=SC2086
    if ! (cd "$work" && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
        "$bin" -max_total_time="$seconds" -print_final_stats=1 $extra "$work/corpus-$t" \
        "$here/corpus/$corpus"); then
        echo "== $t FAILED: see crash-* files in $work" >&2
        status=1
    fi
done
exit $status
