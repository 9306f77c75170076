#!/usr/bin/env bash
# Checks that Mugs for Java works as a dependency of another Maven project, as a user would meet it:
#   1. installs every module (jars, sources and javadoc jars, mugs-bom) into a throwaway local repository;
#   2. checks that the published artifacts are complete and that mugs-core alone brings no native backend, no
#      logging binding and no charting library;
#   3. builds downstream/ (imports mugs-bom, depends on mugs-core, picks nd4j-native and Logback itself) against
#      that repository and runs a few training steps through Pretraining.fit (downstream/.../TrainFewSteps.java).
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

echo "check-downstream: installing Mugs $version into $repo"
mvnw -Prelease install -DskipTests

for m in mugs-io mugs-engine mugs-vit mugs-losses mugs-data mugs-plots mugs-eval mugs-core; do
  for suffix in .jar -sources.jar -javadoc.jar .pom; do
    f="$repo/io/mugs/$m/$version/$m-$version$suffix"
    [[ -s "$f" ]] || fail "$f was not installed; check the $m module's pom.xml"
  done
done
[[ -s "$repo/io/mugs/mugs-bom/$version/mugs-bom-$version.pom" ]] || fail "mugs-bom $version was not installed"

cd "$root/downstream"
# The library's own runtime classpath: the downstream project without its backend profile.
mvnw -P '!cpu' -Dmugs.version="$version" dependency:list -DincludeScope=runtime -DoutputFile="$work/library-deps.txt"
forbidden=$(grep -E 'org\.nd4j:nd4j-(native|cuda)[^:]*:jar:|org\.bytedeco:(openblas|cuda|mkl)|org\.bytedeco:javacpp:jar:[a-z]|ch\.qos\.logback|org\.knowm\.xchart|pdfbox|io\.mugs:mugs-plots' \
  "$work/library-deps.txt" | grep -v 'nd4j-native-api' || true)
[[ -z "$forbidden" ]] || fail "a user of mugs-core inherits $(echo $forbidden | tr '\n' ' '); move it to test scope or to the application layer"
echo "check-downstream: mugs-core brings $(grep -c ':compile\|:runtime' "$work/library-deps.txt") jars, none of them native, logging or charting"

mvnw -Dmugs.version="$version" package dependency:build-classpath -Dmdep.outputFile="$work/classpath.txt"
OMP_NUM_THREADS=1 java -Xmx2g -Dorg.bytedeco.javacpp.maxphysicalbytes=4G -Dorg.bytedeco.javacpp.maxbytes=3G \
  -cp "target/classes:$(cat "$work/classpath.txt")" com.example.downstream.TrainFewSteps "$work/run" 6
