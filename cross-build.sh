#!/usr/bin/env bash
# Builds static samsa binaries for the edge targets into dist/ and prints their sizes.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p dist
version=$(git describe --always --dirty 2>/dev/null || echo dev)
printf '%-22s %10s\n' target bytes
for target in linux/amd64 linux/arm64 linux/arm/7 linux/arm/6; do
  IFS=/ read -r goos goarch goarm <<<"$target"
  out="dist/samsa-${goos}-${goarch}${goarm:+v$goarm}"
  CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch GOARM=$goarm \
    go build -trimpath -ldflags "-s -w -X main.version=$version" -o "$out" ./cmd/samsa
  printf '%-22s %10d\n' "$target" "$(stat -c %s "$out")"
done
