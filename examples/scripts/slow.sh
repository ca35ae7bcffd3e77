# Takes a few seconds, like an integration test.
sleep "${1:-2}"
echo "done"
