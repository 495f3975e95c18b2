#!/bin/bash
# kinglet — runs Frama-C's EVA on each driver tests/prove/prove_NAME.c and
# checks that the proof is complete and not vacuous (see README.md).
#
#   tests/prove/prove.sh fast|full BUILD_DIR [NAME...]
#
# For each codec: frama-c -eva with a 32-bit machdep (gcc_x86_32), the
# driver and the core/ files it needs, PROVE_N set per codec (fast: the
# check-prove size, full: the make prove size). A codec passes when
#   - EVA's summary is printed and says "0 alarms generated", and no
#     "[eva:alarm]" line was printed (out of bounds, overflow, uninitialised
#     read, invalid pointer, division by zero, shift, failed precondition...);
#   - no kernel or EVA error, no "NON TERMINATING" function, no
#     non-terminating call or degeneration;
#   - the driver's last statement was reached (Frama_C_show_each_done), and
#     every marker the codec lists below was reached: the outcomes the
#     parser must be able to reach (a success and an error), so a proof
#     where the parser's body is dead fails.
# Prints per codec: N, chunking, alarms, time; then
# "check-prove: P passed, F failed (...)" (or "prove: ..." for full).
# Exit status 1 on any failure, naming the codec and the reason. Logs:
# BUILD_DIR/prove/NAME-MODE.log.
set -u
mode=${1:?fast|full}
build=${2:?build dir}
shift 2
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root" || exit 1
label=check-prove
[ "$mode" = full ] && label=prove

if ! command -v frama-c >/dev/null 2>&1; then
    echo "$label: frama-c is not installed: run make deps (or: sudo apt-get install frama-c-base)"
    exit 1
fi

# Per codec: core/ files | fast N | full N | markers | chunking (text)
declare -A FILES NFAST NFULL MARKS CHUNK OPTS
FILES[base64]="core/kl_base64.c core/kl_xw.c core/kl_xml.c"
NFAST[base64]=12
NFULL[base64]=24
MARKS[base64]="decode_ok decode_err encode_ok encode_full"
CHUNK[base64]="decode in one piece, every output capacity 0..N; encode in two chunks cut at any 0..len (full writer), and in one chunk into every writer capacity"
FILES[scram]="core/kl_scram.c core/kl_base64.c core/kl_xw.c core/kl_xml.c"
NFAST[scram]=12
NFULL[scram]=16
MARKS[scram]="first_ok first_err final_ok final_err"
CHUNK[scram]="a message arrives whole: every base64 text of 0..N bytes, alone and after a known base64 beginning (server-first: r= our nonce extended, s=, i=; server-final: v= and most of the signature); SHA-1, fixed-output crypto stubs"
FILES[http]="core/kl_http.c"
NFAST[http]=4
NFULL[http]=5
MARKS[http]="ok err"
CHUNK[http]="a known beginning (none, 'HTTP/1.1 ', a status line, a chunked head, a chunked head + '1 CRLF a', a chunked head + '0 CRLF', a head with Content-Length: 3, 'Content-Length: ' before its digits) as one chunk, then every tail of 0..N bytes (0..N/2 after 'Content-Length: ') in two chunks cut at any 0..len, then the end; body buffer N/2 bytes"
# Each outcome of a chunk is kept apart where the codec returns (merged,
# S_CHUNK_DATA met another state's chunk_left of 0 and the body copy's
# bound was lost: memcpy's precondition unknown, see prove_http.c).
OPTS[http]="-eva-split-return-function kl_http_resp_feed:full,on_line:full,parse_chunk_size:full -eva-slevel-function feed_all:100000"
# The tokenizer needs three options more (tests/prove/README.md says why):
# results kept apart per outcome at each return, exact byte sets of up to
# 256 values, and the relation between a byte and its copy.
FILES[xml]="core/kl_xml.c"
NFAST[xml]=2
NFULL[xml]=3
MARKS[xml]="start end text need_more error"
CHUNK[xml]="after a stream header, in the root's content and after '<a': one slice, and byte by byte re-fed after each NEED_MORE"
OPTS[xml]="-eva-split-return full -eva-ilevel 256 -eva-domains equality"
FILES[xw]="core/kl_xw.c core/kl_xml.c"
NFAST[xw]=2
NFULL[xw]=3
MARKS[xw]="ok err"
CHUNK[xw]="whole strings: a value of 0..N bytes as an attribute value, text and raw inside an element, into every writer capacity 0..6N+10; element and attribute names of 0..3 bytes (never NUL), self-closed and closed, into every capacity 0..15"

# The BOSH framing (with the real HTTP, tokenizer and writer; the engine
# stubbed) and the DNS codec (prove_dns.c says what each part covers).
FILES[bosh]="core/kl_bosh.c core/kl_http.c core/kl_xml.c core/kl_xw.c"
NFAST[bosh]=2
NFULL[bosh]=4
MARKS[bosh]="request pull_err fed body_done resp_err"
CHUNK[bosh]="engine flight: a known beginning + 0..N unknown bytes, one piece; response: a Content-Length head and a known body beginning in one chunk, 0..N unknown bytes in two chunks cut anywhere, a known end; pushed to the engine under every pair of take policies (all, one, one then none, none)"
OPTS[bosh]="-eva-split-return full -eva-slevel-function push_calls:100000,responses:100000"
FILES[dns]="core/kl_dns.c"
NFAST[dns]=1
NFULL[dns]=2
MARKS[dns]="err echo_norecord echo_err query_ok query_err shape_records shape_norecord shape_err"
CHUNK[dns]="one datagram: every answer of 0..12+2N bytes; every answer echoing the query (any flags, 0..3 records per section) then every tail of 0..N bytes; queries from every domain text of 0..N+2 bytes into every capacity; one record of every shape per section and the CNAME and SRV chains (N>=2: with every RDLENGTH)"
# The codec at slevel 100 (its bounds hold through joined states), the
# driver's enumerating functions at a large one, the walker's returns apart.
OPTS[dns]="-eva-split-return auto -eva-slevel 100 -eva-slevel-function main:100000,parse_all:100000,parse_echo:100000,query_cap:100000,query_all:100000,put:100000,put_unknown:100000,put_name:100000,put_record:100000,put_echo:100000,parse_built:100000,parse_variants:100000,shapes:100000,parse_len:100000,parse_built_at:100000,name_text:2000"
FILES[dnsptr]="core/kl_dns.c"
NFAST[dnsptr]=1
NFULL[dnsptr]=1
MARKS[dnsptr]="shape_records shape_norecord shape_err"
CHUNK[dnsptr]="one datagram: an answer record (every type and layout) or a CNAME/SRV chain after an echoed SRV question, with a compression pointer to every offset the driver chose and every one past the end"
# Without name_text's large slevel: it is only for every RDLENGTH, not here.
OPTS[dnsptr]="-eva-split-return auto -eva-slevel 100 -eva-slevel-function main:100000,parse_all:100000,parse_echo:100000,query_cap:100000,query_all:100000,put:100000,put_unknown:100000,put_name:100000,put_record:100000,put_echo:100000,parse_built:100000,parse_variants:100000,shapes:100000,parse_len:100000,parse_built_at:100000"

ALL="base64 scram http xml xw bosh dns dnsptr"
names=${*:-$ALL}

pass=0
fail=0
failed=""
mkdir -p "$build/prove"
for name in $names; do
    if [ -z "${FILES[$name]:-}" ]; then
        echo "  $name: FAIL no such codec (known: ${!FILES[*]})"
        fail=$((fail + 1)); failed="$failed $name"; continue
    fi
    if [ "$mode" = full ]; then n=${NFULL[$name]}; else n=${NFAST[$name]}; fi
    log=$build/prove/$name-$mode.log
    t0=$(date +%s.%N)
    frama-c -eva -machdep gcc_x86_32 -warn-signed-overflow -no-warn-unsigned-overflow \
        -cpp-extra-args="-Iinclude -Icore -DKL_CORE_BUILD -DPROVE_N=$n" \
        -eva-slevel 1000 -eva-no-show-progress -eva-msg-key=-final-states \
        -eva-warn-key=garbled-mix=error ${OPTS[$name]:-} \
        "tests/prove/prove_$name.c" ${FILES[$name]} >"$log" 2>&1
    rc=$?
    t=$(echo "$(date +%s.%N) - $t0" | bc)
    why=""
    alarms=$(grep -oE '^  ([0-9]+) alarms? generated' "$log" | grep -oE '[0-9]+' | head -1)
    if [ $rc -ne 0 ]; then why="frama-c exited with $rc"
    elif ! grep -q 'ANALYSIS SUMMARY' "$log"; then why="no EVA summary"
    elif [ -z "$alarms" ]; then why="no alarm count in the summary"
    elif [ "$alarms" != 0 ] || grep -q '^\[eva:alarm\]' "$log"; then
        why="$alarms alarm(s): $(grep -A2 '^\[eva:alarm\]' "$log" | tr -s ' \n' ' ' | cut -c1-300)"
    elif grep -qiE 'NON TERMINATING|non-terminating|user error|\[kernel\].*error|degenerat' "$log"; then
        why="$(grep -iE 'NON TERMINATING|non-terminating|user error|error|degenerat' "$log" | head -3 | tr '\n' ' ')"
    elif ! grep -q 'Frama_C_show_each_done' "$log"; then why="the driver's end was not reached (vacuous)"
    else
        for m in ${MARKS[$name]}; do
            grep -q "Frama_C_show_each_$m:" "$log" || why="$why marker $m never reached (vacuous);"
        done
    fi
    if [ -z "$why" ]; then
        printf '  %s: N=%s, chunking: %s; alarms: 0; %.1f s: ok\n' "$name" "$n" "${CHUNK[$name]}" "$t"
        pass=$((pass + 1))
    else
        printf '  %s: N=%s: FAIL %s (%.1f s; log %s)\n' "$name" "$n" "$why" "$t" "$log"
        fail=$((fail + 1)); failed="$failed $name"
    fi
done
if [ $fail -eq 0 ]; then
    echo "$label: $pass passed, $fail failed (EVA, $mode sizes, 0 alarms: $names)"
else
    echo "$label: $pass passed, $fail failed (failed:$failed; logs in $build/prove/)"
    exit 1
fi
