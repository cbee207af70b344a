# Shared by the scripts: sourced, never run.

KBRIDGE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Everything the build, the tests, the quickstart and the benchmarks need, from Debian 12.
KBRIDGE_PACKAGES=(
    g++ cmake ninja-build pkg-config libgtest-dev
    librdkafka-dev libhiredis-dev libpqxx-dev libcli11-dev libyaml-cpp-dev libspdlog-dev
    libsimdjson-dev libsystemd-dev libssl-dev libsqlite3-dev sqlite3
    redis-server postgresql mariadb-server mariadb-client libmariadb-dev kcat python3-confluent-kafka python3-kafka python3-redis
    python3-prometheus-client time procps clang clang-format libclang-rt-14-dev
    dpkg-dev fakeroot lintian man-db zsh systemd
)

# Each step with the script's elapsed time, so slow steps show in CI logs.
say() { printf '\033[1m==> [%d:%02d] %s\033[0m\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*" >&2; }

# Installs what is missing, and only that.
ensure_packages() {
    local missing=() p
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    say "installing ${missing[*]}"
    local sudo=()
    [[ $EUID -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# build_kbridge DIR [cmake options...]
build_kbridge() {
    local dir=$1
    shift
    cmake -S "$KBRIDGE_ROOT" -B "$dir" -G Ninja "$@" >/dev/null
    ninja -C "$dir"
}

free_port() {
    /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
