namespace CloudMirrorFs.Mount.Tests;

/// <summary>The seed's recovery column on a real mount: the local disk replaced and rebuilt while the drive stays in use.</summary>
[TestClass]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class FacetReplaceTests
{
    [TestMethod]
    public async Task FacetReplace_WhileAWriterWrites_RebuildsTheNewDiskAndLosesNothing()
    {
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        string m = drive.MountPath;
        Directory.CreateDirectory(Path.Combine(m, "docs"));
        byte[] big = MountOperationsTests.RandomBytes(6 << 20, 21);
        File.WriteAllBytes(Path.Combine(m, "docs", "big.bin"), big);
        File.CreateSymbolicLink(Path.Combine(m, "docs", "link"), "big.bin");
        (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);

        using var stop = new CancellationTokenSource();
        long appended = 0;
        Task writer = Task.Run(async () =>
        {
            await using var log = new FileStream(Path.Combine(m, "log.txt"), FileMode.Create, FileAccess.Write, FileShare.ReadWrite, 1);
            while (!stop.IsCancellationRequested)
            {
                byte[] line = System.Text.Encoding.UTF8.GetBytes($"line {appended:D8}\n");
                await log.WriteAsync(line);
                appended++;
                await Task.Delay(2);
            }
        });
        await Task.Delay(300);
        string newDisk = Path.Combine(drive.Dir, "newdisk");
        (code, text, _) = await drive.CmfsAsync("facet", "replace", "--name", "local", "--path", newDisk);
        Assert.AreEqual(0, code, text + "\n" + drive.Output);
        StringAssert.Contains(text, "Synchronised");
        await Task.Delay(300);
        await stop.CancelAsync();
        await writer;

        CollectionAssert.AreEqual(big, File.ReadAllBytes(Path.Combine(m, "docs", "big.bin")), "served throughout");
        string[] lines = File.ReadAllLines(Path.Combine(m, "log.txt"));
        Assert.AreEqual(appended, lines.Length, "every line the writer wrote during the swap is there");
        for (int i = 0; i < lines.Length; i++)
        {
            Assert.AreEqual($"line {i:D8}", lines[i]);
        }
        SortedDictionary<string, string> seen = Drive.Snapshot(m);
        await drive.StopAsync();
        Drive.AssertSameTree(seen, Drive.Snapshot(newDisk), "the new disk holds what the drive showed");
        StringAssert.Contains(File.ReadAllText(drive.ConfigPath), newDisk.Replace("\\", "\\\\", StringComparison.Ordinal), "the config names the new disk");
    }
}
