# Hangs, and ignores SIGTERM: dist_test kills it when its timeout passes.
trap 'echo "ignoring SIGTERM" >&2' TERM
echo "waiting for a lock that never comes"
for _ in $(seq 600); do sleep 1; done
