#!/usr/bin/env bash
# Runs every `./mugs ...` command that README.md shows, in README order, on tiny settings, and fails on the first
# one that fails. Checks that the README's commands run as written after the main job.
#
#   scripts/check-readme-commands.sh            # from anywhere; builds the launcher when needed
#
# The commands run in a scratch folder (so the README's relative paths, runs/... and my-images/..., resolve there),
# with options appended that keep them small (a picocli option given twice counts once, the last time):
#   pretrain   a 1-block, 16-wide ViT with narrow heads and small queues (same epochs, so the same checkpoints),
#              and the k-NN monitor on the teacher only
#   linear     --epochs 2;  tsne  --points 100;  finetune  --epochs 2 --batch 16 --log-every 0
# Commands on the full Fashion-MNIST (fmnist:/usr/share/datasets/...) are skipped unless MUGS_CHECK_FULL=1.
# my-images/train and my-images/val (two classes of generated 112 px JPEGs) stand in for the reader's own images.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd -P)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)

# ./mugs in the scratch folder is the clone's ./mugs.
printf '#!/bin/sh\nexec "%s/mugs" "$@"\n' "$repo" > "$work/mugs"
chmod +x "$work/mugs"

# The reader's images: two classes (bright disc, horizontal stripes) of 112 px RGB JPEGs (photos are larger than
# the 96 px crops of the README's ViT-S command), 24 training and 12 validation images per class.
cat > "$work/MakeImages.java" <<'EOF'
import java.awt.image.BufferedImage;
import java.io.File;
import java.util.Random;
import javax.imageio.ImageIO;

public class MakeImages {
    public static void main(String[] args) throws Exception {
        Random rng = new Random(7);
        String[][] splits = {{"train", "24"}, {"val", "12"}};
        for (String[] split : splits) {
            for (String cls : new String[] {"disc", "stripes"}) {
                File dir = new File(args[0], split[0] + "/" + cls);
                dir.mkdirs();
                for (int i = 0; i < Integer.parseInt(split[1]); i++) {
                    BufferedImage img = new BufferedImage(112, 112, BufferedImage.TYPE_INT_RGB);
                    int cx = 30 + rng.nextInt(52);
                    int cy = 30 + rng.nextInt(52);
                    for (int y = 0; y < 112; y++) {
                        for (int x = 0; x < 112; x++) {
                            boolean on = cls.equals("disc") ? (x - cx) * (x - cx) + (y - cy) * (y - cy) < 576
                                    : (y + cy) / 12 % 2 == 0;
                            int v = (on ? 200 : 50) + rng.nextInt(30);
                            img.setRGB(x, y, (v << 16) | (v / 2 << 8) | (255 - v));
                        }
                    }
                    ImageIO.write(img, "jpg", new File(dir, cls + i + ".jpg"));
                }
            }
        }
    }
}
EOF
java "$work/MakeImages.java" "$work/my-images"

tiny_pretrain=(--knn-student false --set vit.depth=1 --set vit.embedDim=16 --set vit.numHeads=2 --set instanceHidden=32
    --set instanceOut=16 --set predictorHidden=32 --set groupHidden=32 --set groupBottleneck=16
    --set prototypes=32 --set queueSize=256 --set memorySize=256 --set workers=2)

# The README's commands: lines of its code blocks that start with ./mugs, joined with their continuation lines,
# without trailing comments.
mapfile -t commands < <(awk '
    /^```/ { block = !block; next }
    block && cont { line = line " " $0; cont = 0 }
    block && /^\.\/mugs / { line = $0 }
    block && line != "" {
        if (line ~ /\\$/) { sub(/\\$/, "", line); cont = 1; next }
        sub(/[ ]+#.*$/, "", line); print line; line = ""
    }' "$repo/README.md")
[ "${#commands[@]}" -gt 0 ] || { echo "no ./mugs commands found in README.md" >&2; exit 1; }

cd "$work"
for c in "${commands[@]}"; do
    if [[ "$c" == *" fmnist:/usr/share/datasets/"* && "${MUGS_CHECK_FULL:-0}" != 1 ]]; then
        echo ">>> skipped (the full data set; MUGS_CHECK_FULL=1 runs it): $c" >&2
        continue
    fi
    eval "set -- $c"
    shift   # ./mugs
    extra=()
    case "${1:-}" in
        pretrain) extra=("${tiny_pretrain[@]}") ;;
        linear) extra=(--epochs 2) ;;
        tsne) extra=(--points 100) ;;
        finetune) extra=(--epochs 2 --batch 16 --log-every 0) ;;
    esac
    echo ">>> ./mugs $* ${extra[*]}" >&2
    t0=$(date +%s)
    ./mugs "$@" "${extra[@]}" > out.txt 2> err.txt || {
        echo "FAILED: ./mugs $*" >&2
        tail -n 20 err.txt >&2
        exit 1
    }
    tail -n 2 out.txt >&2
    echo "    ($(($(date +%s) - t0)) s)" >&2
done
echo "all ${#commands[@]} README commands ran ($(($(date +%s) - start)) s)" >&2
