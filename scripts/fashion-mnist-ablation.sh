#!/usr/bin/env bash
# The ablation of docs/results-fashion-mnist.md: the fashionMnistTiny preset on the bundled 4,000-image subset for
# 4 epochs, with all three losses, each loss switched off in turn, and the group loss alone (DINO-like); then the
# k-NN-per-epoch chart. Runs one after another, each the README's 4-epoch main job with one change (1 min 41 s alone
# on 2 free cores: docs/results-fashion-mnist.md, "The README's main job"). Usage: scripts/fashion-mnist-ablation.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/ablation}
run() {
    local name=$1; shift
    mvn -q -B package -DskipTests exec:exec -Dexec.args="--epochs 4 --output $out/$name $*"
}
run all
run no-instance --set lossWeights.instance=0
run no-local-group --set lossWeights.localGroup=0
run no-group --set lossWeights.group=0
run group-only --set lossWeights.instance=0 --set lossWeights.localGroup=0
./mugs compare --x epochs --out "$out/knn-ablation.png" --runs \
"all-three=$out/all/metrics.jsonl,no-instance=$out/no-instance/metrics.jsonl,no-local-group=$out/no-local-group/metrics.jsonl,no-group=$out/no-group/metrics.jsonl,group-only=$out/group-only/metrics.jsonl"
