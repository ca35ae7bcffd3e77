# Fails on purpose, as a broken test would.
echo "checking the answer..."
echo "expected 42, got 41" >&2
exit 1
