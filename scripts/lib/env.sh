# shellcheck shell=bash
# Shared by scripts/*: find the repo, make sure Python and the project's venv exist.
# Sourced, not run.  Installs what is missing (apt as root, pip into .venv).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="$ROOT/.venv"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

usage() {
    # usage [STATUS]: print the script's header comment, which is its usage, and exit with
    # STATUS (default 2: a wrong command line; 0 for --help, to stdout).
    local status="${1:-2}"
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0" |
        if [ "$status" -eq 0 ]; then cat; else cat >&2; fi
    exit "$status"
}

apt_install() {
    # apt_install PKG...: install Debian packages that are not installed yet.
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    [ "$(id -u)" -eq 0 ] || die "need root to install: ${missing[*]}"
    say "apt-get install ${missing[*]}"
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null; then
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

python_ok() {
    command -v python3 >/dev/null &&
        python3 -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null
}

ensure_venv() {
    # ensure_venv [EXTRAS]: .venv with the project installed editable (default extras: test).
    local extras="${1:-test}"
    if ! python_ok; then
        command -v apt-get >/dev/null || die "need Python 3.11+ with venv"
        apt_install python3 python3-venv python3-pip
        python_ok || die "python3 is older than 3.11"
    fi
    local stamp="$VENV/.installed-$extras"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        python3 -m venv "$VENV"
    fi
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        say "installing nodeagent and its dependencies into $VENV"
        "$VENV/bin/pip" install -q --disable-pip-version-check -e "${ROOT}[$extras]" 2>&1 |
            grep -v "^WARNING: Location" >&2 || true
        "$VENV/bin/python" -c 'import nodeagent, trio, httpx, hypercorn' ||
            die "installing the project into $VENV failed"
        touch "$stamp"
    fi
    export PATH="$VENV/bin:$PATH"
}
