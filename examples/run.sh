#!/usr/bin/env bash
# Runs one test of the dist_test demo suite inside a task's sandbox.
#   run.sh go PACKAGE TEST   a test function of a compiled Go test binary
#   run.sh script NAME       one of scripts/NAME.sh
set -euo pipefail
kind=$1; shift
case "$kind" in
  go) exec "./bin/$1.test" -test.v -test.run "^$2\$" ;;
  script) exec bash "scripts/$1.sh" ;;
  *) echo "unknown kind of test: $kind" >&2; exit 2 ;;
esac
