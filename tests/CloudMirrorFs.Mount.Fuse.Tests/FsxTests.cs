namespace CloudMirrorFs.Mount.Tests;

/// <summary>
/// Our fsx-style exerciser (tests/CloudMirrorFs.Fsx): 100,000 random writes, truncates, reads, renames, reopens and
/// fsyncs on files in the mount and on reference files in a plain folder, bytes compared after every read.
/// </summary>
[TestClass]
public sealed class FsxTests
{
    [TestMethod]
    public async Task Fsx_HundredThousandOperations_MatchAPlainFolder()
    {
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string underTest = Path.Combine(drive.MountPath, "fsx");
        string reference = Path.Combine(drive.Dir, "fsx-reference");
        Directory.CreateDirectory(underTest);
        Directory.CreateDirectory(reference);
        string fsx = Path.Combine(AppContext.BaseDirectory, "CloudMirrorFs.Fsx.dll");
        Assert.IsTrue(File.Exists(fsx), $"the exerciser is missing at {fsx}; build tests/CloudMirrorFs.Fsx");
        string output = await Prerequisites.RunAsync("dotnet", drive.Dir, TimeSpan.FromMinutes(5),
            fsx, "--under-test", underTest, "--reference", reference, "--ops", "100000", "--seed", "20261123", "--files", "4");
        StringAssert.Contains(output, "\"ops\":100000", output);

        // What the mount showed is what the local facet holds, and (after drain) what the remote restores.
        (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);
        SortedDictionary<string, string> seen = Drive.Snapshot(drive.MountPath);
        Drive.AssertSameTree(Drive.Snapshot(reference), Drive.Snapshot(underTest), "fsx tree vs reference");
        await drive.StopAsync();
        Drive.AssertSameTree(seen, Drive.Snapshot(drive.LocalPath), "mount vs local facet");
        string restored = Path.Combine(drive.Dir, "restored");
        (code, text, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, code, text);
        Drive.AssertSameTree(seen, Drive.Snapshot(restored), "restore from the remote vs the mount");
    }
}
