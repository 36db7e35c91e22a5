#!/usr/bin/env bash
# Builds the Windows installer, on Linux: a self-contained, single-file cmfs.exe for win-x64 in an MSI made by wixl
# (msitools). Prints the MSI's path. What it installs: docs/windows.md, "Installing CloudMirrorFs".
#   bash installer/windows/build-msi.sh [--out DIR]     (default DIR: artifacts/msi)
set -euo pipefail

root=$(CDPATH='' cd -- "$(dirname "$0")/../.." && pwd)
out="$root/artifacts/msi"
while [ $# -gt 0 ]; do
  case "$1" in
    --out)
      [ $# -ge 2 ] || { echo "build-msi: --out needs a folder (usage: build-msi.sh [--out DIR])" >&2; exit 2; }
      out=$(mkdir -p "$2" && CDPATH='' cd -- "$2" && pwd); shift 2 ;;
    *) echo "build-msi: unknown argument '$1' (usage: build-msi.sh [--out DIR])" >&2; exit 2 ;;
  esac
done
for tool in wixl msibuild; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-msi: '$tool' is missing: apt-get install -y wixl msitools" >&2; exit 2; }
done
command -v dotnet >/dev/null 2>&1 || { echo "build-msi: the .NET 10 SDK is missing: apt-get install -y dotnet-sdk-10.0" >&2; exit 2; }

project="$root/src/CloudMirrorFs.Host/CloudMirrorFs.Host.csproj"
version=$(dotnet msbuild "$project" -getProperty:Version)
[[ "$version" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || { echo "build-msi: the version '$version' (Directory.Build.props) is not a.b.c, as an MSI needs" >&2; exit 2; }
publish="$out/publish"
rm -rf "$publish"
mkdir -p "$out"
# One cmfs.exe that carries the .NET runtime: nothing else to install on the machine but WinFsp. Built under
# --artifacts-path so this build's obj and bin stay apart from the Linux build's.
dotnet publish "$project" -c Release -r win-x64 --self-contained -p:PublishSingleFile=true -p:DebugType=none \
  -p:PublishDocumentationFiles=false -p:SatelliteResourceLanguages=en --artifacts-path "$out/build" -o "$publish" \
  --nologo -v quiet >&2
[ -f "$publish/cmfs.exe" ] || { echo "build-msi: the publish made no cmfs.exe in $publish" >&2; exit 1; }

msi="$out/CloudMirrorFs-$version-x64.msi"
rm -f "$msi"
# wixl takes Source paths relative to where it runs.
(cd "$publish" && wixl -a x64 -D Version="$version" -D SourceDir=. -o "$msi" "$root/installer/windows/cmfs.wxs")

# wixl 0.101 has no <Environment>: the PATH entry (appended, system-wide, removed at uninstall) and the two standard
# actions that write and remove it go into the built database directly. It also ignores AllowSameVersionUpgrades:
# the row that finds older versions to remove gets its maximum inclusive (513 = migrate features + max inclusive), so
# a rebuild of the same version replaces the one installed instead of sitting beside it.
# (Attributes is part of that table's key, so the row is replaced, not updated.)
upgrade_code=$(msiinfo export "$msi" Upgrade | tr -d '\r' | awk -F'\t' '$NF == "WIX_UPGRADE_DETECTED" { print $1 }')
[ -n "$upgrade_code" ] || { echo "build-msi: wixl wrote no upgrade row to $msi" >&2; exit 1; }
msibuild "$msi" \
  -q "DELETE FROM \`Upgrade\` WHERE \`ActionProperty\` = 'WIX_UPGRADE_DETECTED'" \
  -q "INSERT INTO \`Upgrade\` (\`UpgradeCode\`, \`VersionMax\`, \`Attributes\`, \`ActionProperty\`) VALUES ('$upgrade_code', '$version', 513, 'WIX_UPGRADE_DETECTED')" \
  -q 'CREATE TABLE `Environment` (`Environment` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Value` CHAR(255) LOCALIZABLE, `Component_` CHAR(72) NOT NULL PRIMARY KEY `Environment`)' \
  -q "INSERT INTO \`Environment\` (\`Environment\`, \`Name\`, \`Value\`, \`Component_\`) VALUES ('CmfsPath', '=-*PATH', '[~];[INSTALLDIR]', 'Cmfs')" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('RemoveEnvironmentStrings', 3300)" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('WriteEnvironmentStrings', 5200)"
echo "$msi"
