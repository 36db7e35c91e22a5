using System.Buffers.Binary;
using System.Diagnostics;
using System.Text.RegularExpressions;

namespace CloudMirrorFs.Host.Tests;

/// <summary>
/// The installers. Windows: the MSI, built here the way a release builds it (installer/windows/build-msi.sh: wixl and
/// msitools on Linux), and read back table by table with msiinfo; installing it needs Windows, which this machine is
/// not. Linux: installer/linux/install.sh run into a temporary prefix, the installed command run, and its systemd unit
/// checked by systemd itself.
/// </summary>
[TestClass]
public sealed partial class InstallerTests
{
    private const string UpgradeCode = "669C5CEA-420B-4C7A-85F6-FC139578CA19";

    [TestMethod]
    public async Task BuildMsi_InstallsTheSingleFileCmfs_OnTheSystemPath_AndNeedsWinFsp()
    {
        foreach (string tool in new[] { "wixl", "msibuild", "msiinfo", "msiextract" })
        {
            if (!OnPath(tool))
            {
                Assert.Fail($"'{tool}' is not installed: apt-get install -y wixl msitools (scripts/test.sh does it)");
            }
        }
        string root = RepoRoot();
        string version = VersionOf(root);
        string dir = Path.Combine(Path.GetTempPath(), "cmfs-msi-" + Guid.NewGuid().ToString("N"));
        try
        {
            (int code, string stdout, string stderr) = await RunAsync("bash", [Path.Combine(root, "installer", "windows", "build-msi.sh"), "--out", dir], root);
            Assert.AreEqual(0, code, stderr);
            string msi = stdout.Trim().Split('\n')[^1];
            Assert.AreEqual(Path.Combine(dir, $"CloudMirrorFs-{version}-x64.msi"), msi);

            Dictionary<string, string> property = Rows(await ExportAsync(msi, "Property")).ToDictionary(r => r[0], r => r[1]);
            Assert.AreEqual("CloudMirrorFs", property["ProductName"]);
            Assert.AreEqual(version, property["ProductVersion"], "the product's version (Directory.Build.props)");
            Assert.AreEqual("{" + UpgradeCode + "}", property["UpgradeCode"].ToUpperInvariant(), "fixed for ever: a newer package replaces an older one by it");
            Assert.AreEqual("1", property["ALLUSERS"], "per machine");

            (int _, string summary, string _) = await RunAsync("msiinfo", ["suminfo", msi], dir);
            StringAssert.Contains(summary, "Template: x64;1033", "a 64-bit package");

            // The one file: the single-file, self-contained cmfs.exe, byte for byte what the publish made, for x64.
            List<string[]> files = Rows(await ExportAsync(msi, "File"));
            Assert.AreEqual(1, files.Count, string.Join("; ", files.Select(f => string.Join(' ', f))));
            Assert.AreEqual("cmfs.exe", files[0][2]);
            string extracted = Path.Combine(dir, "extracted");
            Directory.CreateDirectory(extracted);
            (code, _, stderr) = await RunAsync("msiextract", ["-C", extracted, msi], dir);
            Assert.AreEqual(0, code, stderr);
            string exe = Directory.GetFiles(extracted, "cmfs.exe", SearchOption.AllDirectories).Single();
            StringAssert.Contains(exe.Replace('\\', '/'), "CloudMirrorFs/cmfs.exe", "under Program Files\\CloudMirrorFs");
            byte[] bytes = await File.ReadAllBytesAsync(exe);
            CollectionAssert.AreEqual(await File.ReadAllBytesAsync(Path.Combine(dir, "publish", "cmfs.exe")), bytes);
            Assert.AreEqual(0x8664, PeMachine(bytes), "an x64 Windows program");
            Assert.IsTrue(bytes.Length > 30 << 20, $"the .NET runtime is inside it ({bytes.Length} bytes): nothing but WinFsp to install first");

            Dictionary<string, string> directories = Rows(await ExportAsync(msi, "Directory")).ToDictionary(r => r[0], r => $"{r[1]}|{r[2]}");
            Assert.AreEqual("ProgramFiles64Folder|CloudMirrorFs", directories["INSTALLDIR"]);
            Assert.AreEqual("CommonAppDataFolder|CloudMirrorFs", directories["CONFIGDIR"], "C:\\ProgramData\\CloudMirrorFs for the volumes' configurations");

            // On the system PATH, appended, and taken off again at uninstall, by the standard actions.
            string[] path = Rows(await ExportAsync(msi, "Environment")).Single();
            CollectionAssert.AreEqual(new[] { "CmfsPath", "=-*PATH", "[~];[INSTALLDIR]", "Cmfs" }, path);
            Dictionary<string, string> sequence = Rows(await ExportAsync(msi, "InstallExecuteSequence")).ToDictionary(r => r[0], r => r[^1]);
            Assert.AreEqual("5200", sequence["WriteEnvironmentStrings"]);
            Assert.AreEqual("3300", sequence["RemoveEnvironmentStrings"]);
            Assert.IsTrue(sequence.ContainsKey("RemoveExistingProducts"), "an upgrade removes the older version");
            Dictionary<string, string[]> upgrade = Rows(await ExportAsync(msi, "Upgrade")).ToDictionary(r => r[^1]);
            CollectionAssert.AreEqual(new[] { "", version, "", "513" }, upgrade["WIX_UPGRADE_DETECTED"][1..5],
                "every version up to this one, this one included (a rebuild), is found and removed");
            CollectionAssert.AreEqual(new[] { version, "", "", "2" }, upgrade["WIX_DOWNGRADE_DETECTED"][1..5],
                "a newer one is only detected (the launch condition refuses the downgrade)");

            // WinFsp, looked for where cmfs looks for it (the 32-bit registry view), or the install stops saying where to get it.
            string[] locator = Rows(await ExportAsync(msi, "RegLocator")).Single();
            Assert.AreEqual("2", locator[1], "HKEY_LOCAL_MACHINE");
            Assert.AreEqual(@"SOFTWARE\WinFsp", locator[2]);
            Assert.AreEqual("InstallDir", locator[3]);
            Assert.AreEqual(0, int.Parse(locator[4], System.Globalization.CultureInfo.InvariantCulture) & 16, "the 32-bit view (no msidbLocatorType64bit)");
            CollectionAssert.AreEqual(new[] { "WINFSPDIR", locator[0] }, Rows(await ExportAsync(msi, "AppSearch")).Single(), "the search sets WINFSPDIR");
            Dictionary<string, string> conditions = Rows(await ExportAsync(msi, "LaunchCondition")).ToDictionary(r => r[0], r => r[1]);
            StringAssert.Contains(conditions["Installed OR WINFSPDIR"], "https://winfsp.dev/rel/");
            Assert.IsTrue(conditions.ContainsKey("VersionNT64"));
            Assert.IsTrue(conditions.ContainsKey("NOT WIX_DOWNGRADE_DETECTED"), "an older package does not replace a newer one");
        }
        finally
        {
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    private static async Task<string> ExportAsync(string msi, string table)
    {
        (int code, string stdout, string stderr) = await RunAsync("msiinfo", ["export", msi, table], Path.GetDirectoryName(msi)!);
        Assert.AreEqual(0, code, $"msiinfo export {table}: {stderr}");
        return stdout;
    }

    /// <summary>An exported table's rows (after its three header lines: names, types, key), split at tabs.</summary>
    private static List<string[]> Rows(string exported)
        => [.. exported.Replace("\r\n", "\n", StringComparison.Ordinal).Split('\n').Skip(3).Where(l => l.Length > 0).Select(l => l.Split('\t'))];

    /// <summary>The machine field of a PE file's COFF header.</summary>
    private static int PeMachine(byte[] exe)
    {
        Assert.AreEqual((byte)'M', exe[0]);
        Assert.AreEqual((byte)'Z', exe[1]);
        int pe = BinaryPrimitives.ReadInt32LittleEndian(exe.AsSpan(0x3C));
        Assert.AreEqual(0x00004550u, BinaryPrimitives.ReadUInt32LittleEndian(exe.AsSpan(pe)), "PE signature");
        return BinaryPrimitives.ReadUInt16LittleEndian(exe.AsSpan(pe + 4));
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task InstallSh_PutsCmfsUnderThePrefix_WithAUnitSystemdAccepts_AndUninstallKeepsTheConfigurations()
    {
        if (!OnPath("systemd-analyze"))
        {
            Assert.Fail("'systemd-analyze' is not installed: apt-get install -y systemd (scripts/test.sh does it)");
        }
        string root = RepoRoot();
        string version = VersionOf(root);
        string dir = Path.Combine(Path.GetTempPath(), "cmfs-install-" + Guid.NewGuid().ToString("N"));
        string prefix = Path.Combine(dir, "usr"), config = Path.Combine(dir, "etc", "cmfs"), units = Path.Combine(dir, "units");
        string script = Path.Combine(root, "installer", "linux", "install.sh");
        string[] where = ["--prefix", prefix, "--config-dir", config, "--unit-dir", units];
        string cmfs = Path.Combine(prefix, "bin", "cmfs");
        try
        {
            for (int round = 1; round <= 2; round++) // the second is an upgrade over the first
            {
                (int code, string stdout, string stderr) = await RunAsync("bash", [script, .. where], root);
                Assert.AreEqual(0, code, $"round {round}: {stderr}");
                StringAssert.Contains(stdout, $"systemctl enable --now cmfs@NAME");
                (code, stdout, stderr) = await RunAsync(cmfs, ["--version"], dir);
                Assert.AreEqual(0, code, stderr);
                StringAssert.StartsWith(stdout.Trim(), version, "the installed command runs the installed program");
            }
            Assert.IsFalse(Directory.Exists(Path.Combine(prefix, "lib", "cmfs.old")), "the program replaced leaves nothing behind");
            Assert.AreEqual(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute,
                File.GetUnixFileMode(config), "a configuration folder made by the installer is not readable by every user");

            // The installed command on a bad configuration: the usage error's code, which the unit does not restart for.
            string bad = Path.Combine(config, "bad.json");
            await File.WriteAllTextAsync(bad, """{ "volume": { "name": "x", "stateDir": "s" }, "facets": [], "colour": 1 }""");
            (int badCode, _, string badErr) = await RunAsync(cmfs, ["status", "--config", bad], dir);
            Assert.AreEqual(2, badCode, badErr);

            string unitText = await File.ReadAllTextAsync(Path.Combine(units, "cmfs@.service"));
            StringAssert.Contains(unitText, $"ExecStart={cmfs} mount --config {config}/%i.json");
            StringAssert.Contains(unitText, "RestartPreventExitStatus=2");
            // systemd's own check of an instance (offline: no running systemd needed). It warns on stderr and still
            // exits 0 for a line it cannot parse, so any output fails the check.
            string verify = Path.Combine(dir, "verify");
            Directory.CreateDirectory(verify);
            File.Copy(Path.Combine(units, "cmfs@.service"), Path.Combine(verify, "cmfs@work.service"));
            (int vCode, string vOut, string vErr) = await RunAsync("systemd-analyze", ["verify", Path.Combine(verify, "cmfs@work.service")], dir);
            Assert.AreEqual(0, vCode, vOut + vErr);
            Assert.AreEqual("", (vOut + vErr).Trim(), "systemd-analyze verify has nothing to say about the unit");

            (int uCode, _, string uErr) = await RunAsync("bash", [script, "--uninstall", .. where], root);
            Assert.AreEqual(0, uCode, uErr);
            Assert.IsFalse(File.Exists(cmfs));
            Assert.IsFalse(Directory.Exists(Path.Combine(prefix, "lib", "cmfs")));
            Assert.IsFalse(File.Exists(Path.Combine(units, "cmfs@.service")));
            Assert.IsTrue(File.Exists(bad), "the configurations stay");
        }
        finally
        {
            if (Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }
    }

    private static string VersionOf(string root)
    {
        Match m = VersionElement().Match(File.ReadAllText(Path.Combine(root, "Directory.Build.props")));
        Assert.IsTrue(m.Success, "Directory.Build.props names the product's version");
        return m.Groups[1].Value;
    }

    [GeneratedRegex(@"<Version>([0-9]+\.[0-9]+\.[0-9]+)</Version>")]
    private static partial Regex VersionElement();

    private static string RepoRoot()
    {
        for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "CloudMirrorFs.sln")))
            {
                return d.FullName;
            }
        }
        throw new AssertFailedException($"no CloudMirrorFs.sln above {AppContext.BaseDirectory}");
    }

    private static bool OnPath(string tool)
        => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(d => d.Length > 0 && File.Exists(Path.Combine(d, tool)));

    private static async Task<(int Code, string Out, string Err)> RunAsync(string program, string[] args, string workingDirectory)
    {
        var psi = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }
        using var p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync(), e = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(8));
        await p.WaitForExitAsync(timeout.Token);
        return (p.ExitCode, await o, await e);
    }
}
