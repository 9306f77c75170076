#!/usr/bin/env bash
# Checks that Mugs for Java works as a dependency of another Maven project, as a user would meet it:
#   0. checks that downstream/ holds exactly the README's Java examples and Maven fragment (scripts/CheckSnippets.java);
#   1. installs every module (jars, sources and javadoc jars, mugs-bom) into a throwaway local repository;
#   2. checks that the published artifacts are complete and that mugs-core alone brings no native backend, no
#      logging binding and no charting library;
#   3. builds downstream/ (imports mugs-bom, depends on mugs-core, picks nd4j-native and Logback itself) against
#      that repository and runs every example: N steps through Pretraining.fit and stop, one step by hand, a
#      multi-crop batch, the ViT graph builder, one epoch of pretraining, and a nearest-image search on its teacher.
#
# The throwaway repository starts empty, so nothing stale from an earlier `mvn install` can stand in for an
# artifact this build failed to produce. Third-party artifacts are not downloaded again: Maven's own local
# repository (~/.m2/repository, or MUGS_MAVEN_CACHE) is offered as a file:// repository ahead of Maven Central,
# releases only, so ND4J and the plugins are copied from it and anything missing (a clean CI machine) comes from
# Central. Everything lives in one temporary directory, removed at exit (MUGS_KEEP_CHECK=1 keeps it).
#
# Usage: scripts/check-downstream.sh            (CI runs it after `mvn -B -ntp verify`, see .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
cache=${MUGS_MAVEN_CACHE:-$HOME/.m2/repository}
version=$(sed -n 's:^  <version>\(.*\)</version>$:\1:p' pom.xml | head -1)
work=$(mktemp -d "${TMPDIR:-/tmp}/mugs-downstream.XXXXXX")
if [[ "${MUGS_KEEP_CHECK:-0}" == 1 ]]; then
  echo "check-downstream: keeping $work"
else
  trap 'rm -rf "$work"' EXIT
fi

cat > "$work/settings.xml" <<XML
<settings>
  <profiles>
    <profile>
      <id>local-cache</id>
      <repositories>
        <repository>
          <id>local-cache</id><url>file://$cache</url>
          <releases><enabled>true</enabled></releases><snapshots><enabled>false</enabled></snapshots>
        </repository>
      </repositories>
      <pluginRepositories>
        <pluginRepository>
          <id>local-cache</id><url>file://$cache</url>
          <releases><enabled>true</enabled></releases><snapshots><enabled>false</enabled></snapshots>
        </pluginRepository>
      </pluginRepositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>local-cache</activeProfile></activeProfiles>
</settings>
XML
repo="$work/repository"
mvnw() { mvn -B -ntp -q -gs "$work/settings.xml" -Dmaven.repo.local="$repo" "$@"; }
fail() { echo "check-downstream FAILED: $*" >&2; exit 1; }

java scripts/CheckSnippets.java . || fail "README.md and downstream/ differ (see above): change both together"

echo "check-downstream: installing Mugs $version into $repo"
mvnw -Prelease install -DskipTests

for m in mugs-io mugs-engine mugs-vit mugs-losses mugs-data mugs-plots mugs-eval mugs-core; do
  for suffix in .jar -sources.jar -javadoc.jar .pom; do
    f="$repo/io/mugs/$m/$version/$m-$version$suffix"
    [[ -s "$f" ]] || fail "$f was not installed; check the $m module's pom.xml"
  done
done
[[ -s "$repo/io/mugs/mugs-bom/$version/mugs-bom-$version.pom" ]] || fail "mugs-bom $version was not installed"

# The library's own runtime classpath: a project that depends on mugs-core and nothing else.
mkdir -p "$work/library"
cat > "$work/library/pom.xml" <<XML
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>com.example</groupId><artifactId>mugs-library-classpath</artifactId><version>1.0</version>
  <dependencyManagement><dependencies><dependency>
    <groupId>io.mugs</groupId><artifactId>mugs-bom</artifactId><version>$version</version>
    <type>pom</type><scope>import</scope>
  </dependency></dependencies></dependencyManagement>
  <dependencies><dependency><groupId>io.mugs</groupId><artifactId>mugs-core</artifactId></dependency></dependencies>
</project>
XML
dependency=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
(cd "$work/library" && mvnw $dependency:list -DincludeScope=runtime -DoutputFile="$work/library-deps.txt")
forbidden=$(grep -E 'org\.nd4j:nd4j-(native|cuda)[^:]*:jar:|org\.bytedeco:(openblas|cuda|mkl)|org\.bytedeco:javacpp:jar:[a-z]|ch\.qos\.logback|org\.knowm\.xchart|pdfbox|io\.mugs:mugs-plots|onnxruntime' \
  "$work/library-deps.txt" | grep -v 'nd4j-native-api' || true)
[[ -z "$forbidden" ]] || fail "a user of mugs-core inherits $(echo $forbidden | tr '\n' ' '); move it to test scope or to the application layer"
echo "check-downstream: mugs-core brings $(grep -c ':compile\|:runtime' "$work/library-deps.txt") jars, none of them native, logging or charting"

cd "$root/downstream"
grep -q "<version>$version</version>" pom.xml \
  || fail "downstream/pom.xml (and the README's Maven fragment) name another Mugs version than $version"
mvnw package $dependency:build-classpath -Dmdep.outputFile="$work/classpath.txt"
run() {
  echo "check-downstream: $*"
  OMP_NUM_THREADS=1 MALLOC_MMAP_THRESHOLD_=131072 java -Xmx2g -Dorg.bytedeco.javacpp.maxphysicalbytes=4G -Dorg.bytedeco.javacpp.maxbytes=3G \
    -cp "target/classes:$(cat "$work/classpath.txt")" "com.example.downstream.$1" "${@:2}" \
    > "$work/out.txt" 2> "$work/err.txt" || { tail -n 20 "$work/err.txt" >&2; fail "$1 failed"; }
  tail -n 3 "$work/out.txt"
}
run TrainFewSteps 6 "$work/few-steps"
lines=$(grep -c . "$work/few-steps/metrics.jsonl")
[[ "$lines" == 6 ]] || fail "TrainFewSteps 6 wrote $lines metrics lines, not one per step"
grep -q '^step 6: loss [0-9]' "$work/out.txt" || fail "TrainFewSteps printed no finite loss for step 6"
run OneStepByHand
grep -q '^loss [0-9]' "$work/out.txt" || fail "OneStepByHand printed no finite loss"
run MultiCropBatches
grep -qx '\[256, 1, 14, 14\]' "$work/out.txt" || fail "MultiCropBatches: the locals of 64 images are not [256, 1, 14, 14]"
run BackboneGraph "$work/vit.safetensors"
[[ -s "$work/vit.safetensors" ]] || fail "BackboneGraph wrote no backbone file"
run Pretrain 1 "$work/fm"
[[ -s "$work/fm/teacher.safetensors" ]] || fail "Pretrain wrote no teacher.safetensors"
# Images to search: the first 12 bundled test images as PNG files (03.png is also the query).
cat > "$work/Pngs.java" <<'JAVA'
import io.mugs.data.IdxImageSource;
import io.mugs.data.Image;
import java.awt.image.BufferedImage;
import java.io.File;
import javax.imageio.ImageIO;

public class Pngs {
    public static void main(String[] args) throws Exception {
        IdxImageSource test = IdxImageSource.bundledFashionMnist(false);
        new File(args[0]).mkdirs();
        for (int i = 0; i < 12; i++) {
            Image img = test.load(i);
            BufferedImage b = new BufferedImage(img.width(), img.height(), BufferedImage.TYPE_BYTE_GRAY);
            for (int y = 0; y < img.height(); y++) {
                for (int x = 0; x < img.width(); x++) {
                    b.getRaster().setSample(x, y, 0, Math.round(img.get(0, y, x)));
                }
            }
            ImageIO.write(b, "png", new File(args[0], String.format("%02d.png", i)));
        }
    }
}
JAVA
java -cp "$(cat "$work/classpath.txt")" "$work/Pngs.java" "$work/images"
run NearestImages "$work/fm/teacher.safetensors" "$work/images" "$work/images/03.png"
head -n 1 "$work/out.txt" | grep -q '^1\.000 .*03\.png$' || fail "NearestImages: the query is not its own nearest image"
[[ $(grep -c . "$work/out.txt") == 5 ]] || fail "NearestImages printed $(grep -c . "$work/out.txt") lines, not 5"
echo "check-downstream: passed"
