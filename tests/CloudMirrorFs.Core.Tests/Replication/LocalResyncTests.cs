using CloudMirrorFs.Facets;
using CloudMirrorFs.Storage;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// A local facet brought back while writers keep writing: the dirty map is the record of progress (a write to a
/// copied block goes to the facet at once, one to a block not yet reached is left to the copy), and no write that
/// arrives during the resync is lost: both local folders and the writers' model agree byte for byte at the end.
/// </summary>
[TestClass]
public sealed class LocalResyncTests
{
    private const int Block = 64 * 1024;
    private const int Files = 8;
    private const int FileLength = 24 * Block;

    [TestMethod]
    public async Task DirtyMapResync_WhileWritersWrite_BothLocalsEqualTheModel()
    {
        await using var fx = new VolumeFixture(locals: 2, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[][] model = await CreateFilesAsync(v);

        fx.Faults["local1"].FailWrite = (_, _, _) => true; // the second disk starts failing writes
        using var stop = new CancellationTokenSource();
        Task writers = WriteAsync(v, model, stop.Token);
        await Wait.UntilAsync(() => v.GetFacetState("local1") != FacetState.Synchronised, "local1 taken offline");
        await Task.Delay(500);
        Assert.IsTrue(v.GetDirtyCount("local1") > 0, "the missed writes are in local1's dirty map");
        fx.Faults["local1"].FailWrite = null; // the disk is back: the resync retry brings it in while writers go on
        await Wait.UntilAsync(() => v.GetFacetState("local1") == FacetState.Synchronised, "local1 resynchronised", TimeSpan.FromSeconds(60));
        await Task.Delay(300); // writes keep landing on both facets after the resync
        await stop.CancelAsync();
        await writers;

        await AssertModelAsync(v, model);
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("local1"), "both local facets after the resync");
    }

    [TestMethod]
    public async Task AResyncAskedForJustAsTheLastOneEnds_IsNotLost()
    {
        // The loop sees its facet Synchronised and is about to end when a resync is asked for (a disk replaced again,
        // say): either that loop goes on, or the request starts a new one. Never neither, leaving the facet
        // NotSynchronised with nothing rebuilding it.
        await using var fx = new VolumeFixture(locals: 2, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[][] model = await CreateFilesAsync(v);
        int endings = 0;
        Task? request = null;
        v.LocalResyncEndingForTests = slot =>
        {
            if (slot.Name == "local1" && Interlocked.Increment(ref endings) == 1)
            {
                // From another thread, as the control socket would; given time to get as far as it can meanwhile.
                request = Task.Run(() => v.RequestResync("local1", full: true));
                request.Wait(TimeSpan.FromMilliseconds(300));
            }
        };
        v.RequestResync("local1", full: true);
        await Wait.UntilAsync(() => Volatile.Read(ref endings) >= 2 && v.GetFacetState("local1") == FacetState.Synchronised,
            "a second resync of local1 ran to its end (the request made as the first loop ended was not lost)", TimeSpan.FromSeconds(60));
        await request!;
        Assert.AreEqual(0, v.GetDirtyCount("local1"));
        await AssertModelAsync(v, model);
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("local1"), "the rebuilt facet equals the good one");
    }

    [TestMethod]
    public async Task Resync_ItsClearsReachTheMapFile_OnlyOnceTheRebuiltFacetIsFlushed()
    {
        // A power cut must not find a block cleared in the dirty map's file while the copy of it was still only in the
        // OS cache: the facet would come back Synchronised without it. Held at its flush, the facet's map file must
        // still name every block copied since the last flush.
        await HeldAtTheFlushAsync(full: false, (copied, onDisk) =>
        {
            List<Location> lost = [.. copied.Where(l => !onDisk.Contains(l))];
            Assert.IsFalse(onDisk.IsFull, "the premise: a resync of what the map names, not a full one");
            Assert.AreEqual(0, lost.Count, $"{lost.Count} of {copied.Count} copied blocks already cleared in the file before the flush, e.g. {string.Join(", ", lost.Take(3))}");
        });
    }

    [TestMethod]
    public async Task FullResync_ItsVolumeMarksLeaveTheMapFile_OnlyOnceTheRebuiltFacetIsFlushed()
    {
        // The same for the names the reconcile made: the full and namespace marks stay in the file until the flush.
        await HeldAtTheFlushAsync(full: true, (_, onDisk) =>
        {
            Assert.IsTrue(onDisk.IsFull, "the full mark is still in the file");
            Assert.IsTrue(onDisk.NamespaceDirty, "and the namespace mark");
        });
    }

    /// <summary>
    /// local1 brought back (a full rebuild of an emptied folder, or the blocks it missed while failing writes) with its
    /// flushes held; at the first held flush, <paramref name="check"/> gets the blocks copied since the last completed
    /// flush and a copy of local1's dirty-map file as it is then. Then the flush goes on and local1 must end equal.
    /// </summary>
    private static async Task HeldAtTheFlushAsync(bool full, Action<List<Location>, DirtyMap> check)
    {
        HeldFlushFacet? held = null;
        await using var fx = new VolumeFixture(locals: 2, blockSize: Block)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Name == "local1" ? held = new HeldFlushFacet(inner, Block) : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        byte[][] model = await CreateFilesAsync(v);
        await v.SyncAsync();
        if (!full)
        {
            fx.Faults["local1"].FailWrite = (_, _, _) => true;
            for (int i = 0; i < Files; i++)
            {
                byte[] again = new byte[FileLength];
                new Random(100 + i).NextBytes(again);
                await v.WriteAsync(v.LookupId($"d/f{i}")!.Value, 0, again);
                model[i] = again;
            }
            Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("local1"), "the premise: local1 missed the writes");
        }
        else
        {
            foreach (string e in Directory.EnumerateDirectories(fx.FacetPath("local1")))
            {
                Directory.Delete(e, recursive: true); // the disk lost whole
            }
        }
        held!.Reset();
        held.Hold = true;
        try
        {
            if (full)
            {
                v.RequestResync("local1", full: true);
            }
            else
            {
                fx.Faults["local1"].FailWrite = null; // the disk is back: the resync retry brings it in
            }
            await held.FlushHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
            List<Location> copied = held.WrittenSinceFlush();
            Assert.IsTrue(copied.Count >= Files * (FileLength / Block), $"the premise: the resync copied every block before its flush ({copied.Count})");
            string copy = Path.Combine(fx.Options.StateDir, "local1-at-the-cut.map");
            File.Copy(Path.Combine(fx.Options.StateDir, "dirty", "local1.map"), copy);
            using DirtyMap onDisk = DirtyMap.Open(copy);
            check(copied, onDisk);
        }
        finally
        {
            held.Release(); // a failed check must not leave the resync (and the volume's close) waiting
        }
        await Wait.UntilAsync(() => v.GetFacetState("local1") == FacetState.Synchronised, "local1 rebuilt", TimeSpan.FromSeconds(60));
        Assert.AreEqual(0, v.GetDirtyCount("local1"));
        await AssertModelAsync(v, model);
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("local1"), "the rebuilt facet equals the good one");
    }

    [TestMethod]
    public async Task FullResync_OfALostDisk_WhileWritersWrite_RebuildsIt()
    {
        await using var fx = new VolumeFixture(locals: 2, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[][] model = await CreateFilesAsync(v);
        using var stop = new CancellationTokenSource();
        Task writers = WriteAsync(v, model, stop.Token);
        await Task.Delay(300);

        // The disk is lost whole: its folder emptied behind the volume's back, then a full resync is asked for.
        foreach (string e in Directory.EnumerateFileSystemEntries(fx.FacetPath("local1")))
        {
            if (Directory.Exists(e))
            {
                Directory.Delete(e, recursive: true);
            }
            else
            {
                File.Delete(e);
            }
        }
        v.RequestResync("local1", full: true);
        await Wait.UntilAsync(() => v.GetFacetState("local1") == FacetState.Synchronised, "local1 rebuilt", TimeSpan.FromSeconds(60));
        await Task.Delay(300);
        await stop.CancelAsync();
        await writers;

        await AssertModelAsync(v, model);
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("local1"), "the rebuilt facet equals the good one");
    }

    [TestMethod]
    public async Task OnlyLocalFolderDeletedUnderTheVolume_ReadsAndWritesGoOn_FolderIsRebuilt()
    {
        // rm -rf of the local facet's folder (or its disk unmounted) while mounted. Every path then said "not found":
        // the drive's root vanished for its users, with the facet still called Synchronised.
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[][] model = await CreateFilesAsync(v);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));

        Directory.Delete(fx.FacetPath("local0"), recursive: true);
        await AssertModelAsync(v, model); // served from the remote while the local folder is gone or being rebuilt
        Assert.AreEqual(NodeKind.Directory, (await v.StatAsync("")).Kind);
        var rnd = new Random(5);
        for (int i = 0; i < Files; i++)
        {
            byte[] data = new byte[3000];
            rnd.NextBytes(data);
            long id = (await v.StatAsync($"d/f{i}")).FileId;
            await v.WriteAsync(id, i * 5000L, data);
            data.CopyTo(model[i], i * 5000);
        }
        await Wait.UntilAsync(() => v.GetFacetState("local0") == FacetState.Synchronised, "local0 rebuilt", TimeSpan.FromSeconds(60));
        await AssertModelAsync(v, model);
        for (int i = 0; i < Files; i++)
        {
            CollectionAssert.AreEqual(model[i], File.ReadAllBytes(Path.Combine(fx.FacetPath("local0"), "d", $"f{i}")), $"d/f{i} in the rebuilt folder");
        }
    }

    private static async Task<byte[][]> CreateFilesAsync(MirrorVolume v)
    {
        var model = new byte[Files][];
        await v.CreateDirectoryAsync("d");
        for (int i = 0; i < Files; i++)
        {
            long id = await v.CreateFileAsync($"d/f{i}");
            model[i] = new byte[FileLength];
            new Random(i).NextBytes(model[i]);
            await v.WriteAsync(id, 0, model[i]);
        }
        return model;
    }

    /// <summary>Four writers, two files each (so each file's model is written in order), random offsets and lengths.</summary>
    private static Task WriteAsync(MirrorVolume v, byte[][] model, CancellationToken stop)
        => Task.WhenAll(Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            var rng = new Random(100 + w);
            long[] ids = [v.LookupId($"d/f{w * 2}")!.Value, v.LookupId($"d/f{(w * 2) + 1}")!.Value];
            while (!stop.IsCancellationRequested)
            {
                int which = rng.Next(2);
                int file = (w * 2) + which;
                int length = rng.Next(1, 3 * Block);
                int offset = rng.Next(0, FileLength - length);
                if (rng.Next(5) == 0)
                {
                    // A hole punched or a range zeroed: it must reach a facet being rebuilt like a write does.
                    await v.ZeroRangeAsync(ids[which], offset, length, deallocate: rng.Next(2) == 0);
                    Array.Clear(model[file], offset, length);
                    continue;
                }
                byte[] data = new byte[length];
                rng.NextBytes(data);
                await v.WriteAsync(ids[which], offset, data);
                data.CopyTo(model[file], offset);
            }
        })));

    private static async Task AssertModelAsync(MirrorVolume v, byte[][] model)
    {
        for (int i = 0; i < Files; i++)
        {
            byte[] back = new byte[FileLength];
            int n = await v.ReadAsync(v.LookupId($"d/f{i}")!.Value, 0, back);
            Assert.AreEqual(FileLength, n);
            CollectionAssert.AreEqual(model[i], back, $"d/f{i} through the volume");
        }
    }
}

/// <summary>A local facet lost whole (its folder emptied) while the volume was stopped.</summary>
[TestClass]
public sealed class LostLocalDiskTests
{
    [TestMethod]
    public async Task LostOnlyLocalDisk_AtOpen_ServesFromTheRemote_AndRebuildsTheLocal()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: 64 * 1024, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        byte[] data = new byte[700_000];
        new Random(3).NextBytes(data);
        await v.CreateDirectoryAsync("docs");
        long id = await v.CreateFileAsync("docs/report.bin");
        await v.WriteAsync(id, 0, data);
        await v.CreateSymlinkAsync("docs/latest", "report.bin");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        await v.DisposeAsync();

        Directory.Delete(fx.FacetPath("local0"), recursive: true); // the disk is gone; a new, empty one takes its place

        v = await fx.OpenAsync();
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("local0"), "an empty folder is never taken as the truth");
        byte[] back = new byte[data.Length];
        Assert.AreEqual(data.Length, await v.ReadAsync(v.LookupId("docs/report.bin")!.Value, 0, back), "served from the remote meanwhile");
        CollectionAssert.AreEqual(data, back);
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (v.GetFacetState("local0") != FacetState.Synchronised)
        {
            Assert.IsTrue(DateTime.UtcNow < deadline, $"local0 rebuilt from the remote: {v.GetStatus().Facets[0].Reason}");
            await Task.Delay(50);
        }
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(fx.FacetPath("local0"), "docs", "report.bin")));
        Assert.AreEqual("report.bin", new FileInfo(Path.Combine(fx.FacetPath("local0"), "docs", "latest")).LinkTarget);
        long id2 = await v.CreateFileAsync("after.txt");
        await v.WriteAsync(id2, 0, "written after the rebuild"u8.ToArray());
        Assert.AreEqual("written after the rebuild", File.ReadAllText(Path.Combine(fx.FacetPath("local0"), "after.txt")));
    }
}
