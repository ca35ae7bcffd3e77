# Writes test reports as artifacts: files under out/ are collected into the
# task's artifact archive.
mkdir -p out/reports
echo "<testsuite name=\"artifacts\" tests=\"1\" failures=\"0\"/>" > out/reports/junit.xml
printf 'line %d\n' $(seq 100) > out/trace.log
echo "scratch data in TEST_TMPDIR" > "$TEST_TMPDIR/scratch.txt"
echo "wrote out/reports/junit.xml and out/trace.log"
