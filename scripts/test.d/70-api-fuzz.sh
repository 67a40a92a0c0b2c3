# Sourced by scripts/test.sh: Schemathesis against the real facepay-server and docs/openapi.yaml (a bounded run:
# 25 examples per operation). Fails the test run on any 5xx or any response that breaks the document.
"$root/scripts/api-fuzz.sh"
