# Shared by bench/run and bench/profile (sourced, not run). Everything binds 127.0.0.1;
# every process started through `spawn` is killed by `cleanup` (installed as the trap).

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BENCH_DIR/.." && pwd)
PIDS=()
KEEP=${KEEP:-0}

log() { printf '%s [bench] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [[ $KEEP == 1 ]]; then log "kept $RUN"; else rm -rf "$RUN"; fi
}

# spawn NAME CMD...: runs CMD in the background with stdout+stderr in $RUN/NAME.out,
# remembers its pid (in $SPAWNED and for the cleanup).
spawn() {
    local name=$1
    shift
    "$@" >"$RUN/$name.out" 2>&1 &
    SPAWNED=$!
    PIDS+=("$SPAWNED")
}

# stop PID: SIGTERM, wait for it.
stop() {
    kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_for CMD...: retries CMD for up to 20 s.
wait_for() {
    local i
    for i in $(seq 1 200); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.1
    done
    return 1
}

ensure_tools() {
    local missing=() pair
    for pair in nginx:nginx haproxy:haproxy wrk:wrk h2load:nghttp2-client openssl:openssl curl:curl python3:python3; do
        command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "installing ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
    # The Debian package may start a system nginx on port 80; ours never uses it.
}

# Builds (or reuses, when up to date: cargo decides) the release wisegate binary and the
# bench-fake-wise and bench-bare-proxy examples; sets WISEGATE, FAKE_WISE and BARE_PROXY.
build() {
    local target
    target=$(cd "$ROOT" && cargo metadata --format-version 1 --no-deps |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
    if [[ ${SKIP_BUILD:-0} != 1 ]]; then
        log "cargo build --release (wisegate, bench-fake-wise, bench-bare-proxy); a cold build takes a few minutes on 2 cores"
        # Two invocations: built together, the binary would get the features the
        # example's dev-dependencies switch on, and not be the binary users run.
        (cd "$ROOT" && cargo build --release --bin wisegate -p wisegate &&
            cargo build --release -p wisegate --example bench-fake-wise --example bench-bare-proxy) ||
            die "build failed"
    fi
    WISEGATE=${WISEGATE:-$target/release/wisegate}
    FAKE_WISE=${FAKE_WISE:-$target/release/examples/bench-fake-wise}
    BARE_PROXY=${BARE_PROXY:-$target/release/examples/bench-bare-proxy}
    [[ -x $WISEGATE && -x $FAKE_WISE ]] || die "missing $WISEGATE or $FAKE_WISE"
}

# A throw-away PKI in $RUN/pki: one CA (ca.pem) that issues the upstream's server
# certificate (localhost, 127.0.0.1) and the client certificate both proxies present, and
# that the upstream verifies client certificates against. EC P-256 throughout.
make_pki() {
    local d=$RUN/pki
    mkdir -p "$d"
    (
        cd "$d"
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key 2>/dev/null
        openssl req -x509 -new -key ca.key -sha256 -days 7 -subj "/O=wisegate bench/CN=bench CA" \
            -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -out ca.pem 2>/dev/null
        leaf() { # name subject extensions
            openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key" 2>/dev/null
            openssl req -new -key "$1.key" -subj "$2" -out "$1.csr" 2>/dev/null
            printf '%s\n' "$3" >"$1.ext"
            openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 7 \
                -sha256 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
        }
        leaf server "/CN=localhost" "subjectAltName=DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
        leaf client "/O=wisegate bench/CN=bench-client" "basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
        cat client.crt client.key >client.pem # HAProxy's `crt`: certificate and key in one file
        chmod 600 ./*.key client.pem
    ) || die "certificate generation failed"
}

# The fixed JSON answer of the upstream: exactly 1024 bytes, no quotes or '$'.
json_body() {
    python3 -c '
import json
body = {"id": 30123456, "type": "BALANCE", "currency": "EUR", "status": "outgoing_payment_sent", "padding": ""}
text = json.dumps(body, separators=(",", ":"))
body["padding"] = "x" * (1024 - len(text))
print(json.dumps(body, separators=(",", ":")), end="")'
}

# render TEMPLATE OUT NAME: substitutes @NAME@ (the instance's folder under $RUN), @RUN@,
# @BENCH_TOKEN@, @BODY@, @KEEPALIVE@ and the port variables (@UP_H2@, @NGX_H1@, @HAP_PORT@...).
render() {
    sed -e "s|@NAME@|$3|g" -e "s|@RUN@|$RUN|g" -e "s|@UP_H2@|$UP_H2|g" -e "s|@UP_H1@|$UP_H1|g" \
        -e "s|@NGX_H1@|${NGX_H1:-}|g" -e "s|@NGX_H2C@|${NGX_H2C:-}|g" -e "s|@HAP_PORT@|${HAP_PORT:-}|g" \
        -e "s|@KEEPALIVE@|${KEEPALIVE:-64}|g" -e "s|@BENCH_TOKEN@|$BENCH_TOKEN|g" \
        -e "s|@BODY@|$(json_body)|g" "$1" >"$2"
}

# start_nginx NAME TEMPLATE: nginx in the foreground (daemon off), so that the master's pid
# is ours ($SPAWNED); its files in $RUN/NAME.
start_nginx() {
    local name=$1 dir=$RUN/$1
    mkdir -p "$dir/tmp"
    render "$BENCH_DIR/$2" "$dir/nginx.conf" "$name"
    nginx -t -q -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" ||
        die "$name: nginx refused its config ($dir/nginx.conf)"
    spawn "$name" nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf"
}

# The master's pid and its workers'.
nginx_pids() { echo "$1" $(pgrep -P "$1"); }
nginx_workers() { pgrep -P "$1" | tr '\n' ' '; }

# start_haproxy NAME TEMPLATE: HAProxy in the foreground (-db: no daemon, one process with
# `nbthread` threads; -W would add a master, whose children `nginx_pids` would find too).
start_haproxy() {
    local name=$1 dir=$RUN/$1
    mkdir -p "$dir"
    render "$BENCH_DIR/$2" "$dir/haproxy.cfg" "$name"
    haproxy -c -q -f "$dir/haproxy.cfg" || die "$name: haproxy refused its config ($dir/haproxy.cfg)"
    spawn "$name" haproxy -db -f "$dir/haproxy.cfg"
}

# tokens.json in the store's format (version 1), valid for 30 days: nothing to refresh
# during the run, and the upstream nginx does not look at the bearer.
write_token_store() {
    local now
    now=$(date +%s)
    cat >"$1" <<EOF
{"version":1,"access_token":"$BENCH_TOKEN","access_token_expires_at":$((now + 30 * 86400)),"refresh_token":"bench-refresh-token","refresh_token_expires_at":null,"profile_id":"12345","obtained_at":$now}
EOF
    chmod 600 "$1"
}

# wisegate_config FILE: a config from the WG_* variables (absolute paths):
# WG_LISTEN, WG_ADMIN, WG_MTLS (https URL), WG_CA, WG_CERT, WG_KEY, WG_LEVEL, WG_CLIENT_ID,
# WG_SECRET (client secret file), WG_EXTRA (more TOML, optional), WG_STORE (the
# [oauth] token_store line; empty with [[account]] tables). Tokens: FILE's folder.
wisegate_config() {
    local file=$1 store=${WG_STORE-'token_store = "tokens.json"'}
    mkdir -p "$(dirname "$file")"
    cat >"$file" <<EOF
# Written by bench/run. log.level "warn": no access line per request (a config choice,
# see docs/performance.md); the "log=info" variant measures that cost.
environment = "sandbox"

[listen]
address = "$WG_LISTEN"
shutdown_grace = "1s"

[admin]
address = "$WG_ADMIN"

[upstream]
mtls_url = "$WG_MTLS"
legacy_url = "$WG_MTLS"
ca_file = "$WG_CA"

[mtls]
cert_file = "$WG_CERT"
key_file = "$WG_KEY"

[oauth]
client_id = "$WG_CLIENT_ID"
client_secret_file = "$WG_SECRET"
redirect_uri = "http://127.0.0.1:8765/callback"
$store

[log]
level = "$WG_LEVEL"
${WG_EXTRA:-}
EOF
}

# start_wisegate NAME CONFIG ADMIN: sets $SPAWNED; waits until /readyz answers 200.
start_wisegate() {
    spawn "$1" "$WISEGATE" run --config "$2"
    wait_for curl -sf "http://$3/readyz" ||
        die "wisegate $1 did not become ready: $(tail -5 "$RUN/$1.out")"
}

# Process accounting from /proc: CPU ticks (utime + stime) summed over pids, and memory.
cpu_ticks() {
    local total=0 pid line f
    for pid in "$@"; do
        line=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
        read -ra f <<<"${line##*) }"
        total=$((total + f[11] + f[12]))
    done
    echo "$total"
}
# mem_kb FIELD PID...: the sum of VmHWM or VmRSS (kB).
mem_kb() {
    local field=$1 total=0 pid v
    shift
    for pid in "$@"; do
        v=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null)
        total=$((total + ${v:-0}))
    done
    echo "$total"
}
# reset_peak PID...: VmHWM := VmRSS (Linux: "5" to clear_refs).
reset_peak() {
    local pid
    for pid in "$@"; do echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true; done
}
# The machine's ticks, all cores: "busy (user+nice+system) irq+softirq steal idle+iowait".
# Interrupt time is not charged to any process, steal is time the hypervisor gave away.
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4, $7 + $8, $9, $5 + $6}' /proc/stat; }
CLK_TCK=$(getconf CLK_TCK)
