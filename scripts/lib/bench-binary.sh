# Sourced, from the repository root, by the scripts that run one of tlsresume-compare's benches
# by hand (paired runs, callgrind, cachegrind, idle memory): builds it and sets `bin` to its
# executable.
#
#   bench_binary <bench> <build log> <jobs> [cargo bench arguments ...]
#
# Exits the script, with cargo's output, when the build fails or names no executable.
bench_binary() {
    local bench="$1" log="$2" jobs="$3"
    shift 3
    cargo bench -p tlsresume-compare "$@" --bench "$bench" --no-run -j"$jobs" 2>"$log" || {
        cat "$log" >&2
        exit 1
    }
    bin="$(sed -n "s/.*Executable benches\/$bench.rs (\(.*\))/\1/p" "$log" | tail -1)"
    [ -x "$bin" ] || { echo "$bench binary not found" >&2; exit 1; }
}
