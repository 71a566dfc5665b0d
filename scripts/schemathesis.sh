#!/usr/bin/env bash
# Schema fuzzing: runs schemathesis (every check) against the OpenAPI document the service
# serves, with authentication on and a valid API key, and exits non-zero on any finding (a 5xx,
# a response that does not match its schema, a schema-valid request refused, a schema-invalid
# one accepted, an undocumented status code, ...). See docs/security.md, "Schema fuzzing with
# schemathesis".
#
#   scripts/schemathesis.sh                      # ~100 examples per operation, about a minute
#   scripts/schemathesis.sh -n 500 --seed 4      # extra arguments go to `schemathesis run`
#
# What it does, from a clean checkout: builds the service, creates a throwaway database, starts
# the service in the background (built-in Azure simulator, --auth api-keys, the policy
# scripts/schemathesis-policy.json that gives the key every action on everything), creates the
# API key, runs schemathesis, then stops the service and drops the database.
#
# Needs PostgreSQL on 127.0.0.1:5432 (trust, user postgres; as for the tests) and Python 3 with
# pip: schemathesis is installed with `pip install --user` if it is missing.
#
# Environment: ACR_ATTACH_FUZZ_PORT (18090), ACR_ATTACH_FUZZ_PG (postgres://postgres@127.0.0.1:5432),
# SCHEMATHESIS_VERSION (4.32.5, the version the findings were fixed against).
set -euo pipefail
cd "$(dirname "$0")/.."

port="${ACR_ATTACH_FUZZ_PORT:-18090}"
pg="${ACR_ATTACH_FUZZ_PG:-postgres://postgres@127.0.0.1:5432}"
version="${SCHEMATHESIS_VERSION:-4.32.5}"
database="acr_attach_schemathesis_$$"
export DATABASE_URL="$pg/$database"
base="http://127.0.0.1:$port"

# schemathesis: the one on PATH, or the user install, or install it.
export PATH="$HOME/.local/bin:$PATH"
if ! command -v schemathesis >/dev/null 2>&1; then
    echo "installing schemathesis $version (pip install --user)" >&2
    python3 -m pip install --user --quiet "schemathesis==$version"
fi
installed="$(schemathesis --version | awk '{print $NF}')"
if [ "$installed" != "$version" ]; then
    echo "note: schemathesis $installed is installed; the checks below were tuned with $version" >&2
fi

if curl -s -o /dev/null "$base/healthz"; then
    echo "something already listens on $base; set ACR_ATTACH_FUZZ_PORT" >&2
    exit 2
fi

cargo build --quiet
target_dir="$(cargo metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
bin="$target_dir/debug/acr-attach"

work="$(mktemp -d)"
server_pid=""
cleanup() {
    status=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if command -v psql >/dev/null 2>&1; then
        psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $database WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ "$status" -ne 0 ]; then
        echo "service log (last 40 lines of $work/service.log):" >&2
        tail -n 40 "$work/service.log" >&2 2>/dev/null || true
    else
        rm -rf "$work"
    fi
    exit "$status"
}
trap cleanup EXIT INT TERM

# The key first (it creates the database and applies the migrations); printed on stdout only.
key="$("$bin" keys create --name schemathesis 2>"$work/keys.log" | tail -n 1)"
case "$key" in
    acr_*) ;;
    *) echo "could not create the API key:" >&2; cat "$work/keys.log" >&2; exit 2 ;;
esac

# Rate limits far above what the fuzzer sends: 429 is documented, but it is not what this run
# is about.
"$bin" serve --simulator --auth api-keys --policy scripts/schemathesis-policy.json \
    --listen "127.0.0.1:$port" --rate-limit 100000 --rate-burst 100000 \
    >"$work/service.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 60); do
    curl -sf -o /dev/null "$base/readyz" && break
    kill -0 "$server_pid" 2>/dev/null || { echo "the service exited" >&2; exit 2; }
    sleep 1
done
curl -sf -o /dev/null "$base/readyz" || { echo "the service did not become ready" >&2; exit 2; }

# Every check is on. Two settings describe deliberate behaviour no schema can express; each is
# as narrow as schemathesis allows:
#
# 1. positive_data_acceptance on the POSTs also accepts 422. The fuzzer draws Idempotency-Key
#    values from a small space ("0", "00", ...), so it reuses a key with another body, which the
#    API refuses with 422 IdempotencyKeyReused: documented on exactly these operations, and a
#    property of the request history, not of one request. 422 means nothing else in this API.
#    Every other status (400 included) still fails the check, 5xx are still failures
#    (not_a_server_error), and the 422 body is still checked against its schema.
#    (404 for a random job id and 409 for cancelling a finished job are in the check's defaults.)
#
# 2. Stateful links: the explicit OpenAPI links (every answer carrying a job links to reading
#    and cancelling it) plus links inferred from Location headers. Links inferred by field-name
#    analysis are off: one fed AuditRecord.jobId, which is null for records without a job, into
#    POST /v1/jobs/{id}/cancel as the string "None" and then called the 400 a schema-valid
#    request refused (schemathesis treats link-fed values as positive data).
cat >"$work/schemathesis.toml" <<'EOF'
continue-on-failure = true

[[operations]]
include-path-regex = "^/v1/(attachments|detachments|kubelet-identities|jobs/\\{id\\}/cancel)$"
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]

[phases.stateful.inference]
algorithms = ["location-headers"]
EOF

cd "$work"
schemathesis --config-file "$work/schemathesis.toml" run "$base/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks all \
    --max-examples 100 \
    --workers 2 \
    --generation-database none \
    "$@"
