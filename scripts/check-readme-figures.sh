#!/usr/bin/env bash
# One source for every figure: each figure the README states (a percentage, minutes, "N min N s", GB) must occur in
# the docs/ page its paragraph cites, and a run's tagged figures (<!-- run NAME: key = value -->) must agree on every
# page. Rules in scripts/CheckFigures.java. CI runs it (.ci/run); about 2 s.
#
#   scripts/check-readme-figures.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec java scripts/CheckFigures.java .
