#!/usr/bin/env bash
# The training step of this library against the official PyTorch Mugs step, on this machine, alternating.
#
#   scripts/bench-vs-official.sh [fm|vits] [STEPS] [ROUNDS]
#
#   fm     the fashionMnistTiny preset, batch 32 (TrainBenchmark --preset fm) against the harness's `fm` config
#   vits   ViT-S/16 224/96, 2+10 crops, batch 4 (TrainBenchmark --preset vit_small --batch 4) against `vits`
#   STEPS  timed steps of each run, after 2 warm-up steps on both sides (default 60 for fm, 3 for vits)
#   ROUNDS rounds; each round runs both once, and the one that goes first alternates (default 3)
#
# Prints every run, then images/s and peak RSS of each side (median over the rounds), the speed ratio
# (this library / official) and the memory ratio. The official side is the harness in ../shared/reference-bench
# (its README.md says what it adapts at run time; the official files stay unmodified): Debian's python3-torch with
# the OpenMP build of OpenBLAS first on LD_LIBRARY_PATH.
#
# Environment (all optional):
#   REF_BENCH    the harness folder (default: ../shared/reference-bench next to this repository, else
#                /work/shared/reference-bench)
#   OFFICIAL_GIT a git directory of github.com/sail-sg/mugs (default: /work/.mirror/sail-sg+mugs/repo); used once
#                to lay out REF_WORK
#   REF_WORK     scratch folder of the harness (default: ${TMPDIR:-/tmp}/mugs-reference-bench)
#   PIP          the pip setup.sh installs timm with (default pip; e.g. PIP="/usr/bin/python3 -m pip")
#   THREADS      threads of the official run (default 2: its faster setting on 2 cores; the Java side uses the
#                launcher's settings: OMP_NUM_THREADS=1, MALLOC_MMAP_THRESHOLD_=131072, wide products and
#                kernels on every core)
#   APT=1        install missing Debian packages (python3-torch python3-torchvision libopenblas0-openmp time
#                dataset-fashion-mnist) with apt-get
#   JAVA_OPTS    JVM options of the Java side (default: the exec launcher's)
#   JAVA_ARGS    more TrainBenchmark options, e.g. "--set useGroupLoss=false"
#   OFFICIAL_ARGS more harness options (after bench.sh's --), e.g. "-- --loss_weights 1 1 0"
#
# Timings on a shared machine are noisy: run it when the machine is quiet, and read the spread of the rounds.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
config=${1:-fm}
case "$config" in
    fm) steps=${2:-60}; java_preset=(--preset fm) ;;
    vits) steps=${2:-3}; java_preset=(--preset vit_small --batch 4) ;;
    *) echo "usage: $0 [fm|vits] [STEPS] [ROUNDS]  (config must be fm or vits, got '$config')" >&2; exit 2 ;;
esac
rounds=${3:-3}
bench=${REF_BENCH:-}
if [ -z "$bench" ]; then
    for d in "$repo/../shared/reference-bench" /work/shared/reference-bench; do
        [ -f "$d/bench.sh" ] && { bench=$(cd "$d" && pwd); break; }
    done
fi
[ -n "$bench" ] && [ -f "$bench/bench.sh" ] || { echo "no reference harness found: set REF_BENCH to the folder with bench.sh" >&2; exit 1; }
work=${REF_WORK:-${TMPDIR:-/tmp}/mugs-reference-bench}
official_git=${OFFICIAL_GIT:-/work/.mirror/sail-sg+mugs/repo}
threads=${THREADS:-2}
out=$(mktemp -d "${TMPDIR:-/tmp}/bench-vs-official.XXXXXX")

# 1. The official side, laid out once (setup.sh checks the Debian packages; APT=1 installs them).
if [ ! -f "$work/mugs.sha256" ]; then
    [ -d "$official_git" ] || { echo "no git directory of sail-sg/mugs at $official_git: set OFFICIAL_GIT" >&2; exit 1; }
    echo "== laying out the official code in $work"
    "$bench/setup.sh" "$official_git" "$work"
fi

# 2. The Java side, built once; its class path is kept so that every round runs the same classes.
echo "== building the Java side"
(cd "$repo" && mvn -B -ntp -q -o package -DskipTests dependency:build-classpath -pl examples -am \
    -Dmdep.outputFile="$out/classpath.txt" >"$out/build.log" 2>&1) || { tail -20 "$out/build.log" >&2; exit 1; }
classpath="$repo/examples/target/classes:$(cat "$out/classpath.txt")"
java_opts=${JAVA_OPTS:--Xmx6g -Dorg.bytedeco.javacpp.maxphysicalbytes=12G -Dorg.bytedeco.javacpp.maxbytes=8G -XX:+UseSerialGC -Xmn32m --add-modules jdk.incubator.vector}

run_official() {
    local log="$out/official-$1.log"
    OUT="$out/official-$1" "$bench/bench.sh" "$work" "$config" "$steps" "$threads" ${OFFICIAL_ARGS:-} >"$log" 2>&1 \
        || { echo "official run $1 failed, see $log" >&2; tail -5 "$log" >&2; return 1; }
    local line
    line=$(grep '^SUMMARY' "$log" | tail -1)
    echo "official round $1: ${line#SUMMARY }"
    # images/s from the 4-decimal s/step (the line's images/s has one decimal: 0.7 for ViT-S's 0.739)
    echo "$line" | sed -E 's/.*batch ([0-9]+): ([0-9.]+) s\/step.* peak RSS ([0-9.]+) GB.*/\1 \2 \3/' \
        | awk '{ printf "%.4f %s\n", $1 / $2, $3 }' >>"$out/official.txt"
}

run_java() {
    local log="$out/java-$1.log"
    # shellcheck disable=SC2086
    (cd "$repo" && OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=${MALLOC_MMAP_THRESHOLD_:-131072} java $java_opts -cp "$classpath" io.mugs.examples.TrainBenchmark \
        "${java_preset[@]}" --steps "$steps" ${JAVA_ARGS:-}) >"$log" 2>&1 \
        || { echo "Java run $1 failed, see $log" >&2; tail -5 "$log" >&2; return 1; }
    local line
    line=$(grep '^RESULT' "$log" | tail -1)
    echo "Java round $1: $(grep 's/step' "$log" | head -1); $(grep '^matrix products' "$log" | sed 's/ (1024.*//')"
    echo "$line" | sed -E 's/.*images_per_s=([0-9.]+) peak_rss_gb=([0-9.]+).*/\1 \2/' >>"$out/java.txt"
}

echo "== $rounds rounds of $config, $steps steps each; load average now: $(uptime | sed 's/.*load average: //')"
for r in $(seq 1 "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then run_official "$r"; run_java "$r"; else run_java "$r"; run_official "$r"; fi
done

median() { sort -g | awk '{v[NR]=$1} END {if (NR % 2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'; }
official_ips=$(cut -d' ' -f1 "$out/official.txt" | median)
official_rss=$(cut -d' ' -f2 "$out/official.txt" | median)
java_ips=$(cut -d' ' -f1 "$out/java.txt" | median)
java_rss=$(cut -d' ' -f2 "$out/java.txt" | median)
echo "== $config, median of $rounds alternating rounds ($steps steps each; official with $threads thread(s))"
printf '%-22s %12s %14s\n' "" "images/s" "peak RSS (GB)"
printf '%-22s %12s %14s\n' "official PyTorch" "$official_ips" "$official_rss"
printf '%-22s %12s %14s\n' "this library" "$java_ips" "$java_rss"
awk -v j="$java_ips" -v o="$official_ips" -v jr="$java_rss" -v orss="$official_rss" \
    'BEGIN {printf "speed ratio (this / official): %.2fx; memory ratio: %.2fx\n", j / o, jr / orss}'
echo "per-run logs: $out"
