using System.Text.Json;

namespace CloudMirrorFs.Mount.Tests;

/// <summary>
/// Seed 000's failure table, row 1, on a real mount: the local facet's disk dies under a mounted drive, which goes on
/// serving, and is then replaced with a new disk rebuilt while the drive stays mounted. The dying "disk" is
/// another cmfs mount, killed with SIGKILL, so every access to the local facet fails from then on (ENOTCONN), as with
/// a disk that stops answering.
/// </summary>
[TestClass]
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class LocalDiskFailureTests
{
    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task LocalFolderDeleted_ThenTheMountKilledMidRebuild_TheNextMountServesFromTheRemoteAndFinishesTheRebuild()
    {
        // rm -rf of the local folder under the mounted drive, then SIGKILL while the folder is being rebuilt. The next
        // mount used to refuse ("no Synchronised local facet ... did not stop cleanly"), leaving the drive unusable.
        await using Drive drive = Drive.Create();
        await drive.MountAsync();
        var rnd = new Random(42);
        var expected = new SortedDictionary<string, string>(StringComparer.Ordinal);
        Directory.CreateDirectory(Path.Combine(drive.MountPath, "d"));
        for (int i = 0; i < 24; i++)
        {
            byte[] bytes = new byte[(4 << 20) + rnd.Next(100_000)];
            rnd.NextBytes(bytes);
            await File.WriteAllBytesAsync(Path.Combine(drive.MountPath, "d", $"f{i}"), bytes);
        }
        (int drained, _, string drainErr) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, drained, drainErr);
        expected = Drive.Snapshot(drive.MountPath);

        Directory.Delete(drive.LocalPath, recursive: true);
        _ = Directory.GetFiles(Path.Combine(drive.MountPath, "d")); // the first access fails the local facet over
        await File.WriteAllTextAsync(Path.Combine(drive.MountPath, "after-failover.txt"), "written while the remote served");
        expected["after-failover.txt"] = Drive.Snapshot(drive.MountPath)["after-failover.txt"];
        await drive.KillAsync(); // mid-rebuild: about 100 MiB to copy back

        await drive.MountAsync();
        Drive.AssertSameTree(expected, Drive.Snapshot(drive.MountPath), "the drive after the remount");
        var deadline = DateTime.UtcNow.AddSeconds(120);
        while (true)
        {
            (int code, string status, _) = await drive.CmfsAsync("status", "--json");
            Assert.AreEqual(0, code, status);
            using var json = JsonDocument.Parse(status);
            JsonElement local = json.RootElement.GetProperty("facets").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "local");
            if (local.GetProperty("state").GetString() == "synchronised")
            {
                break;
            }
            Assert.IsTrue(DateTime.UtcNow < deadline, "the local folder was not rebuilt in 120 s:\n" + status + "\n" + drive.Output);
            await Task.Delay(250);
        }
        Drive.AssertSameTree(expected, Drive.Snapshot(drive.LocalPath), "the rebuilt local folder");
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task LocalDiskDies_TheDriveServesReadsAndTakesWrites_ThenANewDiskIsRebuiltWhileMounted_AndTheRemoteHasItAll()
    {
        await using Drive disk = Drive.Create();
        await disk.MountAsync();
        await using Drive drive = Drive.Create(localPath: disk.MountPath);
        await drive.MountAsync();
        string m = drive.MountPath;
        string docs = Path.Combine(m, "docs");
        Directory.CreateDirectory(docs);
        byte[] a = MountOperationsTests.RandomBytes(3 << 20, 31);
        byte[] b = MountOperationsTests.RandomBytes(100_000, 32);
        File.WriteAllBytes(Path.Combine(docs, "a.bin"), a);
        File.WriteAllBytes(Path.Combine(docs, "b.bin"), b);
        File.CreateSymbolicLink(Path.Combine(docs, "link"), "a.bin");
        (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);
        // Remount, so that nothing below is answered from the kernel's page cache of the old mount.
        await drive.StopAsync();
        await drive.MountAsync();

        await disk.KillAsync(); // the local facet's disk is gone
        Assert.ThrowsExactly<IOException>(() => Directory.GetFileSystemEntries(disk.MountPath), "the disk really is dead");

        CollectionAssert.AreEqual(a, File.ReadAllBytes(Path.Combine(docs, "a.bin")), "a file written before: served from the remote");
        CollectionAssert.AreEqual(b, File.ReadAllBytes(Path.Combine(docs, "b.bin")));
        CollectionAssert.AreEquivalent(new[] { "a.bin", "b.bin", "link" }, Directory.GetFileSystemEntries(docs).Select(Path.GetFileName).ToArray());
        Assert.AreEqual("a.bin", new FileInfo(Path.Combine(docs, "link")).LinkTarget);
        Assert.AreEqual(a.Length, new FileInfo(Path.Combine(docs, "a.bin")).Length);

        // Writes go on: each is acknowledged once the remote has committed it (degraded service).
        byte[] c = MountOperationsTests.RandomBytes(1 << 20, 33);
        File.WriteAllBytes(Path.Combine(docs, "c.bin"), c);
        byte[] tail = MountOperationsTests.RandomBytes(5000, 34);
        using (var s = new FileStream(Path.Combine(docs, "b.bin"), FileMode.Append))
        {
            s.Write(tail);
        }
        Directory.CreateDirectory(Path.Combine(m, "made-while-degraded"));
        CollectionAssert.AreEqual(c, File.ReadAllBytes(Path.Combine(docs, "c.bin")));
        CollectionAssert.AreEqual(b.Concat(tail).ToArray(), File.ReadAllBytes(Path.Combine(docs, "b.bin")));

        (code, text, _) = await drive.CmfsAsync("status", "--json");
        Assert.AreEqual(0, code, text);
        JsonElement local = JsonDocument.Parse(text).RootElement.GetProperty("facets").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "local");
        Assert.AreNotEqual("synchronised", local.GetProperty("state").GetString(), $"the dead disk is not called Synchronised:\n{text}");

        SortedDictionary<string, string> seen = Drive.Snapshot(m);

        // A new disk: rebuilt from the remote while the drive stays mounted, and the drive is whole again.
        string newDisk = Path.Combine(drive.Dir, "newdisk");
        (code, text, _) = await drive.CmfsAsync("facet", "replace", "--name", "local", "--path", newDisk);
        Assert.AreEqual(0, code, text + "\n" + drive.Output);
        StringAssert.Contains(text, "Synchronised");
        Drive.AssertSameTree(seen, Drive.Snapshot(newDisk), "the rebuilt disk holds what the drive showed");
        Drive.AssertSameTree(seen, Drive.Snapshot(m), "and the drive still shows it");
        await drive.StopAsync();
        string restored = Path.Combine(drive.Dir, "restored");
        (code, text, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, code, text);
        Drive.AssertSameTree(seen, Drive.Snapshot(restored), "the remote alone holds everything the drive acknowledged");
        Assert.AreEqual("dir", seen["made-while-degraded"]);
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task LocalDiskAndRemoteDiskBothDie_CallsFailWithEioAfterDegradedTimeout_ThenTheRemoteComesBackAndCatchesUp()
    {
        await using Drive localDisk = Drive.Create();
        await using Drive remoteDisk = Drive.Create();
        await localDisk.MountAsync();
        await remoteDisk.MountAsync();
        await using Drive drive = Drive.Create(extraVolumeJson: ", \"degradedTimeout\": \"2s\"", localPath: localDisk.MountPath, remotePath: remoteDisk.MountPath);
        await drive.MountAsync();
        string file = Path.Combine(drive.MountPath, "f.bin");
        byte[] data = MountOperationsTests.RandomBytes(300_000, 41);
        File.WriteAllBytes(file, data);
        (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);
        await drive.StopAsync();
        await drive.MountAsync();

        // Opened while the disks work, so that the write below reaches cmfs (an open after they die fails at its lookup).
        using var appender = new FileStream(file, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1);
        await localDisk.KillAsync();
        await remoteDisk.KillAsync(); // the remote's disk stops answering too: unreachable, not empty
        var clock = System.Diagnostics.Stopwatch.StartNew();
        byte[] late = MountOperationsTests.RandomBytes(4096, 42);
        Task<IOException> write = Task.Run(() => Assert.ThrowsExactly<IOException>(() => appender.Write(late)));
        Task<IOException> read = Task.Run(() => Assert.ThrowsExactly<IOException>(() => File.ReadAllBytes(file)));
        Task both = Task.WhenAll(write, read);
        Assert.AreSame(both, await Task.WhenAny(both, Task.Delay(TimeSpan.FromSeconds(60))), $"a call hung with no disk and no remote:\n{drive.Output}");
        await both;
        Assert.IsTrue(clock.Elapsed >= TimeSpan.FromSeconds(2), $"failed after {clock.Elapsed}: before degradedTimeout, so the remote was not waited for");
        Assert.IsTrue(Drive.IsMounted(drive.MountPath), $"the drive itself stays mounted:\n{drive.Output}");
        (code, text, _) = await drive.CmfsAsync("status", "--json");
        Assert.AreEqual(0, code, text);
        JsonElement remote = JsonDocument.Parse(text).RootElement.GetProperty("facets").EnumerateArray().Single(f => f.GetProperty("name").GetString() == "remote");
        Assert.AreEqual("offline", remote.GetProperty("state").GetString(), $"a remote whose disk does not answer is unreachable, not refusing:\n{text}\n{drive.Output}");
        Assert.IsFalse(drive.Output.Contains("already exists", StringComparison.Ordinal), $"a dead disk was taken for a missing folder:\n{drive.Output}");

        // The remote's disk comes back: the queue drains by itself, the write that timed out included (it was queued).
        await remoteDisk.MountAsync();
        (code, text, _) = await drive.CmfsAsync("drain", "--timeout", "60");
        Assert.AreEqual(0, code, text + "\n" + drive.Output);
        byte[] now;
        try
        {
            now = File.ReadAllBytes(file);
        }
        catch (IOException e)
        {
            throw new AssertFailedException($"{e.Message}\n{drive.Output}");
        }
        // The kernel sent the 4 KiB write in pieces and gave up after the first EIO: what it had sent was queued, and
        // lands in order; what it had not sent never does. Either way the file is the old bytes and a prefix of the new.
        Assert.IsTrue(now.Length > data.Length && now.Length <= data.Length + 4096, $"read {now.Length} bytes:\n{drive.Output}");
        CollectionAssert.AreEqual(data, now[..data.Length], "the bytes before are untouched");
        CollectionAssert.AreEqual(late[..(now.Length - data.Length)], now[data.Length..], "what landed of the timed-out write is a prefix of its bytes");
    }

    /// <summary>
    /// The default layout on a disk that dies: the local facet and the state folder (queue, maps, table of names) on
    /// one disk, the remote caught up. The drive goes on from the remote: reads, listings and writes, each write
    /// acknowledged once the remote has it, and the remote alone then holds everything the drive acknowledged. When
    /// the disk comes back as it was, the next mount shows what the drive acknowledged, not the stale disk.
    /// </summary>
    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    public async Task TheDiskHoldingTheLocalFacetAndTheStateDies_TheCaughtUpRemoteServesTheDrive()
    {
        await using Drive disk = Drive.Create();
        await disk.MountAsync();
        await using Drive drive = Drive.Create(localPath: Path.Combine(disk.MountPath, "local"), stateDir: Path.Combine(disk.MountPath, "state"));
        await drive.MountAsync();
        string m = drive.MountPath;
        string docs = Path.Combine(m, "docs");
        Directory.CreateDirectory(docs);
        byte[] a = MountOperationsTests.RandomBytes(3 << 20, 51);
        byte[] b = MountOperationsTests.RandomBytes(100_000, 52);
        File.WriteAllBytes(Path.Combine(docs, "a.bin"), a);
        File.WriteAllBytes(Path.Combine(docs, "b.bin"), b);
        (int code, string text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text);
        await drive.StopAsync();
        await drive.MountAsync(); // nothing below answered from the old mount's page cache

        await disk.KillAsync(); // local facet, queue, maps and table of names: all gone at once
        Assert.ThrowsExactly<IOException>(() => Directory.GetFileSystemEntries(disk.MountPath), "the disk really is dead");
        try
        {
            CollectionAssert.AreEqual(a, File.ReadAllBytes(Path.Combine(docs, "a.bin")), "served from the remote");
            CollectionAssert.AreEquivalent(new[] { "a.bin", "b.bin" }, Directory.GetFileSystemEntries(docs).Select(Path.GetFileName).ToArray());
            byte[] tail = MountOperationsTests.RandomBytes(5000, 53);
            using (var s = new FileStream(Path.Combine(docs, "b.bin"), FileMode.Append))
            {
                s.Write(tail);
                s.Flush(flushToDisk: true);
            }
            byte[] c = MountOperationsTests.RandomBytes(1 << 20, 54);
            File.WriteAllBytes(Path.Combine(docs, "c.bin"), c);
            Directory.CreateDirectory(Path.Combine(m, "made-after"));
            CollectionAssert.AreEqual(b.Concat(tail).ToArray(), File.ReadAllBytes(Path.Combine(docs, "b.bin")));
            CollectionAssert.AreEqual(c, File.ReadAllBytes(Path.Combine(docs, "c.bin")));
        }
        catch (IOException e)
        {
            throw new AssertFailedException($"{e.Message}\n{drive.Output}", e);
        }
        // status answers though its socket file is on the dead disk (the abstract name), and tells the truth.
        (code, text, _) = await drive.CmfsAsync("status", "--json");
        Assert.AreEqual(0, code, text + "\n" + drive.Output);
        JsonElement[] facets = [.. JsonDocument.Parse(text).RootElement.GetProperty("facets").EnumerateArray()];
        Assert.AreNotEqual("synchronised", facets.Single(f => f.GetProperty("name").GetString() == "local").GetProperty("state").GetString(), text);
        Assert.AreEqual("synchronised", facets.Single(f => f.GetProperty("name").GetString() == "remote").GetProperty("state").GetString(), text);

        SortedDictionary<string, string> seen = Drive.Snapshot(m);
        TimeSpan stopped = await drive.StopAsync();
        Assert.IsTrue(stopped < TimeSpan.FromSeconds(10), $"SIGTERM took {stopped} with the state disk dead:\n{drive.Output}");
        string restored = Path.Combine(drive.Dir, "restored");
        (code, text, _) = await drive.CmfsAsync("restore", "--facet", "remote", "--to", restored);
        Assert.AreEqual(0, code, text);
        Drive.AssertSameTree(seen, Drive.Snapshot(restored), "the remote alone holds everything the drive acknowledged");

        // The disk comes back as it was when it died, state folder and local facet both older than the remote. The
        // remote's newest commit says it was written after the queue failed: it is the reference, and the local
        // facet is rebuilt from it.
        await disk.MountAsync();
        await drive.MountAsync();
        try
        {
            Drive.AssertSameTree(seen, Drive.Snapshot(m), "the drive shows what it acknowledged, not the stale disk");
        }
        catch (IOException e)
        {
            throw new AssertFailedException($"{e.Message}\n{drive.Output}", e);
        }
        (code, text, _) = await drive.CmfsAsync("drain", "--timeout", "120");
        Assert.AreEqual(0, code, text + "\n" + drive.Output);
        (code, text, _) = await drive.CmfsAsync("status", "--json");
        Assert.AreEqual("synchronised", JsonDocument.Parse(text).RootElement.GetProperty("facets").EnumerateArray()
            .Single(f => f.GetProperty("name").GetString() == "local").GetProperty("state").GetString(), text);
        await drive.StopAsync();
        Drive.AssertSameTree(seen, Drive.Snapshot(drive.LocalPath), "the local facet, rebuilt from the remote");
    }
}
