# tests/memory/common.sh -- sourced by tests/memory/memcheck and
# tests/memory/soak: a temp dir under build/memory/, keys, the caller
# token (and one signed with a key the gateway does not know), the signed
# bundle (tests/memory/policy.json), a real redis-server without
# persistence, a fast upstream (a plain nginx answering a fixed
# chat.completion), the gateway's nginx.conf, wrk with tests/memory/mix.lua,
# and the gateway's metrics.  Callers set $name (the log prefix) first.
# shellcheck shell=sh disable=SC2034

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
B="$repo/build"
FOXGOV="$B/bin/foxgov"
MODULE="$B/modules/ngx_http_foxgov_module.so"

say() { printf '%s: %s\n' "$name" "$*" >&2; }
die() { printf '%s: ERROR: %s\n' "$name" "$*" >&2; exit 1; }

need() {
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || die "$c is not installed"
    done
}

count() {   # count NAME VALUE: a whole number >= 1
    case "$2" in
    ''|*[!0-9]*|0) echo "$name: $1 must be a whole number >= 1, not '$2'" >&2
                   exit 2 ;;
    esac
}

NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# ------------------------------------------------------ temp dir, cleanup

mkdir -p "$B/memory"
T=$(mktemp -d "$B/memory/$name.XXXXXX")
# as root nginx's workers run as nobody, who must read the configs, the
# bundle, the JWKS, the credentials and write the spool
chmod 0755 "$T"
pids=""

cleanup() {
    for p in $pids; do
        kill -TERM "$p" 2>/dev/null || :
    done
    for p in $pids; do
        wait "$p" 2>/dev/null || :
    done
    pids=""
    if [ -n "${trimmer:-}" ]; then
        kill "$trimmer" 2>/dev/null || :
        wait "$trimmer" 2>/dev/null || :
    fi
    if [ "${MEM_KEEP:-0}" = 1 ]; then
        say "kept $T"
    else
        rm -rf "$T"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free loopback TCP ports, picked at random below the kernel's ephemeral
# range (10000..32767 with Linux's default 32768-60999), so that no
# outgoing connection of another test takes one between the pick and the
# bind (it did: "redis-server did not start" beside a busy test run); a
# port any TCP socket uses now is skipped
eph_lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ "${eph_lo:-0}" -gt 12000 ]; then
    port_lo=10000; port_n=$((eph_lo - 10000))
else
    port_lo=20000; port_n=40000
fi
used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' |
    tr '\n' ' ')
pick_port() {
    while :; do
        p=$(( ($(od -An -N2 -tu2 /dev/urandom) % port_n) + port_lo ))
        case " $used " in *" $p "*) continue ;; esac
        used="$used $p"
        echo "$p"
        return
    done
}
up_port=$(pick_port)
gw_port=$(pick_port)
redis_port=$(pick_port)

wait_port() {   # wait_port PORT: until something listens (10 s)
    i=0
    until [ -n "$(ss -Htln "sport = :$1" 2>/dev/null)" ]; do
        i=$((i + 1))
        [ $i -lt 100 ] || return 1
        sleep 0.1
    done
}

# --------------------------------------------- keys, tokens, bundle, files

make_files() {
    say "making keys, tokens and the signed bundle in $T"
    mkdir -p "$T/keys" "$T/other" "$T/bundle-src" "$T/creds" "$T/spool" \
        "$T/redis"
    chmod 0777 "$T/spool"
    "$FOXGOV" keygen --kid caller --out "$T/keys" >/dev/null
    "$FOXGOV" keygen --kid bundler --out "$T/keys" >/dev/null
    # same kid, another key: a token the gateway cannot verify (401)
    "$FOXGOV" keygen --kid caller --out "$T/other" >/dev/null
    "$FOXGOV" token mint --key "$T/keys/caller.pem" --tenant acme \
        --sub agent-1 --workspace ws1 --environment prod --cap 'model:*' \
        --cap 'tool:servicenow.incident:write' --ttl 4h >"$T/token"
    "$FOXGOV" token mint --key "$T/other/caller.pem" --tenant acme \
        --sub agent-1 --workspace ws1 --environment prod --cap 'model:*' \
        --ttl 4h >"$T/badtoken"
    printf '{"revision": "memory-1", "roots": ["foxgov"]}\n' \
        >"$T/bundle-src/.manifest"
    cp "$here/policy.json" "$T/bundle-src/policy.json"
    "$FOXGOV" bundle build "$T/bundle-src" -o "$T/bundle.tar.gz" \
        --key "$T/keys/bundler.pem" >/dev/null
    cp "$here/snow-write.schema.json" "$T/snow-write.schema.json"
    printf 'sk-memory-openai\n' >"$T/creds/openai"
    printf 'snow-memory-token\n' >"$T/creds/servicenow"
    chmod 0644 "$T"/creds/* "$T/bundle.tar.gz" "$T"/keys/*.jwks.json \
        "$T/snow-write.schema.json"
}

# ----------------------------------------------------------------- configs

# the upstream: a plain nginx answering every request with a fixed
# chat.completion (bench/gateway/response.json)
write_upstream_conf() {
    response=$(cat "$repo/bench/gateway/response.json")
    cat >"$T/upstream.conf" <<EOF
worker_processes 1;
master_process on;
daemon off;
pid $T/upstream.pid;
error_log $T/upstream-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $T/upstream-tmp/body;
    proxy_temp_path $T/upstream-tmp/proxy;
    fastcgi_temp_path $T/upstream-tmp/fastcgi;
    uwsgi_temp_path $T/upstream-tmp/uwsgi;
    scgi_temp_path $T/upstream-tmp/scgi;
    server {
        listen 127.0.0.1:$up_port;
        keepalive_requests 1000000;
        location / {
            default_type application/json;
            return 200 '$response';
        }
    }
}
EOF
}

# write_gateway_conf MASTER KEEPALIVE: the gateway, with one worker
# (MASTER on) or as a single process (MASTER off); KEEPALIVE the
# upstream keepalive connections (0: none)
write_gateway_conf() {
    if [ "$2" -gt 0 ]; then
        keepalive="keepalive $2;"
        conn='proxy_set_header Connection "";'
    else
        keepalive=""
        conn=""
    fi
    cat >"$T/gateway.conf" <<EOF
load_module $MODULE;
worker_processes 1;
master_process $1;
daemon off;
pid $T/gateway.pid;
error_log $T/gateway-error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $T/gateway-tmp/body;
    proxy_temp_path $T/gateway-tmp/proxy;
    fastcgi_temp_path $T/gateway-tmp/fastcgi;
    uwsgi_temp_path $T/gateway-tmp/uwsgi;
    scgi_temp_path $T/gateway-tmp/scgi;

    foxgov_policy_bundle $T/bundle.tar.gz keys=$T/keys/bundler.jwks.json;
    foxgov_auth_keys $T/keys/caller.jwks.json;
    foxgov_token_cache 1024;
    foxgov_redis 127.0.0.1:$redis_port;
    foxgov_spool $T/spool;

    upstream provider {
        server 127.0.0.1:$up_port;
        $keepalive
    }

    proxy_http_version 1.1;
    $conn
    proxy_buffering off;

    server {
        listen 127.0.0.1:$gw_port;
        keepalive_requests 1000000;

        location /v1/ {
            foxgov_call model openai;
            foxgov_credential openai file=$T/creds/openai;
            proxy_pass http://provider;
        }

        location /api/now/table/incident {
            foxgov_call tool servicenow.incident action=write risk=high
                        schema=$T/snow-write.schema.json;
            foxgov_credential servicenow file=$T/creds/servicenow;
            proxy_pass http://provider;
        }

        location = /metrics {
            foxgov_metrics;
        }
    }
}
EOF
}

# ----------------------------------------------------------------- servers

# Redis without persistence: the records are trimmed as they come (below),
# a ledger is not what is measured here
start_redis() {
    redis-server --port "$redis_port" --bind 127.0.0.1 --dir "$T/redis" \
        --appendonly no --save '' --daemonize no >>"$T/redis.log" 2>&1 &
    pids="$pids $!"
    wait_port "$redis_port" || die "redis-server did not start"
}

# The stream grows by about three records a call: keep it short, as a
# ledgerd reading it would, so Redis's memory stays bounded.
start_trimmer() {
    (
        while :; do
            redis-cli -p "$redis_port" XTRIM 'foxgov:ev:{acme}' MAXLEN '~' \
                10000 >/dev/null 2>&1 || :
            sleep 1
        done
    ) &
    trimmer=$!
}

start_upstream() {
    mkdir -p "$T/upstream-tmp"
    "$NGINX" -p "$T" -e "$T/upstream-error.log" -c "$T/upstream.conf" \
        >>"$T/upstream-stderr.log" 2>&1 &
    pids="$pids $!"
    wait_port "$up_port" || die "the upstream nginx did not start"
}

# ------------------------------------------------------------- load, checks

# run_mix REQUESTS CONNECTIONS MAXSECS OUT: wrk with mix.lua until
# REQUESTS answers (or MAXSECS); the "mix:" line in OUT
run_mix() {
    rm -f "$T/mix.done"
    MEM_TOKEN_FILE="$T/token" MEM_BADTOKEN_FILE="$T/badtoken" \
    MEM_REQUESTS="$1" MEM_DONE_FILE="$T/mix.done" \
        wrk -t1 -c"$2" -d"$3"s --timeout 30s -s "$here/mix.lua" \
        "http://127.0.0.1:$gw_port" >"$4" 2>&1 &
    wrk=$!
    # wrk's main thread sleeps for -d: once mix.lua has had its answers,
    # SIGINT until wrk reports and exits (see mix.lua)
    while kill -0 "$wrk" 2>/dev/null; do
        if [ -f "$T/mix.done" ]; then
            kill -INT "$wrk" 2>/dev/null || :
        fi
        sleep 0.2
    done
    wait "$wrk" || { cat "$4" >&2; die "wrk failed"; }
}

# mix_field OUT KEY: a number from the "mix:" line
mix_field() {
    sed -n "s/^mix: .* $2=\([0-9]*\).*/\1/p; s/^mix: $2=\([0-9]*\).*/\1/p" \
        "$1" | head -n 1
}

# check_mix OUT REQUESTS: every answer one the mix expects, at least
# REQUESTS of them, in the mix's proportions (within 1%)
check_mix() {
    line=$(grep '^mix: ' "$1") || { cat "$1" >&2; die "no mix: line"; }
    awk -v want="$2" '
    {
        for (i = 2; i <= NF; i++) {
            split($i, kv, "="); v[kv[1]] = kv[2]
        }
        n = v["answers"]
        if (n < want) { print "fewer answers than asked: " n; exit 1 }
        if (v["other"] != 0) { print "unexpected statuses"; exit 1 }
        split("200:0.5 403:0.125 401:0.125 400:0.125 428:0.125", e, " ")
        for (k in e) {
            split(e[k], se, ":")
            if (v[se[1]] < n * (se[2] - 0.01) || v[se[1]] > n * (se[2] + 0.01)) {
                print "status " se[1] ": " v[se[1]] " of " n; exit 1
            }
        }
    }' <<EOF || { cat "$1" >&2; die "the mix's answers are wrong: $line"; }
$line
EOF
}

# metric NAME_AND_LABELS: its value from the gateway's /metrics (0 if none)
metric() {
    curl -s "http://127.0.0.1:$gw_port/metrics" |
        awk -v m="$1" 'index($0, m " ") == 1 { print $2; f = 1 }
            END { if (!f) print 0 }'
}

calls_total() {
    curl -s "http://127.0.0.1:$gw_port/metrics" |
        awk '/^foxgov_calls_total\{/ { n += $2 } END { print n + 0 }'
}

# one call of each kind with curl, before the load: the answers expected
smoke() {
    tok=$(cat "$T/token")
    bad=$(cat "$T/badtoken")
    u="http://127.0.0.1:$gw_port"
    got=""
    for spec in \
        "200 $tok /v1/chat/completions {\"model\":\"gpt-4o-mini\",\"messages\":[]}" \
        "403 $tok /v1/chat/completions {\"model\":\"gpt-4-32k\",\"messages\":[]}" \
        "401 $bad /v1/chat/completions {\"model\":\"gpt-4o-mini\",\"messages\":[]}" \
        "400 $tok /v1/chat/completions {\"model\":" \
        "428 $tok /api/now/table/incident {\"priority\":\"2\"}"
    do
        set -- $spec
        code=$(curl -s -o "$T/smoke.body" -w '%{http_code}' -X POST "$u$3" \
            -H 'Content-Type: application/json' \
            -H "Authorization: Bearer $2" --data-binary "$4") || code=000
        if [ "$code" != "$1" ]; then
            cat "$T/smoke.body" >&2
            echo >&2
            tail -n 20 "$T/gateway-error.log" >&2 2>/dev/null || :
            die "$3 answered $code, not $1"
        fi
        got="$got $code"
    done
    say "one call of each kind answered:$got"
}
