using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>
/// A machine that loses power under a running volume: the OS cache is gone, so a local file's page that reached the
/// disk may have no queue record or intent bit naming it. The test takes the disk as such a cut leaves it (every
/// folder copied while the volume runs, the queue's files then cut back to what no barrier flushed: nothing) and
/// opens it as the next boot would.
/// </summary>
[TestClass]
public sealed class PowerLossTests
{
    private const int BlockSize = CrashTests.BlockSizeForTests;

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MachineRestarted_AnOverwriteWhoseRecordWasLost_ReachesTheRemoteAnyway()
    {
        using var dir = new TempDir("powerloss");
        (string state, string local, string remote, long id, byte[] expected) = await OverwriteThenCutAsync(dir, restarted: true);

        await using MirrorVolume volume = await MirrorVolume.OpenAsync(CrashTests.Options(state, local, remote, 64 << 20));
        Assert.AreEqual(0, volume.QueueRecovery!.LostLocations.Count, "the premise: the intent bits of the overwrite were lost");
        Assert.AreNotEqual(FacetState.Synchronised, volume.GetFacetState("remote"));
        var (dirty, _, _) = volume.GetDirtyMap("remote");
        for (long b = Offset / BlockSize; b <= (Offset + Length - 1) / BlockSize; b++)
        {
            CollectionAssert.Contains(dirty.ToList(), new Location(id, b), "the overwritten block is named for the remote");
        }
        Assert.IsTrue(await volume.DrainAsync(TimeSpan.FromSeconds(60)), "the remote caught up");
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(local, "db")), "the local file kept the overwrite");
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(remote, "db")), "and the remote has the same bytes");
        Assert.AreEqual(0, volume.ActivityRegions, "the log starts empty for the new run");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MachineRestarted_AnOverwriteWhoseRecordWasLost_ReachesAnObjectStoreRemote()
    {
        using var dir = new TempDir("powerloss");
        (string state, string local, string remote, long id, byte[] expected) = await ChangeThenCutAsync(dir, restarted: true, async (volume, id, expected) =>
        {
            byte[] overwrite = CrashTests.Pattern(2, Length);
            await volume.WriteAsync(id, Offset, overwrite);
            overwrite.CopyTo(expected, Offset);
            return expected;
        }, remoteKind: "folder");

        await using MirrorVolume volume = await MirrorVolume.OpenAsync(CrashTests.Options(state, local, remote, 64 << 20, remoteKind: "folder"));
        Assert.IsTrue(await volume.DrainAsync(TimeSpan.FromSeconds(60)));
        CollectionAssert.AreEqual(expected, await ReadRemoteAsync(volume, id, "db", expected.Length), "the store's image has the overwrite");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ProcessKilled_SameBoot_OnlyTheIntentLocationsAreResynchronised()
    {
        using var dir = new TempDir("powerloss");
        (string state, string local, string remote, long id, byte[] expected) = await OverwriteThenCutAsync(dir, restarted: false);

        await using MirrorVolume volume = await MirrorVolume.OpenAsync(CrashTests.Options(state, local, remote, 64 << 20));
        long first = Offset / BlockSize, last = (Offset + Length - 1) / BlockSize;
        var (dirty, full, _) = volume.GetDirtyMap("remote");
        Assert.IsFalse(full);
        CollectionAssert.AreEquivalent(Enumerable.Range((int)first, (int)(last - first + 1)).Select(b => new Location(id, b)).ToList(), dirty.ToList(),
            "after a killed process the OS cache kept the intent bits: the activity log's wider regions are not used");
        Assert.IsTrue(await volume.DrainAsync(TimeSpan.FromSeconds(60)));
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(remote, "db")));
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MachineRestarted_AFileTheTableOfNamesLost_IsComparedWhole()
    {
        using var dir = new TempDir("powerloss");
        string state = dir.Sub("state"), local = dir.Sub("local"), remote = dir.Sub("remote");
        var options = CrashTests.Options(state, local, remote, 64 << 20);
        SimulatedLink? link = null;
        MirrorVolume volume = await MirrorVolume.OpenAsync(options, o => o.Name == "remote" ? link = new SimulatedLink(FacetFactory.Create(o, options)) : FacetFactory.Create(o, options));
        string journal = Path.Combine(state, "files.journal");
        long journalBefore = File.Exists(journal) ? new FileInfo(journal).Length : 0;
        long id = await volume.CreateFileAsync("made");
        byte[] expected = CrashTests.Pattern(3, 1 << 20);
        await volume.WriteAsync(id, 0, expected);
        Assert.IsTrue(await volume.DrainAsync(TimeSpan.FromSeconds(60)), "the remote got the new file");
        link!.Down = true;
        byte[] overwrite = CrashTests.Pattern(4, 10_000);
        await volume.WriteAsync(id, 300_000, overwrite); // not sent: the link is down
        overwrite.CopyTo(expected, 300_000);

        await LeaveAsTheDiskIsNowAsync(dir, volume, [state, local, remote], () => link.Down = false);
        // The cut: the table of names never had the file on the disk, nor the queue the overwrite.
        using (var j = new FileStream(journal, FileMode.Open))
        {
            Assert.IsTrue(j.Length > journalBefore, "the premise: the create was journalled");
            j.SetLength(journalBefore);
        }
        CutQueueAndBoot(state);

        await using MirrorVolume after = await MirrorVolume.OpenAsync(options);
        Assert.AreNotEqual(id, after.LookupId("made"), "the premise: the file came back under a new id");
        Assert.IsTrue(await after.DrainAsync(TimeSpan.FromSeconds(60)));
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(remote, "made")), "the remote has the overwrite");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task StateDiskFull_AWriteIntoANewRegion_FailsNamingTheActivityLog_AndGoesThroughOnceThereIsRoom()
    {
        using var dir = new TempDir("powerloss");
        using var disk = new SmallDisk(1);
        string state = Path.Combine(disk.Path, "state");
        var options = CrashTests.Options(state, dir.Sub("local"), dir.Sub("remote"), 64 << 20) with
        {
            Queue = new QueueOptions { Path = dir.Sub("queue") }, // only the activity log is on the full disk
        };
        await using MirrorVolume volume = await MirrorVolume.OpenAsync(options, runtime: new VolumeRuntimeOptions { Replicate = false });
        long id = await volume.CreateFileAsync("sparse");
        await volume.WriteAsync(id, 0, new byte[] { 1 });
        string ballast = disk.Ballast();
        await volume.WriteAsync(id, 0, new byte[] { 2 }); // a logged region: no I/O on the full disk

        // One byte every 64 MiB: a new region each, until the log's last page is full and the disk has no other.
        MirrorException? refused = null;
        long k;
        for (k = 1; k < 1000 && refused is null; k++)
        {
            try
            {
                await volume.WriteAsync(id, k * ActivityLog.RegionBytes, new byte[] { 3 });
            }
            catch (MirrorException e)
            {
                refused = e;
            }
        }
        k--;
        Assert.IsNotNull(refused, "the full disk refused a region at last");
        Assert.AreEqual(MirrorError.IoError, refused.Error);
        StringAssert.Contains(refused.Message, Path.Combine(state, "activity.map"));
        StringAssert.Contains(refused.Message, "the change was not made");
        Assert.AreEqual((k - 1) * ActivityLog.RegionBytes + 1, new FileInfo(Path.Combine(options.Facets[0].Path!, "sparse")).Length, "the refused write reached no facet");

        File.Delete(ballast);
        await volume.WriteAsync(id, k * ActivityLog.RegionBytes, new byte[] { 3 });
        Assert.AreEqual(k * ActivityLog.RegionBytes + 1, new FileInfo(Path.Combine(options.Facets[0].Path!, "sparse")).Length);
        Assert.AreEqual(k + 1, volume.ActivityRegions);
        Assert.AreEqual(16 + (29 * (k + 1)), new FileInfo(Path.Combine(state, "activity.map")).Length, "every region is in the file: header and one record each");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ActivityLog_PastItsThreshold_IsTrimmedWithoutWaitingForThePeriod()
    {
        using var dir = new TempDir("powerloss");
        var options = CrashTests.Options(dir.Sub("state"), dir.Sub("local"), dir.Sub("remote"), 64 << 20);
        await using MirrorVolume volume = await MirrorVolume.OpenAsync(options,
            runtime: new VolumeRuntimeOptions { Replicate = false, ActivityTrimPeriod = TimeSpan.FromHours(1) });
        long id = await volume.CreateFileAsync("sparse");
        for (long k = 0; k < MirrorVolume.ActivityTrimAt - 1; k++)
        {
            await volume.WriteAsync(id, k * ActivityLog.RegionBytes, new byte[] { 1 });
        }
        await Task.Delay(500);
        Assert.AreEqual(MirrorVolume.ActivityTrimAt - 1, volume.ActivityRegions, "below the threshold the log waits for its period");
        await volume.WriteAsync(id, MirrorVolume.ActivityTrimAt * ActivityLog.RegionBytes, new byte[] { 1 });
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (volume.ActivityRegions > 0)
        {
            Assert.IsTrue(DateTime.UtcNow < deadline, $"still {volume.ActivityRegions} regions logged 30 s after passing the threshold");
            await Task.Delay(50);
        }
    }

    private const long Offset = (1 << 20) + 1000;
    private const int Length = 200_000;

    /// <summary>200 KB of "db" overwritten (same length), then the disk taken as <see cref="ChangeThenCutAsync"/> does.</summary>
    private static Task<(string State, string Local, string Remote, long Id, byte[] Expected)> OverwriteThenCutAsync(TempDir dir, bool restarted) =>
        ChangeThenCutAsync(dir, restarted, async (volume, id, expected) =>
        {
            byte[] overwrite = CrashTests.Pattern(2, Length);
            await volume.WriteAsync(id, Offset, overwrite);
            overwrite.CopyTo(expected, Offset);
            return expected;
        });

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MachineRestarted_AFileShrunkAndRegrownToItsLength_ReachesTheRemoteAsZeros()
    {
        using var dir = new TempDir("powerloss");
        (string state, string local, string remote, _, byte[] expected) = await ChangeThenCutAsync(dir, restarted: true, async (volume, id, expected) =>
        {
            await volume.SetLengthAsync(id, 1 << 20);
            await volume.SetLengthAsync(id, expected.Length);
            Array.Clear(expected, 1 << 20, expected.Length - (1 << 20));
            return expected;
        });
        await using MirrorVolume volume = await MirrorVolume.OpenAsync(CrashTests.Options(state, local, remote, 64 << 20));
        Assert.IsTrue(await volume.DrainAsync(TimeSpan.FromSeconds(60)));
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(remote, "db")), "the remote's old bytes past 1 MiB are zeros now");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task MachineRestarted_AFileRenamedOverAnotherOfTheSameLength_ReachesTheRemote()
    {
        using var dir = new TempDir("powerloss");
        (string state, string local, string remote, _, byte[] expected) = await ChangeThenCutAsync(dir, restarted: true, async (volume, _, _) =>
        {
            await volume.RenameAsync("other", "db"); // an editor's save: the new content put over the old name
            return CrashTests.Pattern(5, 4 << 20);
        });
        await using MirrorVolume volume = await MirrorVolume.OpenAsync(CrashTests.Options(state, local, remote, 64 << 20));
        Assert.IsTrue(await volume.DrainAsync(TimeSpan.FromSeconds(60)));
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(remote, "db")));
        Assert.IsFalse(File.Exists(Path.Combine(remote, "other")));
    }

    /// <summary>
    /// Two 4 MiB files, "db" and "other", on both facets; then, with replication off, <paramref name="change"/> made
    /// (it returns what "db" holds after it) and the disk taken as it is; with <paramref name="restarted"/>, what a
    /// power cut loses of it is cut away too.
    /// </summary>
    private static async Task<(string State, string Local, string Remote, long Id, byte[] Expected)> ChangeThenCutAsync(TempDir dir, bool restarted,
        Func<MirrorVolume, long, byte[], Task<byte[]>> change, string remoteKind = "directory")
    {
        string state = dir.Sub("state"), local = dir.Sub("local"), remote = dir.Sub("remote");
        var options = CrashTests.Options(state, local, remote, 64 << 20, remoteKind);
        byte[] expected = CrashTests.Pattern(1, 4 << 20);
        long id;
        await using (MirrorVolume first = await MirrorVolume.OpenAsync(options))
        {
            id = await first.CreateFileAsync("db");
            await first.WriteAsync(id, 0, expected);
            long other = await first.CreateFileAsync("other");
            await first.WriteAsync(other, 0, CrashTests.Pattern(5, 4 << 20));
            Assert.IsTrue(await first.DrainAsync(TimeSpan.FromSeconds(60)));
            CollectionAssert.AreEqual(expected, await ReadRemoteAsync(first, id, "db", expected.Length), "the premise: the remote had the file");
        }

        MirrorVolume second = await MirrorVolume.OpenAsync(options, runtime: new VolumeRuntimeOptions { Replicate = false });
        expected = await change(second, id, expected);
        await LeaveAsTheDiskIsNowAsync(dir, second, [state, local, remote]);
        if (restarted)
        {
            CutQueueAndBoot(state);
        }
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(local, "db")), "the premise: the local page reached the disk");
        return (state, local, remote, id, expected);
    }

    /// <summary>The queue's intent map and segments back to their headers (no barrier ran), and another boot id.</summary>
    private static void CutQueueAndBoot(string state)
    {
        string queue = Path.Combine(state, "queue");
        using (var intent = new FileStream(Path.Combine(queue, "intent.map"), FileMode.Open))
        {
            intent.SetLength(16);
        }
        foreach (string segment in Directory.GetFiles(queue, "seg-*.cmq"))
        {
            using var s = new FileStream(segment, FileMode.Open);
            s.SetLength(Math.Min(s.Length, 24));
        }
        string marker = Path.Combine(state, "running");
        string[] lines = File.ReadAllLines(marker);
        Assert.IsTrue(lines.Any(l => l.StartsWith("boot ", StringComparison.Ordinal)), "the running marker records the boot");
        File.WriteAllLines(marker, lines.Select(l => l.StartsWith("boot ", StringComparison.Ordinal) ? "boot 00000000-0000-0000-0000-000000000000" : l));
    }

    private static async Task<byte[]> ReadRemoteAsync(MirrorVolume volume, long id, string path, int length)
    {
        byte[] buffer = new byte[length];
        int n = await volume.GetFacet("remote").ReadAsync(new FileRef(id, path), 0, buffer, CancellationToken.None);
        Assert.AreEqual(length, n, $"the remote's {path} is {n} bytes long");
        return buffer;
    }

    /// <summary>
    /// The running volume's folders copied as they are now, the volume closed (<paramref name="beforeClose"/> first),
    /// and the copies put back in place: the folders as a crash at the copy left them.
    /// </summary>
    private static async Task LeaveAsTheDiskIsNowAsync(TempDir dir, MirrorVolume volume, string[] folders, Action? beforeClose = null)
    {
        string image = Path.Combine(dir.Path, "image");
        Directory.CreateDirectory(image);
        foreach (string folder in folders)
        {
            Copy(folder, Path.Combine(image, Path.GetFileName(folder)));
        }
        beforeClose?.Invoke();
        await volume.DisposeAsync();
        foreach (string folder in folders)
        {
            Directory.Delete(folder, recursive: true);
            Directory.Move(Path.Combine(image, Path.GetFileName(folder)), folder);
        }
    }

    /// <summary>The folder as it is on the disk now (cp: .NET's own copy would take the volume's file locks).</summary>
    private static void Copy(string from, string to)
    {
        using var cp = Process.Start(new ProcessStartInfo("cp", ["-a", from, to]) { RedirectStandardError = true })!;
        string error = cp.StandardError.ReadToEnd();
        cp.WaitForExit();
        Assert.AreEqual(0, cp.ExitCode, $"cp -a {from} {to}: {error}");
    }
}
