#!/usr/bin/env bash
# Cross-builds the release binaries into dist/ (git-ignored) and prints their sizes:
#
#   dist/samsa-linux-{amd64,arm64,armv7,armv6}    the agent and admin CLI (cmd/samsa)
#   dist/samsa-cloud-linux-{amd64,arm64}          the archive query tool (cmd/samsa-cloud),
#                                                 built only when cmd/samsa-cloud exists
#   dist/sizes.tsv                                binary, GOOS/GOARCH[/GOARM], bytes
#
# Every binary is static (CGO_ENABLED=0), built with -trimpath, stripped (-ldflags "-s -w") and
# stamped with the version (-X main.version=..., what `samsa version` prints; `git describe`
# unless VERSION is set). The script checks each binary: its build settings (`go version -m`:
# CGO_ENABLED=0, -trimpath), no symbol table (`go tool nm`), and the version it prints when run
# (natively, or under qemu-user-static when installed).
# Fails when the arm64 agent is 20 MB (20,000,000 bytes) or larger.
set -euo pipefail
cd "$(dirname "$0")"

version=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
max_arm64_bytes=20000000
mkdir -p dist
: >dist/sizes.tsv

# qemu_for prints the command that runs a binary of GOARCH on this host ("" = natively, "-" =
# cannot).
qemu_for() {
  local goarch=$1 host
  host=$(go env GOHOSTARCH)
  if [ "$goarch" = "$host" ]; then echo ""; return; fi
  local q=-
  case $goarch in
    arm64) q=qemu-aarch64-static ;;
    arm) q=qemu-arm-static ;;
    amd64) q=qemu-x86_64-static ;;
  esac
  if [ "$q" != - ] && command -v "$q" >/dev/null; then echo "$q"; else echo -; fi
}

# build NAME PKG GOARCH GOARM: one static, stripped, stamped binary, checked.
build() {
  local name=$1 pkg=$2 goarch=$3 goarm=$4
  local suffix=$goarch
  [ -n "$goarm" ] && suffix=armv$goarm
  local out=dist/$name-linux-$suffix
  CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
    go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" "$pkg"
  # Static and trimmed: the build settings say so (-trimpath keeps -ldflags out of them).
  local info
  info=$(go version -m "$out")
  for want in "CGO_ENABLED=0" "-trimpath=true"; do
    if ! grep -qF -- "$want" <<<"$info"; then
      echo "cross-build: $out was not built with $want:" >&2
      echo "$info" >&2
      exit 1
    fi
  done
  # Stripped: no symbol table left.
  if go tool nm "$out" 2>/dev/null | grep -q .; then
    echo "cross-build: $out still has symbols (want -ldflags -s -w)" >&2
    exit 1
  fi
  # Version-stamped: checked by running it, below.
  local runner
  runner=$(qemu_for "$goarch")
  if [ "$runner" != - ]; then
    local v
    v=$($runner "$out" version 2>&1 | head -n1) || { echo "cross-build: $out version failed: $v" >&2; exit 1; }
    if [[ $v != *"$version"* ]]; then
      echo "cross-build: $out version printed \"$v\", want it to contain $version" >&2
      exit 1
    fi
  fi
  printf '%s\tlinux/%s%s\t%d\n' "$(basename "$out")" "$goarch" "${goarm:+/$goarm}" "$(stat -c %s "$out")" >>dist/sizes.tsv
}

for target in amd64: arm64: arm:7 arm:6; do
  build samsa ./cmd/samsa "${target%%:*}" "${target#*:}"
done
if [ -d cmd/samsa-cloud ]; then
  for goarch in amd64 arm64; do
    build samsa-cloud ./cmd/samsa-cloud "$goarch" ""
  done
  cloud_note=""
else
  cloud_note="cmd/samsa-cloud does not exist yet: samsa-cloud not built"
fi

echo "version $version (static, -trimpath, -s -w)"
printf '%-26s %-15s %12s %9s\n' binary target bytes MiB
while IFS=$'\t' read -r bin target bytes; do
  printf '%-26s %-15s %12d %9.2f\n' "$bin" "$target" "$bytes" "$(awk "BEGIN{print $bytes/1048576}")"
done <dist/sizes.tsv
[ -z "$cloud_note" ] || echo "$cloud_note"

arm64_bytes=$(awk -F'\t' '$1=="samsa-linux-arm64"{print $3}' dist/sizes.tsv)
if [ "$arm64_bytes" -ge "$max_arm64_bytes" ]; then
  echo "cross-build: samsa-linux-arm64 is $arm64_bytes bytes, the target is under $max_arm64_bytes" >&2
  exit 1
fi
echo "samsa-linux-arm64: $arm64_bytes bytes, under the $max_arm64_bytes-byte target"
