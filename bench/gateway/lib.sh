# bench/gateway/lib.sh -- what bench/gateway/run and bench/report/run
# share, sourced by both (POSIX sh; bench code, not product code): the CPU
# pinning, loopback ports, the keys, caller token and signed bundle, the
# nginx configs of the gateways (plain, and foxgov with or without Redis
# evidence), starting nginx and Redis, the curl check and the wrk run with
# its one-line result.
#
# The caller sets, before sourcing: repo (the checkout), and defines say
# and die; before calling the functions: T (the temp dir), FOXGOV, MODULE,
# NGINX, pids (a list the caller's trap kills), and for gateway configs
# up_port (the upstream) and redis_port.  Optional:
#   gw_http_extra  lines added to every gateway's http{} (default none)
#   gw_script      wrk's Lua script (default bench/gateway/post.lua)

gw_here="$repo/bench/gateway"
gw_script=${gw_script:-$gw_here/post.lua}
gw_http_extra=${gw_http_extra:-}
path=/v1/chat/completions
traceparent=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01

# CPUs: the gateway (nginx, or any other gateway measured) on one CPU,
# wrk, the upstream and Redis on the others, when taskset is there and
# there are two or more.  The gateway's CPU is the one that has served
# the fewest device interrupts (/proc/interrupts; the last CPU on a tie):
# a VM often routes its disk's completion interrupts to one CPU, and
# with Redis fsyncing every write (appendfsync always) the interrupt and
# softirq work of Redis's disk I/O would otherwise be charged to the
# gateway process that happens to run there (measured: 12% of the async
# worker's samples, 120-140 against 170-190 CPU us a 16 KiB streamed
# call).  Sets ncpu, gw_cpu, load_cpus, pin_gw, pin_load, pinning.
# shellcheck disable=SC2034 # the callers use them
gw_cpus() {
    ncpu=$(nproc 2>/dev/null || echo 1)
    if command -v taskset >/dev/null 2>&1 && [ "$ncpu" -ge 2 ]; then
        gw_cpu=$(awk -v n="$ncpu" '
            NR == 1 { next }
            $1 ~ /^[0-9]+:$/ { for (i = 0; i < n; i++) irq[i] += $(i + 2) }
            END {
                best = n - 1
                for (i = n - 2; i >= 0; i--) if (irq[i] < irq[best]) best = i
                print best
            }' /proc/interrupts 2>/dev/null) || gw_cpu=""
        case "$gw_cpu" in
        ''|*[!0-9]*) gw_cpu=$((ncpu - 1)) ;;
        esac
        [ "$gw_cpu" -lt "$ncpu" ] || gw_cpu=$((ncpu - 1))
        load_cpus=$(awk -v n="$ncpu" -v g="$gw_cpu" 'BEGIN {
            s = ""; for (i = 0; i < n; i++) if (i != g) s = s (s == "" ? "" : ",") i
            print s }')
        pin_gw="taskset -c $gw_cpu"
        pin_load="taskset -c $load_cpus"
        pinning="gateway nginx on CPU $gw_cpu (the fewest device interrupts); wrk and the upstream on CPU $load_cpus"
    else
        gw_cpu=""
        load_cpus=""
        pin_gw=""
        pin_load=""
        pinning="not pinned (no taskset or one CPU)"
    fi
}

# free loopback TCP ports, picked at random below the kernel's ephemeral
# range (10000..32767 with Linux's default 32768-60999), so that no
# outgoing connection of the machine's other tests holds one when nginx
# binds it; a port any TCP socket uses now is skipped
eph_lo=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
if [ "${eph_lo:-0}" -gt 12000 ]; then
    port_lo=10000; port_n=$((eph_lo - 10000))
else
    port_lo=20000; port_n=40000
fi
used=""
# pick_ports VAR...: a distinct free port into each variable
pick_ports() {
    for v in "$@"; do
        p=$(pick_port)
        used="$used $p"
        eval "$v=$p"
    done
}
pick_port() {
    inuse=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | tr '\n' ' ')
    while :; do
        p=$(( ($(od -An -N2 -tu2 /dev/urandom) % port_n) + port_lo ))
        case " $used $inuse " in *" $p "*) continue ;; esac
        used="$used $p"
        echo "$p"
        return
    done
}

# gw_credentials: two Ed25519 key pairs, the caller token ($T/token), the
# signed bundle of bench/gateway/policy.json ($T/bundle.tar.gz) and the
# provider credential ($T/creds/openai, also in $credential)
gw_credentials() {
    mkdir -p "$T/keys" "$T/bundle-src" "$T/creds"
    "$FOXGOV" keygen --kid caller --out "$T/keys" >/dev/null
    "$FOXGOV" keygen --kid bundler --out "$T/keys" >/dev/null
    "$FOXGOV" token mint --key "$T/keys/caller.pem" --tenant acme \
        --sub agent-1 --workspace ws1 --environment prod --cap 'model:*' \
        --ttl 1h >"$T/token"
    printf '{"revision": "bench-gateway-1", "roots": ["foxgov"]}\n' \
        >"$T/bundle-src/.manifest"
    cp "$gw_here/policy.json" "$T/bundle-src/policy.json"
    "$FOXGOV" bundle build "$T/bundle-src" -o "$T/bundle.tar.gz" \
        --key "$T/keys/bundler.pem" >&2
    credential=sk-bench-openai-credential
    printf '%s\n' "$credential" >"$T/creds/openai"
    chmod 0644 "$T/creds/openai" "$T/bundle.tar.gz" "$T"/keys/*.jwks.json
}

# nginx.conf head: $1 name; $2 load_module line or empty
conf_head() {
    cat <<EOF
$2
worker_processes 1;
master_process on;
daemon off;
pid $T/$1.pid;
error_log $T/$1-error.log warn;

events {
    worker_connections 1024;
}

http {
    access_log off;
    client_body_temp_path $T/$1-tmp/body;
    proxy_temp_path $T/$1-tmp/proxy;
    fastcgi_temp_path $T/$1-tmp/fastcgi;
    uwsgi_temp_path $T/$1-tmp/uwsgi;
    scgi_temp_path $T/$1-tmp/scgi;
EOF
}

# the gateway's common part; $1: the lines foxgov adds to location /v1/
# (none for plain), $2: the port
gateway_body() {
    if [ -n "$gw_http_extra" ]; then
        printf '%s\n' "$gw_http_extra"
    fi
    cat <<EOF

    upstream provider {
        server 127.0.0.1:$up_port;
        keepalive 64;
    }

    proxy_http_version 1.1;
    proxy_set_header Connection "";
    proxy_buffering off;

    server {
        listen 127.0.0.1:$2;
        location /v1/ {
$1
            proxy_pass http://provider;
        }
    }
}
EOF
}

# gw_conf_plain PORT: $T/plain.conf, stock nginx, the module not loaded
gw_conf_plain() {
    {
        conf_head plain ""
        gateway_body "" "$1"
    } >"$T/plain.conf"
}

# gw_conf_foxgov NAME PORT [async|strict]: $T/NAME.conf, the same proxy
# with foxgov; with a mode, the evidence goes to the Redis at $redis_port
# (foxgov_evidence MODE, a spool in $T/spool-NAME), without one it is
# built and only logged at debug level
gw_conf_foxgov() {
    if [ -n "${3:-}" ]; then
        mkdir -p "$T/spool-$1"
        chmod 0777 "$T/spool-$1"
    fi
    {
        conf_head "$1" "load_module $MODULE;"
        cat <<EOF

    foxgov_policy_bundle $T/bundle.tar.gz keys=$T/keys/bundler.jwks.json;
    foxgov_auth_keys $T/keys/caller.jwks.json;
    foxgov_token_cache 1024;
EOF
        if [ -n "${3:-}" ]; then
            cat <<EOF
    foxgov_redis 127.0.0.1:$redis_port;
    foxgov_spool $T/spool-$1;
EOF
            gateway_body "            foxgov_call model openai;
            foxgov_evidence $3;
            foxgov_credential openai file=$T/creds/openai;" "$2"
        else
            gateway_body "            foxgov_call model openai;
            foxgov_credential openai file=$T/creds/openai;" "$2"
        fi
    } >"$T/$1.conf"
}

# start NAME PIN: nginx in the foreground of a background job, so $! is
# the master; waits for the worker
start() {
    mkdir -p "$T/$1-tmp"
    $2 "$NGINX" -p "$T" -e "$T/$1-error.log" -c "$T/$1.conf" \
        >>"$T/$1-stderr.log" 2>&1 &
    eval "${1}_pid=$!"
    pids="$pids $!"
    i=0
    while [ $i -lt 100 ]; do
        w=$(ps -o pid= --ppid "$(eval echo "\$${1}_pid")" 2>/dev/null \
            | head -n 1 | tr -d ' ')
        if [ -n "$w" ]; then
            eval "${1}_worker=$w"
            return 0
        fi
        kill -0 "$(eval echo "\$${1}_pid")" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    cat "$T/$1-stderr.log" "$T/$1-error.log" >&2 2>/dev/null || :
    die "nginx ($1) did not start"
}

# start_redis PIN: Redis as the quickstart runs it, every write in its
# AOF, fsync always, on $redis_port
start_redis() {
    say "starting redis-server :$redis_port (appendonly yes, appendfsync always)"
    mkdir -p "$T/redis"
    $1 redis-server --port "$redis_port" --bind 127.0.0.1 \
        --dir "$T/redis" --appendonly yes --appendfsync always --save '' \
        --daemonize no >>"$T/redis.log" 2>&1 &
    redis_pid=$!        # taskset execs redis-server: the same process
    pids="$pids $!"
}

# wait_listen PORT...: until something listens on each
wait_listen() {
    for port in "$@"; do
        i=0
        until [ -n "$(ss -Htln "sport = :$port" 2>/dev/null)" ]; do
            i=$((i + 1))
            [ $i -lt 50 ] || die "nothing listens on 127.0.0.1:$port"
            sleep 0.1
        done
    done
}

# check NAME PORT [BODY [EXPECTED [HEADERS]]]: one POST as wrk will send
# it (BODY, default bench/gateway/request.json; the caller token, or
# with HEADERS, a file of extra "Name: value" lines, these and
# $T/token-NAME when it exists); the answer must be 200 with the bytes of
# EXPECTED (default bench/gateway/response.json; "-": any body)
check() {
    c_body=${3:-$gw_here/request.json}
    c_expect=${4:-$gw_here/response.json}
    c_token=$T/token
    [ -f "$T/token-$1" ] && c_token=$T/token-$1
    c_headers=/dev/null
    [ -n "${5:-}" ] && c_headers=$5
    code=$(curl -sS -D "$T/check-$1.head" -o "$T/check-$1.body" \
        -w '%{http_code}' -X POST "http://127.0.0.1:$2$path" \
        -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $(cat "$c_token")" \
        -H "traceparent: $traceparent" -H "@$c_headers" \
        --data-binary "@$c_body") || die "curl to $1 failed"
    if [ "$code" != 200 ] || { [ "$c_expect" != - ] &&
        ! cmp -s "$T/check-$1.body" "$c_expect"; }
    then
        cat "$T/check-$1.head" "$T/check-$1.body" >&2
        echo >&2
        tail -n 20 "$T/$1-error.log" >&2 2>/dev/null || :
        die "$1 answered $code, not 200 with the upstream's response"
    fi
}
header() {  # header NAME FILE: the value of the first such header, or ''
    awk -v h="$1" 'BEGIN { h = tolower(h) ":" }
        tolower(substr($0, 1, length(h))) == h {
            v = substr($0, length(h) + 1); sub(/^[ \t]+/, "", v)
            sub(/\r$/, "", v); print v; exit }' "$2"
}

# the evidence Redis holds: the one tenant's stream
xlen() {
    redis-cli -p "$redis_port" XLEN 'foxgov:ev:{acme}' 2>/dev/null || echo 0
}

tck=$(getconf CLK_TCK 2>/dev/null || echo 100)

cpu_ticks() {   # utime + stime of a process, in clock ticks
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}

redis_ticks() { # Redis's CPU time (start_redis), 0 before it runs
    if [ -n "${redis_pid:-}" ] && [ -r "/proc/$redis_pid/stat" ]; then
        cpu_ticks "$redis_pid"
    else
        echo 0
    fi
}

steal_ticks() { # time the hypervisor gave the machine's CPUs to others
    awk '$1 == "cpu" { print $9 + 0; exit }' /proc/stat 2>/dev/null || echo 0
}

# run NAME PORT CONNECTIONS SECONDS LABEL [--latency]: wrk with
# $gw_script; appends one line to $results (the NAME's worker process,
# ${NAME}_worker, is the one whose CPU time is counted) and fails on any
# error or non-2xx answer (with gw_keep_going=1 it says so and goes on:
# the counts are in the line)
# shellcheck disable=SC2086 # $pin_load and $6 are words or nothing
run() {
    w=$(eval echo "\$${1}_worker")
    c0=$(cpu_ticks "$w")
    r0=$(redis_ticks)
    s0=$(steal_ticks)
    x0=$(xlen)
    out="$T/wrk-$1-$5.txt"
    $pin_load wrk -t1 -c"$3" -d"$4"s $6 -s "$gw_script" \
        "http://127.0.0.1:$2$path" >"$out" 2>&1 ||
        { cat "$out" >&2; die "wrk failed ($1 $5)"; }
    c1=$(cpu_ticks "$w")
    r1=$(redis_ticks)
    s1=$(steal_ticks)
    x1=$(xlen)
    awk -v name="$1" -v label="$5" -v cpu=$((c1 - c0)) -v tck="$tck" \
        -v rcpu=$((r1 - r0)) \
        -v steal=$((s1 - s0)) -v ncpu="$ncpu" -v ev=$((x1 - x0)) '
    function ms(v) {
        if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
        if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
        if (v ~ /m$/)  return substr(v, 1, length(v) - 1) * 60000
        if (v ~ /s$/)  return substr(v, 1, length(v) - 1) * 1000
        return v + 0
    }
    /^ +50% / { p50 = ms($2) }
    /^ +99% / { p99 = ms($2) }
    / requests in / { n = $1; t = $4; sub(/s,$/, "", t) }
    /Non-2xx or 3xx responses:/ { bad = $NF }
    /Socket errors:/ { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
    /^Requests\/sec:/ { rps = $2 }
    END {
        printf "%s %s rps=%s requests=%d secs=%s non2xx=%d socket_errors=%d" \
               " worker_cpu_secs=%.2f steal=%.0f%% evidence=%d", name, \
               label, rps, n, t, bad, err, cpu / tck, \
               (t > 0) ? 100 * steal / tck / t / ncpu : 0, ev
        if (p50 != "") printf " p50_ms=%.3f p99_ms=%.3f", p50, p99
        printf " redis_cpu_secs=%.2f\n", rcpu / tck
    }' "$out" >>"$results"
    line=$(tail -n 1 "$results")
    case "$line" in
    *" non2xx=0 socket_errors=0 "*) ;;
    *) if [ "${gw_keep_going:-0}" = 1 ]; then
           say "WARNING: wrk saw errors or non-2xx answers (kept in the results)"
       else
           cat "$out" >&2; tail -n 20 "$T/$1-error.log" >&2 2>/dev/null || :
           die "wrk saw errors or non-2xx answers: $line"
       fi ;;
    esac
    say "$line"
}
