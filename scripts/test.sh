#!/usr/bin/env bash
# The whole CloudMirrorFs test suite, on a fresh Debian machine, as root or a sudoer.
# Installs what the tests need, builds once, runs every test project, and ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

say() { printf '[test] %s\n' "$*" >&2; }
die() { printf '[test] error: %s\n' "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

# --- prerequisites -------------------------------------------------------------------------------------------
if ! command -v dotnet >/dev/null 2>&1; then
  die "the .NET 10 SDK is not installed: install it (apt-get install -y dotnet-sdk-10.0, or https://dot.net) and rerun"
fi
if ! dotnet --list-sdks | grep -q '^10\.'; then
  die "the .NET 10 SDK is required (found: $(dotnet --list-sdks | tr '\n' ' ')); install dotnet-sdk-10.0 and rerun"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

# FUSE and the real programs the mount tests run (git, sqlite3, fio, dbench; gcc pins the libfuse struct layouts),
# wixl and msitools for the Windows installer, systemd-analyze for the Linux one.
need=()
[ -e /usr/include/fuse3/fuse_lowlevel.h ] || need+=(fuse3 libfuse3-dev)
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
for tool in gcc git sqlite3 fio dbench wixl; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
# The Windows installer is built and read back here (installer/windows/build-msi.sh, InstallerTests).
{ command -v msibuild && command -v msiinfo && command -v msiextract; } >/dev/null 2>&1 || need+=(msitools)
# The Linux installer's systemd unit is checked by systemd's own verifier (installer/linux/install.sh, InstallerTests).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
if [ "${#need[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need[*]} (apt-get)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null \
      || die "could not install ${need[*]}: run 'apt-get install -y ${need[*]}' and rerun"
  else
    die "the tests need ${need[*]}: run 'sudo apt-get install -y ${need[*]}' and rerun"
  fi
fi
[ -e /dev/fuse ] || die "/dev/fuse is missing: load the fuse module ('modprobe fuse') or give the container --device /dev/fuse"

# Real servers for the cloud tests (s3rver for S3, Azurite for Azure Blob), pinned in tests/emulators.
if [ ! -x tests/emulators/node_modules/.bin/s3rver ] || [ ! -x tests/emulators/node_modules/.bin/azurite-blob ]; then
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      say "installing nodejs and npm (apt-get)"
      apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null \
        || die "could not install nodejs and npm: run 'apt-get install -y nodejs npm' and rerun"
    else
      die "npm is needed for the test servers: install it ('apt-get install -y nodejs npm') and rerun"
    fi
  fi
  say "installing the test servers (npm ci --prefix tests/emulators)"
  npm ci --prefix tests/emulators --no-audit --no-fund >"$root/artifacts-npm.log" 2>&1 \
    || { tail -20 "$root/artifacts-npm.log" >&2; die "npm ci --prefix tests/emulators failed"; }
  rm -f "$root/artifacts-npm.log"
fi

# --- build ---------------------------------------------------------------------------------------------------
say "building (Release)"
if ! dotnet build CloudMirrorFs.sln -c Release -nologo -v quiet >"$root/artifacts-build.log" 2>&1; then
  grep -E 'error|Error' "$root/artifacts-build.log" | sort -u | head -40 >&2
  die "the build failed (full log: artifacts-build.log)"
fi
rm -f "$root/artifacts-build.log"

# --- test ----------------------------------------------------------------------------------------------------
results="$root/artifacts/test-results"
rm -rf "$results"
mkdir -p "$results"
say "running the tests"
dotnet test CloudMirrorFs.sln -c Release --no-build -nologo -m:1 \
  --logger "trx;LogFilePrefix=run" --logger "console;verbosity=normal" \
  --results-directory "$results" --blame-hang-timeout 5m 2>&1 | grep -vE '^\s*$' | grep -vE '^  Passed ' ; status=${PIPESTATUS[0]}

passed=0; failed=0; found=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  found=$((found + 1))
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
  f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
  t=$(sed -n 's/.* total="\([0-9]*\)".*/\1/p' <<<"$counters")
  e=$(sed -n 's/.* executed="\([0-9]*\)".*/\1/p' <<<"$counters")
  passed=$((passed + ${p:-0}))
  # A test that did not run (crash, hang) counts as failed.
  failed=$((failed + ${f:-0} + ${t:-0} - ${e:-0}))
done
if [ "$found" -eq 0 ]; then
  failed=$((failed + 1))
  say "no test results were written"
fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  failed=1
  say "the test run exited with status $status"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
