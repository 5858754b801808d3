#!/usr/bin/env bash
# Installs what the tests need (Debian packages, Go tools) and runs every check and test:
# gofmt, go vet, staticcheck, the Go test suite (against real franz-go clients, kcat,
# subprocess agents and a real MinIO server), the cross-build with the commit log's tests on
# ARM under qemu, and a short run of every fuzz target. Run as root or with sudo on Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

FUZZTIME=${FUZZTIME:-8s}
STATICCHECK_VERSION=v0.8.2

log() { printf '\n==> %s\n' "$*"; }

need_pkgs=()
command -v qemu-arm-static >/dev/null || need_pkgs+=(qemu-user-static)
command -v kcat >/dev/null || need_pkgs+=(kcat)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto)
command -v mosquitto_sub >/dev/null || need_pkgs+=(mosquitto-clients)
command -v nats-server >/dev/null || need_pkgs+=(nats-server)
command -v strace >/dev/null || need_pkgs+=(strace)
command -v chromium >/dev/null || need_pkgs+=(chromium)
if ((${#need_pkgs[@]})); then
  log "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then echo "not gofmt-formatted:"; echo "$unformatted"; exit 1; fi

log "go vet"
go vet ./...

log "staticcheck"
GOBIN_DIR="$(go env GOPATH)/bin"
if ! "$GOBIN_DIR/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$GOBIN_DIR/staticcheck" ./...

# A real MinIO server for the tiering tests (internal/testminio finds it in $GOBIN_DIR).
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
minio_mod=$(go version -m "$GOBIN_DIR/minio" 2>/dev/null || true)
if ! grep -q "github.com/minio/minio[[:space:]]*$MINIO_VERSION" <<<"$minio_mod"; then
  log "installing MinIO $MINIO_VERSION into $GOBIN_DIR (the first build takes several minutes; then it is cached)"
  GOBIN="$GOBIN_DIR" go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c
fi

log "go test"
go test -race -count=1 -timeout 25m ./...

log "cross-build (static linux/amd64, arm64, armv7, armv6 binaries into dist/; fails if arm64 >= 20 MB)"
./cross-build.sh

# The storage engine's whole suite on ARM under qemu-user-static: 32-bit arm is the pread index
# path, arm64 the mmap one (under a minute each on 2 cores). No -race: the race detector needs
# cgo with a cross C toolchain, and does not exist for 32-bit arm.
log "agent/commitlog tests under qemu: arm64"
GOARCH=arm64 go test -count=1 -timeout 20m -exec qemu-aarch64-static ./agent/commitlog/...
log "agent/commitlog tests under qemu: armv7"
GOARCH=arm GOARM=7 go test -count=1 -timeout 20m -exec qemu-arm-static ./agent/commitlog/...

log "fuzz targets ($FUZZTIME each)"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for fz in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
    echo "fuzz $pkg $fz"
    go test -run '^$' -fuzz "^${fz}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime 5s "$pkg" >/tmp/samsa-fuzz.log 2>&1 || { cat /tmp/samsa-fuzz.log; exit 1; }
  done
done
log "all checks passed"
