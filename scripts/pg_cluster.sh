#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests and benchmarks of the PostgreSQL store.
#
#   scripts/pg_cluster.sh start [--optional|--for-tests]
#       install PostgreSQL when missing (Debian's `postgresql` with apt-get, as root or with
#       passwordless sudo), create a cluster (initdb) in a new temporary directory, start it on a
#       free local port (its unix socket in that directory, TCP on 127.0.0.1 only) and wait until
#       it accepts connections (60 s at most). Prints two shell assignments for `eval`:
#           export MEERKAT_PG_DSN='host=<dir> port=<port> user=meerkat dbname=meerkat'
#           export MEERKAT_PG_CLUSTER='<dir>'
#       --optional: when no server can be had, say why on stderr, print nothing and exit 0.
#       --for-tests: required under CI (CI set, not empty/0/false), else --optional.
#   scripts/pg_cluster.sh stop DIR
#       stop the server of that cluster (fast shutdown, then immediate) and delete DIR.
#   scripts/pg_cluster.sh run [--] COMMAND [ARGS...]
#       start a cluster, run COMMAND with MEERKAT_PG_DSN exported, stop and delete the cluster
#       (also on failure and Ctrl-C); exits with COMMAND's status.
#
# Run as root (CI), the server runs as an unprivileged account: MEERKAT_PG_USER if set, else
# `postgres` if it exists, else a `meerkat-pg` system account (created once), else `nobody`.
# Settings: durable defaults (fsync=on, synchronous_commit=on, full_page_writes=on),
# shared_buffers=32MB, max_connections=200, trust authentication for local connections only.
# Environment: PG_BINDIR (directory holding initdb/pg_ctl), MEERKAT_INSTALL_POSTGRES=0 (never
# install; outside CI the PostgreSQL tests are then skipped when no server is found).
set -euo pipefail

optional=0
say() { echo "pg_cluster: $*" >&2; }
unavailable() {
    if [ "$optional" = 1 ]; then
        say "$*; the PostgreSQL tests will be skipped (reported as skipped)"
        exit 0
    fi
    say "$*"
    exit 1
}

find_bindir() {
    local dir
    for dir in "${PG_BINDIR:-}" "$(pg_config --bindir 2>/dev/null || true)"; do
        if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k4 -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    return 1
}

install_postgres() {
    if [ "$optional" = 1 ] && [ "${MEERKAT_INSTALL_POSTGRES:-1}" = "0" ]; then
        unavailable "PostgreSQL is not installed and MEERKAT_INSTALL_POSTGRES=0"
    fi
    command -v apt-get >/dev/null 2>&1 \
        || unavailable "PostgreSQL is not installed and apt-get is not available; install the PostgreSQL server (initdb, pg_ctl) or set PG_BINDIR"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
            || unavailable "PostgreSQL is not installed; run as root or with passwordless sudo (apt-get install -y postgresql)"
        sudo="sudo -n"
    fi
    say "installing Debian's postgresql system-wide with apt-get, for the PostgreSQL store tests"
    local log had_clusters
    log="$(mktemp)"
    had_clusters="$(ls /etc/postgresql 2>/dev/null || true)"
    export DEBIAN_FRONTEND=noninteractive
    if ! { $sudo apt-get update -q && $sudo apt-get install -y -q --no-install-recommends postgresql; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        rm -f "$log"
        unavailable "apt-get could not install postgresql (see the output above)"
    fi
    rm -f "$log"
    # The package creates and starts a system cluster; the tests never use it: stop it again.
    if [ -z "$had_clusters" ] && command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters -h 2>/dev/null | while read -r version name _; do
            $sudo pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true
        done
    fi
}

server_account() {
    if [ "$(id -u)" -ne 0 ]; then
        id -un
        return 0
    fi
    if [ -n "${MEERKAT_PG_USER:-}" ]; then
        echo "$MEERKAT_PG_USER"
    elif id postgres >/dev/null 2>&1; then
        echo postgres
    elif id meerkat-pg >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin meerkat-pg 2>/dev/null; then
        echo meerkat-pg
    else
        echo nobody
    fi
}

# as_account USER COMMAND...: run COMMAND as USER (directly when that is who we are).
as_account() {
    local account="$1"
    shift
    if [ "$(id -un)" = "$account" ]; then
        "$@"
    elif command -v runuser >/dev/null 2>&1; then
        runuser -u "$account" -- "$@"
    else
        su -s /bin/sh "$account" -c "$(printf '%q ' "$@")"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    case "${1:-}" in
        --optional) optional=1 ;;
        --for-tests)
            case "${CI:-}" in
                ""|0|false) optional=1 ;;
            esac
            ;;
        "") ;;
        *) say "unknown option '$1' (usage: pg_cluster.sh start [--optional|--for-tests])"; exit 2 ;;
    esac
    local bindir
    if ! bindir="$(find_bindir)"; then
        install_postgres
        bindir="$(find_bindir)" || unavailable "postgresql was installed but no initdb/pg_ctl was found"
    fi
    local account dir
    account="$(server_account)"
    dir="$(mktemp -d /tmp/meerkat-pg.XXXXXXXX)"
    chown "$account" "$dir" 2>/dev/null || true
    chmod 700 "$dir"
    if ! as_account "$account" "$bindir/initdb" -D "$dir/data" -U meerkat --auth=trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1; then
        tail -n 20 "$dir/initdb.log" >&2
        rm -rf "$dir"
        unavailable "initdb failed (as $account)"
    fi
    local port attempt started=0
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        cat >"$dir/data/meerkat.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
shared_buffers = 32MB
fsync = on
synchronous_commit = on
full_page_writes = on
logging_collector = off
EOF
        chown "$account" "$dir/data/meerkat.conf" 2>/dev/null || true
        grep -q "include = 'meerkat.conf'" "$dir/data/postgresql.conf" \
            || echo "include = 'meerkat.conf'" >>"$dir/data/postgresql.conf"
        if as_account "$account" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null 2>&1; then
            started=1
            break
        fi
        say "the server did not start on port $port (attempt $attempt); retrying on another port"
    done
    if [ "$started" != 1 ]; then
        tail -n 20 "$dir/server.log" >&2 || true
        rm -rf "$dir"
        unavailable "the PostgreSQL server did not start"
    fi
    if ! "$bindir/psql" -X -q -h "$dir" -p "$port" -U meerkat -d postgres -c "CREATE DATABASE meerkat" >/dev/null; then
        stop "$dir"
        unavailable "could not create the test database"
    fi
    say "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') running as $account in $dir (port $port)"
    printf "export MEERKAT_PG_DSN='host=%s port=%s user=meerkat dbname=meerkat'\n" "$dir" "$port"
    printf "export MEERKAT_PG_CLUSTER='%s'\n" "$dir"
}

stop() {
    local dir="${1:-}"
    [ -n "$dir" ] || { say "usage: pg_cluster.sh stop DIR"; exit 2; }
    [ -d "$dir" ] || return 0
    if [ -f "$dir/data/postmaster.pid" ]; then
        local bindir account
        bindir="$(find_bindir)" || bindir=""
        account="$(stat -c %U "$dir/data")"
        if [ -z "$bindir" ] || ! as_account "$account" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
            local pid
            pid="$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null || true)"
            [ -n "$pid" ] && kill -QUIT "$pid" 2>/dev/null || true
            sleep 1
        fi
    fi
    rm -rf "$dir"
}

command="${1:-}"
shift || true
case "$command" in
    start) start "$@" ;;
    stop) stop "$@" ;;
    run)
        [ "${1:-}" = "--" ] && shift
        [ $# -gt 0 ] || { say "usage: pg_cluster.sh run [--] COMMAND [ARGS...]"; exit 2; }
        assignments="$(start)"
        eval "$assignments"
        trap 'stop "$MEERKAT_PG_CLUSTER"' EXIT
        trap 'exit 130' INT TERM
        status=0
        "$@" || status=$?
        exit "$status"
        ;;
    *)
        say "unknown command '${command}' (usage: pg_cluster.sh start [--optional|--for-tests] | stop DIR | run [--] COMMAND...)"
        exit 2
        ;;
esac
