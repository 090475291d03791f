#!/usr/bin/env bash
# Builds the grpc-go kubelet (main.go) and prints the binary's path on stdout.
#
# Offline, from Debian packages only (no Go modules download): golang-go, golang-google-grpc-dev,
# golang-goprotobuf-dev (protoc-gen-go with plugins=grpc), golang-google-protobuf-dev,
# protobuf-compiler. The Go code of the repository's protos is generated into a temporary GOPATH
# that comes before the Debian one (/usr/share/gocode), and the program is built in GOPATH mode.
#
# The binary is cached in $AKRI_GO_KUBELET_CACHE (default ~/.cache/akri/grpc-go-kubelet) under a
# key hashing main.go, this script, the protos and the Go version: a second run only prints it.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
protos="$repo/protos/akri/_proto"
debian_gopath="${AKRI_DEBIAN_GOPATH:-/usr/share/gocode}"
cache="${AKRI_GO_KUBELET_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/akri/grpc-go-kubelet}"

for tool in go protoc protoc-gen-go; do
    command -v "$tool" >/dev/null || { echo "build.sh: $tool not found" >&2; exit 3; }
done
if [ ! -d "$debian_gopath/src/google.golang.org/grpc" ]; then
    echo "build.sh: no grpc-go under $debian_gopath (Debian package golang-google-grpc-dev)" >&2
    exit 3
fi

key="$( { cat "$here/main.go" "$here/build.sh" "$protos/deviceplugin.proto" "$protos/podresources.proto"
          go version; } | sha256sum | cut -c1-16)"
binary="$cache/$key/grpc-go-kubelet"
if [ -x "$binary" ]; then
    echo "$binary"
    exit 0
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
src="$work/src/akrikubelet"
mkdir -p "$src/v1beta1" "$src/v1"
# one protoc run per proto package: each becomes its own Go package
protoc -I "$protos" --go_out=plugins=grpc:"$src/v1beta1" "$protos/deviceplugin.proto"
protoc -I "$protos" --go_out=plugins=grpc:"$src/v1" "$protos/podresources.proto"
cp "$here/main.go" "$src/main.go"

mkdir -p "$cache/$key"
# CGO off: a static binary, and no C compiler needed. The Go build cache is kept beside the
# binaries so that a rebuild after an edit of main.go only compiles main.
(cd "$src" && GO111MODULE=off GOFLAGS= CGO_ENABLED=0 GOPATH="$work:$debian_gopath" \
    GOCACHE="$cache/go-build" go build -o "$binary.tmp" .)
mv "$binary.tmp" "$binary"
# binaries of earlier sources are of no further use
find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name go-build ! -name "$key" -exec rm -rf {} +
echo "$binary"
