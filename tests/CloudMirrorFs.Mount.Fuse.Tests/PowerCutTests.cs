namespace CloudMirrorFs.Mount.Tests;

/// <summary>
/// A power cut under the drive, as the disk is left by it: the mount killed, then what only the OS cache held of the
/// queue's files cut away and the boot id changed. The local file's pages stay, as pages written back before the cut
/// would.
/// </summary>
[TestClass]
public sealed class PowerCutTests
{
    [TestMethod]
    public async Task PowerCut_AnOverwriteThroughTheDrive_WhoseQueueRecordsWereLost_ReachesTheRemote()
    {
        await using Drive drive = Drive.Create();
        string config = File.ReadAllText(drive.ConfigPath);
        await drive.MountAsync();
        string db = Path.Combine(drive.MountPath, "db");
        byte[] expected = new byte[4 << 20];
        new Random(11).NextBytes(expected);
        File.WriteAllBytes(db, expected);
        (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);
        await drive.StopAsync();

        // The remote crawls now (1 KiB/s), so the overwrite below stays in the queue's memory, named by intent bits.
        Assert.IsTrue(config.Contains("\"kind\": \"folder\",", StringComparison.Ordinal), config);
        File.WriteAllText(drive.ConfigPath, config.Replace("\"kind\": \"folder\",", "\"kind\": \"folder\", \"bandwidthLimit\": \"1KiB\",", StringComparison.Ordinal));
        await drive.MountAsync();
        byte[] overwrite = new byte[200_000];
        new Random(12).NextBytes(overwrite);
        using (var f = new FileStream(db, FileMode.Open, FileAccess.Write))
        {
            f.Position = 1_001_000;
            f.Write(overwrite); // not fsync'd: a power cut may keep it or not; the facets must agree either way
        }
        overwrite.CopyTo(expected, 1_001_000);
        await drive.KillAsync();

        string queue = Path.Combine(drive.StateDir, "queue");
        using (var intent = new FileStream(Path.Combine(queue, "intent.map"), FileMode.Open))
        {
            Assert.IsTrue(intent.Length > 16, "the premise: the overwrite was named by intent bits only");
            intent.SetLength(16);
        }
        foreach (string segment in Directory.GetFiles(queue, "seg-*.cmq"))
        {
            using var s = new FileStream(segment, FileMode.Open);
            s.SetLength(Math.Min(s.Length, 24));
        }
        string marker = Path.Combine(drive.StateDir, "running");
        File.WriteAllLines(marker, File.ReadAllLines(marker).Select(l => l.StartsWith("boot ", StringComparison.Ordinal) ? "boot 00000000-0000-0000-0000-000000000000" : l));
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(drive.LocalPath, "db")), "the premise: the local pages are there");

        File.WriteAllText(drive.ConfigPath, config);
        await drive.MountAsync();
        (code, text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);
        await drive.StopAsync();
        Assert.IsTrue(drive.Output.Contains("machine restarted", StringComparison.Ordinal), "the mount said what it compares again:\n" + drive.Output);
        string restored = Path.Combine(drive.Dir, "restored");
        (int rc, string output, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, rc, output);
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(restored, "db")), "the remote has the bytes the local disk kept");
    }
}
