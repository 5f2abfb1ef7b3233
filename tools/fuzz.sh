#!/usr/bin/env bash
# tools/fuzz.sh: build the libFuzzer targets of tools/fuzz and run them.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each target and the largest input libFuzzer makes for it (-max_len): about
# what the parser meets, with room to go past its own bounds.
declare -A MAX_LEN=(
    [envelope]=8192       # envelope.json (the decoder's own bound is 4 MiB; real ones are < 4 KiB)
    [address]=1100        # a mailbox or header address list (MailboxAddress stops at 1024 octets)
    [message]=4096        # a message's header section, some body lines
    [smtp-reply]=12000    # replies, past the 4 KiB line bound
    [smtp-server]=8192    # a client session, past the 2 KiB command line bound
    [dns]=4096            # a DNS reply (EDNS0 UDP size is 1232; TCP replies are larger)
    [dsn]=4096            # a DSN's fields and the returned header section
    [config]=16384        # postern.toml (the example is 14 KiB)
    [mta-sts]=4096        # an MTA-STS policy (RFC 8461 allows 64 KiB; real ones are < 1 KiB)
)
# Options of one target. The configuration's TOMLKit leaks at every parse
# (tools/fuzz/lsan.supp), which makes libFuzzer's per-input leak check scan
# the heap after every input, 20 times slower; ASan's own check at exit still
# runs, with the suppressions, and the other targets keep the per-input one.
declare -A OPTIONS=([config]=-detect_leaks=0)
TARGETS=(envelope address message smtp-reply smtp-server dns dsn config mta-sts)
SCRATCH=.build-fuzz
BINARIES=$SCRATCH/release
FINDINGS=tools/fuzz/findings

usage() {
    cat <<EOF
Usage: tools/fuzz.sh [--build-only] [--merge] [TARGET|all] [SECONDS]

Builds Postern's fuzz targets (tools/fuzz, a package of its own) with
libFuzzer and AddressSanitizer into $SCRATCH/, then runs TARGET (default:
all, one after the other) for SECONDS each (default 20). Targets:
  ${TARGETS[*]}

Each run starts from the committed seeds (tools/fuzz/corpus/TARGET) and the
inputs earlier runs found ($SCRATCH/corpus/TARGET, kept between runs), with
-max_len set per target. It exits non-zero if any target crashed, broke an
invariant, leaked, ran out of memory or time on one input, or had a
sanitizer report; the input is kept in $FINDINGS/TARGET/ (git-ignored) and
the command that reproduces it is printed. Leaks inside TOMLKit's C++ shim
are suppressed (tools/fuzz/lsan.supp says why); any other leak counts.

  --build-only   build the targets and stop
  --merge        after the run, minimize the found corpus into the committed
                 seeds' folder (libFuzzer -merge=1), for a commit

Environment: FUZZ_ARGS adds libFuzzer options (e.g. FUZZ_ARGS=-runs=1000000).
The build needs clang's runtime as Swift ships it (/opt/swift); no package.
EOF
}

build_only=0 merge=0
while (($#)); do
    case $1 in
        -h|--help) usage; exit 0 ;;
        --build-only) build_only=1; shift ;;
        --merge) merge=1; shift ;;
        -*) echo "tools/fuzz.sh: unknown option $1" >&2; usage >&2; exit 64 ;;
        *) break ;;
    esac
done
target=${1:-all}
seconds=${2:-20}
if [[ $target == all ]]; then
    selected=("${TARGETS[@]}")
elif [[ -n ${MAX_LEN[$target]:-} ]]; then
    selected=("$target")
else
    echo "tools/fuzz.sh: no target $target (targets: ${TARGETS[*]})" >&2
    exit 64
fi
[[ $seconds =~ ^[0-9]+$ ]] || { echo "tools/fuzz.sh: SECONDS must be a number" >&2; exit 64; }

# SwiftPM's --sanitize instruments the Swift and the C/C++ targets alike
# (TOMLKit's toml++ included) and links libFuzzer's main. -enable-testing
# lets targets reach parsers internal to their module with @testable import.
# SwiftPM does not notice a file added to the root package (a dependency
# here) while its build plan is cached: plan anew; compiling stays incremental.
rm -f "$SCRATCH/release.yaml" "$SCRATCH/release/description.json"
echo "tools/fuzz.sh: building the fuzz targets into $SCRATCH (release, libFuzzer, AddressSanitizer)"
# Product by product: a plain `swift build` would also build the root
# package's executables (the CLI, the daemon) that no target needs.
for name in "${selected[@]}"; do
    swift build -c release --package-path tools/fuzz --scratch-path "$SCRATCH" --product "fuzz-$name" \
        --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address -Xswiftc -enable-testing
done
((build_only)) && exit 0

# Swift's own crash backtracer would fight AddressSanitizer over a crash
# (and can hang there); libFuzzer and ASan print the stack themselves.
export SWIFT_BACKTRACE=enable=no
export LSAN_OPTIONS="suppressions=$PWD/tools/fuzz/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
failed=()
for name in "${selected[@]}"; do
    work=$SCRATCH/corpus/$name
    seeds=tools/fuzz/corpus/$name
    findings=$FINDINGS/$name
    log=$SCRATCH/fuzz-$name.log
    mkdir -p "$work" "$findings"
    before=$(ls "$findings")
    status=0
    # shellcheck disable=SC2086  # FUZZ_ARGS is a list of options
    "$BINARIES/fuzz-$name" "$work" "$seeds" -max_total_time="$seconds" -max_len="${MAX_LEN[$name]}" \
        -timeout=10 -rss_limit_mb=2048 -artifact_prefix="$findings/" -print_final_stats=1 \
        ${OPTIONS[$name]:-} ${FUZZ_ARGS:-} \
        > "$log" 2>&1 || status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
    corpus=$(find "$work" -type f | wc -l)
    new=$(comm -13 <(echo "$before") <(ls "$findings"))
    if ((status != 0)) || [[ -n $new ]]; then
        failed+=("$name")
        echo "fuzz $name: FAILED (exit $status) after ${runs:-?} executions; log: $log" >&2
        grep -E -m 20 'ERROR|invariant broken|Fatal error|SUMMARY|Test unit written' "$log" >&2 || tail -20 "$log" >&2
        for crash in $new; do
            echo "  reproduce: SWIFT_BACKTRACE=enable=no LSAN_OPTIONS=suppressions=tools/fuzz/lsan.supp $BINARIES/fuzz-$name $findings/$crash" >&2
        done
    else
        echo "fuzz $name: ok, ${runs:-?} executions in ${seconds}s, ${coverage:-cov: ?}, corpus $corpus"
    fi
    if ((merge)); then
        "$BINARIES/fuzz-$name" -merge=1 -max_len="${MAX_LEN[$name]}" "$seeds" "$work" >> "$log" 2>&1
        echo "fuzz $name: merged into $seeds ($(find "$seeds" -type f | wc -l) files)"
    fi
done
if ((${#failed[@]})); then
    echo "tools/fuzz.sh: ${#failed[@]} target(s) failed: ${failed[*]} (inputs in $FINDINGS/)" >&2
    exit 1
fi
echo "tools/fuzz.sh: ${#selected[@]} target(s), no crash, no sanitizer report"
