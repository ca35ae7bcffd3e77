# Fails on its first attempt and passes on the retry, as a flaky test does.
# dist_test tells a task which attempt it is in DIST_TEST_ATTEMPT.
echo "attempt ${DIST_TEST_ATTEMPT:-0}"
if [ "${DIST_TEST_ATTEMPT:-0}" = 0 ]; then
  echo "lost a race with the clock" >&2
  exit 1
fi
echo "passed this time"
