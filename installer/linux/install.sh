#!/usr/bin/env bash
# Installs cmfs on Linux from this source tree: the program in PREFIX/lib/cmfs, the command PREFIX/bin/cmfs, and a
# systemd template unit, cmfs@.service, whose instance cmfs@NAME mounts the volume CONFIG_DIR/NAME.json at boot.
# What it installs and how to use it: docs/mount.md, "Installing on Linux".
#   bash installer/linux/install.sh [--prefix DIR] [--config-dir DIR] [--unit-dir DIR]
#   bash installer/linux/install.sh --uninstall [--prefix DIR] [--unit-dir DIR]
# Defaults: --prefix /usr/local, --config-dir /etc/cmfs, --unit-dir PREFIX/lib/systemd/system (a folder systemd reads).
set -euo pipefail

usage="usage: install.sh [--uninstall] [--prefix DIR] [--config-dir DIR] [--unit-dir DIR]"
root=$(CDPATH='' cd -- "$(dirname "$0")/../.." && pwd)
prefix=/usr/local
config_dir=/etc/cmfs
unit_dir=""
uninstall=false
while [ $# -gt 0 ]; do
  case "$1" in
    --uninstall) uninstall=true; shift ;;
    --prefix|--config-dir|--unit-dir)
      [ $# -ge 2 ] && [ -n "$2" ] || { echo "install: $1 needs a folder ($usage)" >&2; exit 2; }
      case "$2" in /*) ;; *) echo "install: $1 needs an absolute path, not '$2'" >&2; exit 2 ;; esac
      case "$1" in --prefix) prefix=$2 ;; --config-dir) config_dir=$2 ;; --unit-dir) unit_dir=$2 ;; esac
      shift 2 ;;
    *) echo "install: unknown argument '$1' ($usage)" >&2; exit 2 ;;
  esac
done
prefix=${prefix%/}
unit_dir=${unit_dir:-$prefix/lib/systemd/system}
lib="$prefix/lib/cmfs"
bin="$prefix/bin/cmfs"
unit="$unit_dir/cmfs@.service"

reload_systemd() {
  # Only where systemd runs (not in a container or a chroot): elsewhere the unit is read at the next boot.
  if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl daemon-reload
  fi
}

if $uninstall; then
  # The configurations stay: they are the user's, and may name folders that hold the only copy of some data.
  rm -f "$unit"
  [ -f "$bin" ] && grep -q "$lib/cmfs.dll" "$bin" && rm -f "$bin"
  rm -rf "$lib"
  reload_systemd
  echo "install: removed $lib, $bin and $unit; the configurations in $config_dir stay"
  exit 0
fi

command -v dotnet >/dev/null 2>&1 || { echo "install: the .NET 10 SDK is missing: apt-get install -y dotnet-sdk-10.0" >&2; exit 2; }
command -v fusermount3 >/dev/null 2>&1 || { echo "install: FUSE 3 is missing (cmfs mounts through it): apt-get install -y fuse3" >&2; exit 2; }
dotnet=$(readlink -f "$(command -v dotnet)")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Built under --artifacts-path, so this build's obj and bin stay apart from the tree's own.
dotnet publish "$root/src/CloudMirrorFs.Host/CloudMirrorFs.Host.csproj" -c Release -p:DebugType=none \
  -p:PublishDocumentationFiles=false -p:SatelliteResourceLanguages=en -p:UseAppHost=false \
  --artifacts-path "$work/build" -o "$work/cmfs" --nologo -v quiet >&2
[ -f "$work/cmfs/cmfs.dll" ] || { echo "install: the publish made no cmfs.dll in $work/cmfs" >&2; exit 1; }

# The new program goes in beside the old one and takes its place in one rename: a drive running from the old files
# keeps them open until it stops.
mkdir -p "$prefix/lib" "$prefix/bin" "$unit_dir"
# Configurations may name credentials files: a folder made here is root's alone (one that exists is left as it is).
[ -d "$config_dir" ] || mkdir -p -m 750 "$config_dir"
rm -rf "$lib.new" "$lib.old"
cp -R "$work/cmfs" "$lib.new"
[ -d "$lib" ] && mv "$lib" "$lib.old"
mv "$lib.new" "$lib"
rm -rf "$lib.old"

# The command names dotnet by its full path: a systemd unit runs with a short PATH.
cat > "$bin.new" <<SH
#!/bin/sh
exec "$dotnet" "$lib/cmfs.dll" "\$@"
SH
chmod 755 "$bin.new"
mv "$bin.new" "$bin"

sed -e "s|@BIN@|$bin|g" -e "s|@CONFIG_DIR@|$config_dir|g" "$root/installer/linux/cmfs@.service" > "$unit.new"
chmod 644 "$unit.new"
mv "$unit.new" "$unit"
reload_systemd

version=$("$bin" --version)
echo "install: cmfs $version in $lib, the command $bin, the unit $unit"
echo "install: put a volume's configuration in $config_dir/NAME.json, then: systemctl enable --now cmfs@NAME"
