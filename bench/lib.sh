# Helpers of bench/run, sourced by it: the processes it starts (nginx, the broker, a throwaway
# PostgreSQL), the partner API calls it makes and the wrk rounds it measures. They use run's
# globals: work, binary, nginx, the ports, KEY, BODY, names/urls/headers and the pids.
# shellcheck shell=bash
# Checked on its own, shellcheck cannot see those globals (or that run reads what is set here):
# shellcheck disable=SC2034,SC2153,SC2154

fail() {
    echo "bench/run: $*" >&2
    exit 1
}

say() {
    echo "bench/run: $*" >&2
}

# 1000000 -> 1,000,000
thousands() {
    python3 -c 'import sys; print(f"{int(sys.argv[1]):,}")' "$1"
}

# N distinct free loopback ports, all held open until all are chosen.
free_ports() {
    python3 -c '
import socket, sys
held = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in held:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in held))
' "$1"
}

# Waits until `url` answers at all, or fails once `pid` has exited or 60 s have passed.
wait_for() {
    local name=$1 url=$2 pid=$3 tries=0
    until curl -s -o /dev/null "$url"; do
        kill -0 "$pid" 2>/dev/null || fail "$name exited before it answered"
        tries=$((tries + 1))
        [ "$tries" -lt 600 ] || fail "$name did not answer at $url within 60 s"
        sleep 0.1
    done
}

# nginx: the upstream (one fixed answer, for the holder of the key only) and the baseline hop
# (a reverse proxy that adds the key, over kept-alive connections as the broker's client keeps
# them). Nothing outside its own directory. When started as root its workers run as nobody, who
# must be able to reach that directory.
start_nginx() {
    mkdir -m 755 "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<EOF
daemon off;
worker_processes auto;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events {
    worker_connections 4096;
}
http {
    access_log off;
    client_body_temp_path $work/nginx/client_body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    default_type application/json;

    server {
        listen 127.0.0.1:$upstream_port;
        location / {
            if (\$http_authorization != "Bearer $KEY") {
                return 401;
            }
            return 200 '$BODY';
        }
    }

    upstream bench_upstream {
        server 127.0.0.1:$upstream_port;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$hop_port;
        location / {
            proxy_pass http://bench_upstream;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "Bearer $KEY";
        }
    }
}
EOF
    "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
    nginx_pid=$!
    wait_for nginx "http://127.0.0.1:$hop_port/" "$nginx_pid"
}

# PostgreSQL's server binaries: on the PATH, or in Debian's versioned directory.
find_pg_bin() {
    local dir
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"
        return 0
    fi
    for dir in /usr/lib/postgresql/*/bin; do
        if [ -x "$dir/pg_ctl" ] && [ -x "$dir/initdb" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

# Sets pg_server to the URL of a PostgreSQL server the bench may create a database on:
# BENCH_POSTGRES_URL, or a throwaway cluster in the work directory (run as the postgres user
# when this runs as root, since initdb refuses root). Its settings are PostgreSQL's defaults
# apart from where it listens, fsync included. Returns 1 when there is neither.
start_postgres() {
    local bin root=$work/pg run_as=()
    if [ -n "${BENCH_POSTGRES_URL:-}" ]; then
        pg_server=$BENCH_POSTGRES_URL
        return 0
    fi
    bin=$(find_pg_bin) || return 1
    mkdir -m 700 "$root"
    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        chown postgres "$root"
        run_as=(runuser -u postgres --)
    fi
    "${run_as[@]}" "$bin/initdb" -D "$root/data" -U postgres --auth=trust >/dev/null \
        || fail "initdb failed"
    pg_stop=("${run_as[@]}" "$bin/pg_ctl" -D "$root/data" -m fast stop)
    "${run_as[@]}" "$bin/pg_ctl" -D "$root/data" -l "$root/server.log" -w \
        -o "-p $pg_port -k $root -c listen_addresses=127.0.0.1" start >/dev/null \
        || fail "PostgreSQL did not start: $(tail -n 5 "$root/server.log" 2>/dev/null)"
    pg_server=postgres://postgres@127.0.0.1:$pg_port/postgres
}

# Creates a database of its own on pg_server and sets pg_database_url to it; it is dropped on
# exit.
create_pg_database() {
    local name
    name=connect_bench_$(python3 -c 'import secrets; print(secrets.token_hex(4))')
    psql -X -q -v ON_ERROR_STOP=1 -d "$pg_server" -c "CREATE DATABASE $name" \
        || fail "could not create database $name on the PostgreSQL server"
    pg_database=$name
    pg_database_url=$(python3 -c '
import sys, urllib.parse
url = urllib.parse.urlsplit(sys.argv[1])
print(urllib.parse.urlunsplit(url._replace(path="/" + sys.argv[2])))
' "$pg_server" "$pg_database")
}

# The broker of one backend: its data directory (master key file; the SQLite database), run
# from there (so no connect.toml elsewhere applies) with only the environment given here.
set_broker_env() {
    local dir=$1 database_url=$2
    broker_dir=$dir
    broker_env=(
        env -i PATH="$PATH" HOME="$HOME"
        CONNECT_DATA_DIR="$dir"
        CONNECT_MASTER_KEY="file:$dir/master.key"
        CONNECT_LISTEN="127.0.0.1:$broker_port"
        CONNECT_PUBLIC_URL="http://127.0.0.1:$broker_port"
        CONNECT_ALLOW_PRIVATE_UPSTREAMS=true
        CONNECT_LOG_FORMAT=json
    )
    [ -z "$database_url" ] || broker_env+=(DATABASE_URL="$database_url")
}

broker_cli() {
    (cd "$broker_dir" && "${broker_env[@]}" "$binary" "$@" 2>>cli.log)
}

start_broker() {
    (cd "$broker_dir" && exec "${broker_env[@]}" "$binary" serve >>broker.log 2>&1) &
    broker_pid=$!
    wait_for broker "http://127.0.0.1:$broker_port/readyz" "$broker_pid"
}

stop_broker() {
    [ -n "$broker_pid" ] || return 0
    kill -TERM "$broker_pid" 2>/dev/null || true
    wait "$broker_pid" 2>/dev/null || true
    broker_pid=
}

# Calls the broker's API as the partner (with a JSON body unless `body` is empty); prints the
# answer, fails on anything but 2xx.
api() {
    local method=$1 path=$2 body=$3 status send=()
    [ -z "$body" ] || send=(-H 'Content-Type: application/json' --data "$body")
    status=$(curl -s -o "$work/answer" -w '%{http_code}' -X "$method" \
        -H "Authorization: Bearer $partner_key" "${send[@]}" "http://127.0.0.1:$broker_port$path")
    [[ $status == 2?? ]] || fail "$method $path answered $status: $(cat "$work/answer")"
    cat "$work/answer"
}

# Each target must answer the upstream's body before it is measured.
check_targets() {
    local i got
    for i in "${!urls[@]}"; do
        got=$(curl -s -H "${headers[$i]}" "${urls[$i]}")
        [ "$got" = "$BODY" ] || fail "${names[$i]} answered ${got:-nothing} instead of $BODY"
    done
}

# The last seeded vault and its connection must read back through the API like the API's own:
# their ids pass its format checks and their rows its queries.
check_seeded() {
    local n=$1 external vault_id connection_id
    external=$(printf 'seed-%09d' "$((n - 1))")
    vault_id=$(api GET "/v1/vaults?external_user_id=$external" "" | jq -r '.data[0].id')
    [[ $vault_id == vlt_* ]] || fail "the seeded vault $external is not listed"
    connection_id=$(api GET "/v1/vaults/$vault_id/connections" "" | jq -r '.data[0].id')
    [[ $connection_id == con_* ]] || fail "the seeded vault $vault_id lists no connection"
    api GET "/v1/vaults/$vault_id/connections/$connection_id" "" >/dev/null
}

# One wrk run of target `i` for `seconds`; appends "i rps p99_us failed" to `results`.
measure() {
    local i=$1 seconds=$2 results=$3 line
    line=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "${seconds}s" --timeout 5s \
        -s "$work/report.lua" -H "${headers[$i]}" "${urls[$i]}" | grep '^result ') \
        || fail "wrk against ${names[$i]} reported nothing"
    echo "$i ${line#result }" >>"$results"
}

# A warm-up run of each target, then ROUNDS rounds of all of them (the order rotated every
# round), then the table titled `title`.
measure_all() {
    local title=$1 results=$work/results round step i
    local count=${#urls[@]}
    if pgrep -x rustc >/dev/null 2>&1 || pgrep -x cargo >/dev/null 2>&1; then
        say "warning: a compiler is running; the numbers will be low and noisy"
    fi
    if [ "$WARMUP" -gt 0 ]; then
        for ((i = 0; i < count; i++)); do measure "$i" "$WARMUP" /dev/null; done
    fi
    : >"$results"
    for ((round = 0; round < ROUNDS; round++)); do
        for ((step = 0; step < count; step++)); do
            i=$(((round + step) % count))
            say "$title: round $((round + 1))/$ROUNDS: ${names[$i]}"
            measure "$i" "$DURATION" "$results"
        done
    done
    python3 bench/report.py table "$results" "$work/summary" "$title" "${names[@]}"
}

# Vault provisioning: POST /v1/vaults with a new external_user_id on every request (each wrk
# thread numbers its own), for DURATION seconds; every vault gets its own age identity wrapped
# by the master key and an audit event. Answers other than 2xx/3xx count as failed.
measure_provisioning() {
    local backend=$1 line rate p99_us failed vaults target=
    cat >"$work/provision.lua" <<EOF
local counter = 0
local threads = 0
setup = function(thread)
    threads = threads + 1
    thread:set("tid", threads)
end
request = function()
    counter = counter + 1
    local body = string.format('{"external_user_id":"provision-%d-%d"}', tid, counter)
    return wrk.format("POST", "/v1/vaults", {
        ["Authorization"] = "Bearer $partner_key",
        ["Content-Type"] = "application/json",
    }, body)
end
EOF
    cat "$work/report.lua" >>"$work/provision.lua"
    say "$backend: provisioning vaults for ${DURATION}s"
    line=$(wrk -t "$THREADS" -c "$CONNECTIONS" -d "${DURATION}s" --timeout 5s \
        -s "$work/provision.lua" "http://127.0.0.1:$broker_port/v1/vaults" | grep '^result ') \
        || fail "wrk reported nothing for vault provisioning"
    read -r rate p99_us failed <<<"${line#result }"
    [ "$backend" = sqlite ] && target=" (target 2,000/s on SQLite)"
    vaults=$(thousands "$vault_count")
    printf '\n%s, vault provisioning from %s vaults: %.0f vaults/s, p99 %.2f ms, %d failed%s\n' \
        "$backend" "$vaults" "$rate" "$(python3 -c "print($p99_us / 1000)")" "$failed" "$target"
}
