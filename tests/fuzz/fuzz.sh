#!/bin/bash
# kinglet — runs the libFuzzer targets for mk/fuzz.mk (read its header first).
#
#   fuzz.sh check NAME BIN MAX_LEN RUNS SEED OUTDIR
#       `make check`: replay every file of tests/fuzz/corpus_NAME/ and
#       tests/fuzz/regressions_NAME/ unmutated, then one mutation run of RUNS
#       executions with -seed=SEED, seeded from a scratch copy of the corpus
#       in a fixed (sorted) order. Nothing in the repo is written. Prints
#       "check-fuzz-NAME: P passed, F failed (...)"; exit 1 on any failure.
#   fuzz.sh campaign OUTDIR SECONDS JOBS NAME:BIN:MAX_LEN...
#       `make fuzz`: each target for SECONDS (JOBS at a time) from a scratch
#       copy of its corpus, then -merge=1 of what it found into
#       tests/fuzz/corpus_NAME/ (only inputs that add coverage). Prints one
#       line per target; exit 1 if any target crashed.
# Run from the repository root (make does).
set -u
export LC_ALL=C

FUZZ_COMMON_FLAGS=(-timeout=10 -rss_limit_mb=2048)

# Input files of a directory, sorted, one per line (dot files skipped).
inputs_of() {
    [ -d "$1" ] || return 0
    find "$1" -maxdepth 1 -type f ! -name '.*' | sort
}

# The lines of a libFuzzer log that say what broke: the sanitizer's or
# libFuzzer's ERROR line and the first stack frames in kinglet's sources.
why() {
    local err frames
    err=$(grep -m1 -E 'ERROR: (libFuzzer|AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:' "$1" |
          sed -E 's/^==[0-9]+== ?//')
    frames=$(grep -E '^ +#[0-9]+ ' "$1" | grep -E '(core|tests/fuzz|include)/[^ ]+:[0-9]+' | head -n 4 |
             sed -E 's/^ +#[0-9]+ 0x[0-9a-f]+ in /    at /')
    printf '  %s\n' "${err:-no sanitizer report (exit status $2)}"
    [ -n "$frames" ] && printf '%s\n' "$frames"
    return 0
}

# Field from libFuzzer's final stats (-print_final_stats=1).
stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

do_check() {
    local name=$1 bin=$2 max_len=$3 runs=$4 seed=$5 out=$6
    local corpus=tests/fuzz/corpus_$name regr=tests/fuzz/regressions_$name
    local t0=$SECONDS passed=0 failed=0 f rc log notes=
    mkdir -p "$out"
    rm -f "$out/$name"-replay-* "$out/$name"-check-*

    local -a corp reg all
    mapfile -t corp < <(inputs_of "$corpus")
    mapfile -t reg < <(inputs_of "$regr")
    all=("${corp[@]}" "${reg[@]}")

    # 1. replay, unmutated. One process for all; if it fails, each input
    #    alone, so that every failing one is named.
    log=$out/check-$name-replay.log
    if [ ${#all[@]} -gt 0 ]; then
        "$bin" "${FUZZ_COMMON_FLAGS[@]}" -max_len="$max_len" -artifact_prefix="$out/$name-replay-" \
            "${all[@]}" >"$log" 2>&1
        rc=$?
        if [ $rc -eq 0 ]; then
            passed=${#all[@]}
        else
            for f in "${all[@]}"; do
                local one
                one=$out/check-$name-replay-$(basename "$f").log
                if "$bin" "${FUZZ_COMMON_FLAGS[@]}" -max_len="$max_len" -artifact_prefix="$out/$name-replay-" \
                    "$f" >"$one" 2>&1; then
                    passed=$((passed + 1)); rm -f "$one"
                else
                    rc=$?
                    failed=$((failed + 1))
                    echo "check-fuzz-$name: FAILED replaying $f (log: $one)"
                    why "$one" $rc
                fi
            done
            [ $failed -gt 0 ] && echo "check-fuzz-$name: reproduce one: $bin INPUT"
            if [ $failed -eq 0 ]; then
                # fails together but not alone: state kept across inputs
                failed=1
                echo "check-fuzz-$name: FAILED replaying the inputs in one process (each passes alone; log: $log)"
                why "$log" $rc
            fi
        fi
    fi

    # 2. mutation run: fixed seed, fixed number of runs, seeds in sorted order
    #    (-seed_inputs keeps the order; a directory's order is the file
    #    system's), new units into a scratch directory.
    local scratch list='' i=0 mlog=$out/check-$name-mutate.log
    scratch=$(mktemp -d "${TMPDIR:-/tmp}/kl-fuzz-$name.XXXXXX") || exit 1
    trap 'rm -rf "$scratch"' EXIT
    mkdir "$scratch/seeds" "$scratch/new"
    for f in "${corp[@]}"; do
        i=$((i + 1))
        cp "$f" "$scratch/seeds/$(printf %05d $i)"
        list="$list,$scratch/seeds/$(printf %05d $i)"
    done
    printf '%s' "${list#,}" >"$scratch/seeds.txt"
    local -a seedarg=()
    [ -n "$list" ] && seedarg=(-seed_inputs=@"$scratch/seeds.txt")
    # -use_cmp=0: compared values include pointers (addresses change from
    # run to run with ASLR), which CMP-guided mutations would insert.
    "$bin" "${FUZZ_COMMON_FLAGS[@]}" -max_len="$max_len" -seed="$seed" -runs="$runs" -reload=0 -use_cmp=0 \
        -print_final_stats=1 -artifact_prefix="$out/$name-check-" "${seedarg[@]}" "$scratch/new" >"$mlog" 2>&1
    rc=$?
    local done_runs cov
    done_runs=$(stat number_of_executed_units "$mlog")
    cov=$(grep -E '(INITED|DONE|NEW|REDUCE|pulse).* cov: ' "$mlog" | tail -n 1 |
          sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+).*/cov \1 ft \2/p')
    if [ $rc -eq 0 ]; then
        passed=$((passed + 1))
        notes="$runs runs with seed $seed${cov:+ ($cov)}: no failure"
    else
        failed=$((failed + 1))
        local art
        art=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$mlog" | head -n 1)
        echo "check-fuzz-$name: FAILED in the mutation run with seed $seed after ${done_runs:-?} of $runs runs (log: $mlog)"
        why "$mlog" $rc
        [ -n "$art" ] && echo "check-fuzz-$name: input: $art (reproduce: $bin $art)"
        notes="$runs runs with seed $seed: FAILED"
    fi
    rm -rf "$scratch"
    trap - EXIT

    echo "check-fuzz-$name: $passed passed, $failed failed (${#all[@]} inputs replayed:" \
         "${#corp[@]} corpus + ${#reg[@]} regressions; $notes; $((SECONDS - t0)) s)"
    [ $failed -eq 0 ]
}

# One target of a campaign; leaves its summary line in OUTDIR/campaign/NAME/result.
do_campaign_one() {
    local out=$1 secs=$2 name=$3 bin=$4 max_len=$5
    local dir=$out/campaign/$name corpus=tests/fuzz/corpus_$name
    rm -rf "$dir"
    mkdir -p "$dir/corpus" "$corpus"
    local f before after
    for f in $(inputs_of "$corpus"); do cp "$f" "$dir/corpus/"; done
    before=$(inputs_of "$corpus" | wc -l)
    echo "fuzz-$name: fuzzing for $secs s (log: $dir/fuzz.log)"
    "$bin" "${FUZZ_COMMON_FLAGS[@]}" -max_len="$max_len" -max_total_time="$secs" -print_final_stats=1 \
        -artifact_prefix="$dir/" "$dir/corpus" >"$dir/fuzz.log" 2>&1
    local rc=$?
    # Keep only what adds coverage (edges: -use_counters=0, so hit-count
    # variants of a covered edge stay out) to the committed corpus.
    "$bin" "${FUZZ_COMMON_FLAGS[@]}" -max_len="$max_len" -merge=1 -use_counters=0 -artifact_prefix="$dir/merge-" \
        "$corpus" "$dir/corpus" >"$dir/merge.log" 2>&1 ||
        echo "fuzz-$name: merge failed (log: $dir/merge.log)"
    after=$(inputs_of "$corpus" | wc -l)
    local edges
    edges=$(sed -n 's/^MERGE-OUTER: .* \([0-9]*\) new coverage edges.*/\1/p' "$dir/merge.log" | tail -n 1)

    local execs seed cov0 cov1 crashes='' n=0 a
    execs=$(stat number_of_executed_units "$dir/fuzz.log")
    seed=$(sed -n 's/^INFO: Seed: \([0-9]*\).*/\1/p' "$dir/fuzz.log" | head -n 1)
    cov0=$(grep -m1 -E 'INITED.* cov: ' "$dir/fuzz.log" | sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/p')
    cov1=$(grep -E '#[0-9]+.* cov: ' "$dir/fuzz.log" | tail -n 1 | sed -nE 's/.* cov: ([0-9]+) ft: ([0-9]+).*/\1 \2/p')
    for a in "$dir"/crash-* "$dir"/leak-* "$dir"/timeout-* "$dir"/oom-*; do
        [ -f "$a" ] || continue
        n=$((n + 1)); crashes="$crashes $a"
    done
    [ $rc -ne 0 ] && [ $n -eq 0 ] && crashes=" (exit status $rc, no input saved: see the log)" && n=1
    {
        printf 'fuzz-%s: %s executions in %s s (seed %s), cov %s -> %s, ft %s -> %s, corpus %s -> %s (%s new entries kept, %s new edges), ' \
            "$name" "${execs:-?}" "$secs" "${seed:-?}" "${cov0%% *}" "${cov1%% *}" "${cov0##* }" "${cov1##* }" \
            "$before" "$after" "$((after - before))" "${edges:-0}"
        if [ $n -eq 0 ]; then echo "0 crashes"; else echo "$n crash(es):$crashes (reproduce: $bin INPUT)"; fi
    } >"$dir/result"
    echo "$n" >"$dir/crashes"
}

do_campaign() {
    local out=$1 secs=$2 jobs=$3; shift 3
    local spec name total=0 kept=0 n
    printf '%s\n' "$@" | tr ':' ' ' |
        xargs -P "$jobs" -n 3 "$0" campaign-one "$out" "$secs"
    for spec in "$@"; do
        name=${spec%%:*}
        if [ -f "$out/campaign/$name/result" ]; then
            cat "$out/campaign/$name/result"
            n=$(cat "$out/campaign/$name/crashes")
        else
            echo "fuzz-$name: did not run"; n=1
        fi
        total=$((total + n))
    done
    kept=$(cat "$out"/campaign/*/result 2>/dev/null | sed -n 's/.*(\([0-9-]*\) new entries kept.*/\1/p' |
           awk '{ s += $1 } END { print s + 0 }')
    echo "fuzz: $# targets, $secs s each, $kept new corpus entries kept in tests/fuzz/corpus_*/, $total crash(es)"
    [ $total -eq 0 ]
}

cmd=${1:-}; shift || true
case $cmd in
check) do_check "$@" ;;
campaign) do_campaign "$@" ;;
campaign-one) do_campaign_one "$@" ;;
*) echo "usage: $0 check|campaign ... (see the header)" >&2; exit 2 ;;
esac
