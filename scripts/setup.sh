#!/usr/bin/env bash
# Prepares a machine for paddock, idempotently: npm packages, the compiled CLI in dist/,
# Debian packages, a running Docker engine, and the local base image. Safe to run again:
# each step checks first.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. npm packages. onnxruntime-node's install script would download CUDA binaries; its CPU
#    binaries ship in the package, so the script stays off (npm's allowScripts blocks it too).
#    --ignore-scripts: no install script of a dependency is needed (allowScripts lists them
#    all as off; an npm older than 11 ignores that list), and the package's own `prepare`
#    (the build, for installs from a git URL) is step 2 here, where a failed build stops nothing.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm packages"
  npm ci --no-audit --no-fund --ignore-scripts
fi

# 2. dist/: the CLI and library compiled, so that `node bin/paddock.js` starts without
#    compiling TypeScript. Incremental: about 0.1 s when nothing changed. A failed build
#    stops nothing: bin/paddock.js runs the sources while dist/ is not built from them.
if ! node bin/build.js; then
  log "the build failed (above); bin/paddock.js runs the TypeScript sources until it builds"
fi

# 3. Debian packages the project uses.
packages=(docker.io debootstrap chromium python3-torch busybox-static)
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 4. A Docker engine that answers. DOCKER_HOST, when set, names an engine we don't manage.
engine_up() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }
if ! engine_up; then
  if [ -n "${DOCKER_HOST:-}" ]; then
    log "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer"; exit 1
  fi
  # A dockerd that died uncleanly leaves its pid file, which blocks a new one.
  if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
    log "removing the stale /var/run/docker.pid"
    as_root rm -f /var/run/docker.pid
  fi
  if ! pgrep -x dockerd >/dev/null; then
    log "starting dockerd"
    as_root sh -c 'setsid nohup dockerd >/var/log/paddock-dockerd.log 2>&1 < /dev/null &'
  fi
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || { log "dockerd did not start; see /var/log/paddock-dockerd.log"; exit 1; }
fi

# 5. The local Debian base image that task Dockerfiles start FROM (no registry needed).
if ! docker image inspect paddock/base:bookworm >/dev/null 2>&1; then
  log "building the base image paddock/base:bookworm with debootstrap (about a minute, once per machine)"
  node bin/paddock.js images bootstrap
fi
log "ready"
