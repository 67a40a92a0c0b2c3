# Sourced by scripts/test.sh: every cargo-fuzz target for 30 s from its committed seeds (scripts/fuzz.sh; long runs
# are `scripts/fuzz.sh 600`). A crash fails CI with the input left in fuzz/artifacts/<target>/.
fuzz_started=$(date +%s)
FUZZ_NICE=5 "$root/scripts/fuzz.sh" 30
echo "70-fuzz: fuzzing took $(( $(date +%s) - fuzz_started )) s" >&2
