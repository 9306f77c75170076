#!/usr/bin/env bash
# Peak RSS and step time of the official ViT-S/16 recipe (224/96 px, 10 local crops, queues and prototypes 65,536)
# at several batch sizes, each in a JVM of its own, and the RSS slope per image.
#   scripts/vit-small-memory.sh [BATCH ...]        (default: 4 8 16; run from the repository root)
# Extra TrainBenchmark options go in $BENCH_ARGS, e.g. BENCH_ARGS="--engine samediff".
set -euo pipefail
cd "$(dirname "$0")/.."
batches=("$@")
[ ${#batches[@]} -gt 0 ] || batches=(4 8 16)
lib=$(mktemp -d)
trap 'rm -rf "$lib"' EXIT
# A copied classpath, so that a rebuild during the runs cannot replace jars under a running JVM.
mvn -q -B -pl examples -am package dependency:copy-dependencies -DskipTests -DoutputDirectory="$lib" \
    -DincludeScope=runtime
cp examples/target/examples-*.jar "$lib"/
declare -a rss
for b in "${batches[@]}"; do
  out=$(OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=131072 java -Xmx4g -Dorg.bytedeco.javacpp.maxphysicalbytes=20G -Dorg.bytedeco.javacpp.maxbytes=16G -XX:+UseSerialGC -Xmn32m --add-modules jdk.incubator.vector \
        -cp "$lib/*" io.mugs.examples.TrainBenchmark --preset vit_small --batch "$b" --steps 2 ${BENCH_ARGS:-} 2>&1 \
        | grep -v "Added differentiated op")
  step=$(grep -m1 "s/step" <<<"$out" | sed 's/,.*//')
  gb=$(grep -m1 "peak RSS" <<<"$out" | sed 's/peak RSS: \([0-9.]*\) GB.*/\1/')
  rss+=("$gb")
  echo "batch $b: $step, peak RSS $gb GB"
done
n=${#batches[@]}
if [ "$n" -ge 2 ]; then
  awk -v b0="${batches[0]}" -v r0="${rss[0]}" -v b1="${batches[$((n-1))]}" -v r1="${rss[$((n-1))]}" \
    'BEGIN { printf "slope: %.3f GB per image of batch (batch %d -> %d)\n", (r1 - r0) / (b1 - b0), b0, b1 }'
fi
