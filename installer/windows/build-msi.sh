#!/usr/bin/env bash
# Builds the Windows installer, on Linux: a self-contained, single-file cmfs.exe for win-x64 in an MSI made by wixl
# (msitools). Prints the MSI's path. What it installs: docs/windows.md, "Installing CloudMirrorFs".
#   bash installer/windows/build-msi.sh [--out DIR]     (default DIR: artifacts/msi)
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/artifacts/msi"
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$(mkdir -p "$2" && cd "$2" && pwd); shift 2 ;;
    *) echo "build-msi: unknown argument '$1' (usage: build-msi.sh [--out DIR])" >&2; exit 2 ;;
  esac
done
for tool in wixl msibuild; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-msi: '$tool' is missing: apt-get install -y wixl msitools" >&2; exit 2; }
done
command -v dotnet >/dev/null 2>&1 || { echo "build-msi: the .NET 10 SDK is missing: apt-get install -y dotnet-sdk-10.0" >&2; exit 2; }

project="$root/src/CloudMirrorFs.Host/CloudMirrorFs.Host.csproj"
version=$(dotnet msbuild "$project" -getProperty:Version)
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
# actions that write and remove it go into the built database directly.
msibuild "$msi" \
  -q 'CREATE TABLE `Environment` (`Environment` CHAR(72) NOT NULL, `Name` CHAR(255) NOT NULL LOCALIZABLE, `Value` CHAR(255) LOCALIZABLE, `Component_` CHAR(72) NOT NULL PRIMARY KEY `Environment`)' \
  -q "INSERT INTO \`Environment\` (\`Environment\`, \`Name\`, \`Value\`, \`Component_\`) VALUES ('CmfsPath', '=-*PATH', '[~];[INSTALLDIR]', 'Cmfs')" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('RemoveEnvironmentStrings', 3300)" \
  -q "INSERT INTO \`InstallExecuteSequence\` (\`Action\`, \`Sequence\`) VALUES ('WriteEnvironmentStrings', 5200)"
echo "$msi"
