#!/usr/bin/env bash
# The dist_test demo: runs the example suite in examples/ on the embedded
# default and shows what a user sees. `make demo` runs it.
#
# It builds dist_test and the suite's test binaries, starts `dist_test local`
# in the background on a free loopback port, archives the inputs, submits the
# job, shows progress until it ends, fetches the logs and artifacts of what
# failed, and stops what it started. Set DEMO_KEEP=1 to leave the master
# running so that you can browse its dashboard.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
work=${DEMO_DIR:-$root/.demo}
bin=$root/bin/dist_test
slots=${DEMO_SLOTS:-4}

rm -rf "$work/results" "$work/url" "$work/job.json"
mkdir -p "$work" "$here/bin"

echo "==> building dist_test and the suite's test binaries"
# Stamped with the version as make build stamps it (make demo passes VERSION).
version=${VERSION:-$(cd "$root" && git describe --always --dirty 2>/dev/null || echo dev)}
(cd "$root" && go build -ldflags "-X main.version=$version" -o "$bin" ./cmd/dist_test)
for pkg in mathx textx; do
  (cd "$here/suite" && go test -c -o "$here/bin/$pkg.test" "./$pkg")
done

echo "==> starting dist_test local ($slots slots, data in $work/data)"
"$bin" local --listen 127.0.0.1:0 --url-file "$work/url" --data-dir "$work/data" \
  --slaves "$slots" --heartbeat-interval 1s >"$work/local.log" 2>&1 &
pid=$!
stop() {
  if [ "${DEMO_KEEP:-0}" = 1 ]; then
    echo "==> dist_test local keeps running (pid $pid); stop it with: kill $pid"
    return
  fi
  kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  echo "==> stopped dist_test local; its log is $work/local.log"
}
trap stop EXIT
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
[ -s "$work/url" ] || { echo "dist_test local did not start:"; cat "$work/local.log"; exit 1; }
url=$(cat "$work/url")
export DIST_TEST_MASTER=$url ISOLATE_SERVER=$url DIST_TEST_JOB_PATH=$work/last-job DIST_TEST_CNF=/dev/null

# Each task is one manifest: the same files, a different command.
archive() { # KIND NAME TEST
  "$bin" isolate archive --isolate "$here/suite.isolate" --extra-variable "KIND=$1" \
    --extra-variable "NAME=$2" --extra-variable "TEST=$3" 2>/dev/null | tail -n 1
}
task() { # HASH DESCRIPTION TIMEOUT RETRIES [GLOB]
  local globs=""
  [ -n "${5:-}" ] && globs=", \"artifact_archive_globs\": [\"$5\"]"
  printf '%s    {"isolate_hash": "%s", "description": "%s", "timeout": %s, "max_retries": %s%s}' \
    "${sep:-}" "$1" "$2" "$3" "$4" "$globs"
  sep=$',\n'
}

echo "==> archiving inputs into the isolate server at $url"
{
  echo '{"tasks": ['
  for pkg in mathx textx; do
    for t in $("$here/bin/$pkg.test" -test.list '.*'); do
      task "$(archive go "$pkg" "$t")" "$pkg.$t" 60 0
    done
  done
  task "$(archive script fail "")" "scripts.fail" 60 1
  task "$(archive script flaky "")" "scripts.flaky" 60 2
  task "$(archive script hang "")" "scripts.hang" 3 0
  task "$(archive script artifacts "")" "scripts.artifacts" 60 0 "out/**"
  task "$(archive script slow "")" "scripts.slow" 60 0
  printf '\n]}\n'
} >"$work/job.json"
echo "    $(grep -c isolate_hash "$work/job.json") tasks in $work/job.json"

echo "==> submitting; dashboard at $url/"
start=$(date +%s)
set +e
"$bin" submit --name demo -l -a -d "$work/results" "$work/job.json"
code=$?
set -e
echo "==> the job took $(( $(date +%s) - start ))s and exited $code (0: all passed, 88: some failed)"

echo "==> logs and artifacts of failed tasks, fetched into $work/results:"
ls "$work/results" | sed 's/^/    /'
first=$(ls "$work/results"/*.stderr 2>/dev/null | head -n 1 || true)
if [ -n "$first" ]; then
  echo "==> $(basename "$first"):"
  sed 's/^/    /' "$first" | head -n 20
fi
echo "==> the job's page: $url/job?job_id=$(cat "$work/last-job")"
[ "$code" = 88 ] || [ "$code" = 0 ]
