#!/usr/bin/env bash
# The main job, on a fresh Debian machine: install FUSE if missing, build cmfs, and mount the embedded default volume
# (state and facets under ./.cmfs, the drive at ./drive) in the foreground. Ctrl+C unmounts.
# Any argument is passed to 'cmfs mount' (for example: --config /etc/cmfs/work.json).
set -euo pipefail
here=$(pwd)
repo="$(cd "$(dirname "$0")/.." && pwd)"

say() { printf '[mount] %s\n' "$*" >&2; }
die() { printf '[mount] error: %s\n' "$*" >&2; exit 1; }

command -v dotnet >/dev/null 2>&1 || die "the .NET 10 SDK is not installed: install it (apt-get install -y dotnet-sdk-10.0, or https://dot.net) and rerun"
dotnet --list-sdks | grep -q '^10\.' || die "the .NET 10 SDK is required; install dotnet-sdk-10.0 and rerun"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

if ! ldconfig -p 2>/dev/null | grep -q 'libfuse3\.so\.3' || ! command -v fusermount3 >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing fuse3 (apt-get)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 >/dev/null \
      || die "could not install fuse3: run 'apt-get install -y fuse3' and rerun"
  else
    die "FUSE 3 is not installed: run 'sudo apt-get install -y fuse3' and rerun"
  fi
fi
[ -e /dev/fuse ] || die "/dev/fuse is missing: load the module ('modprobe fuse') or give the container --device /dev/fuse"

say "building cmfs (Release)"
out="$repo/artifacts/cmfs"
dotnet build "$repo/src/CloudMirrorFs.Host" -c Release -nologo -v quiet -o "$out" >"$repo/artifacts-build.log" 2>&1 \
  || { grep -E 'error' "$repo/artifacts-build.log" | sort -u | head -20 >&2; die "the build failed (log: artifacts-build.log)"; }
rm -f "$repo/artifacts-build.log"

cd "$here"
say "mounting (the drive appears at $here/drive unless --config says otherwise)"
exec dotnet "$out/cmfs.dll" mount "$@"
