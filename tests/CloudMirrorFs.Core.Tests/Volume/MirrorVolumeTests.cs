using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

[TestClass]
public sealed class MirrorVolumeTests
{
    private static byte[] Bytes(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static async Task<byte[]> ReadAllAsync(MirrorVolume v, long id, int length)
    {
        byte[] b = new byte[length];
        int n = await v.ReadAsync(id, 0, b);
        Assert.AreEqual(length, n);
        return b;
    }

    [TestMethod]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Close_WhenTheQueueCannotFlushItsFolder_KeepsTheRunningMarker_AndTheNextOpenSendsWhatItHeld()
    {
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(locals: 1, remotes: 1) { Logs = recording };
        MirrorVolume v = await fx.OpenAsync(); // no replication: the queue holds the write in memory at close
        long id = await v.CreateFileAsync("f");
        byte[] data = Bytes(100_000, 21);
        await v.WriteAsync(id, 0, data);
        CloudMirrorFs.Storage.AtomicFile.InjectFsyncErrno(5, fx.Options.QueuePath); // EIO, the queue's folder only
        try
        {
            await v.DisposeAsync(); // logs, and goes on closing the rest
        }
        finally
        {
            CloudMirrorFs.Storage.AtomicFile.InjectedFsyncErrno = 0;
        }
        Assert.IsTrue(recording.Messages.Any(m => m.Contains("queue: closing it failed", StringComparison.Ordinal)), string.Join("\n", recording.Messages));
        Assert.IsTrue(File.Exists(Path.Combine(fx.Options.StateDir, "running")), "not a clean stop: the next open recovers as after a crash");

        fx.Replicate = true;
        v = await fx.OpenAsync();
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));
        CollectionAssert.AreEqual(data, await File.ReadAllBytesAsync(Path.Combine(await fx.RemoteTreeAsync("remote0"), "f")));
    }

    [TestMethod]
    public async Task CaseInsensitiveNames_OneNameInAnyCase_CasePreserved_TwinsRefused_KeptAcrossReopen()
    {
        // The Windows default (the local facet on NTFS): README.txt next to Readme.txt would be two files in the table
        // and one in the folder. Tested here on a case-sensitive folder, which must then hold exactly the table's names.
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, remoteKind: "folder", caseInsensitiveNames: true) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("Docs");
        long id = await v.CreateFileAsync("Docs/Readme.txt");
        byte[] data = Bytes(5000, 1);
        await v.WriteAsync(id, 0, data);

        Assert.AreEqual(id, v.LookupId("docs/README.TXT"), "a lookup in another case finds the name");
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.CreateFileAsync("Docs/README.txt"));
        Assert.AreEqual(MirrorError.Exists, e.Error);
        StringAssert.Contains(e.Message, "'Readme.txt' already exists");
        Assert.AreEqual(MirrorError.Exists, (await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.CreateDirectoryAsync("DOCS"))).Error);
        long other = await v.CreateFileAsync("Docs/other");
        Assert.AreEqual(MirrorError.Exists, (await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.RenameAsync("Docs/other", "Docs/readme.TXT"))).Error,
            "renaming another file onto a name that differs only in case");
        Assert.AreEqual(other, v.LookupId("Docs/other"));

        await v.RenameAsync("docs/readme.txt", "Docs/README.md"); // found in any case; the new name keeps its case
        await v.RenameAsync("Docs", "docs"); // a change of case only, of a folder that is not empty
        string local = fx.FacetPath("local0");
        CollectionAssert.AreEquivalent(new[] { "README.md", "other" }, Directory.GetFiles(Path.Combine(local, "docs")).Select(Path.GetFileName).ToArray());
        Assert.IsFalse(Directory.Exists(Path.Combine(local, "Docs")), "the folder's new case is the one on disk");
        CollectionAssert.AreEqual(data, await ReadAllAsync(v, v.LookupId("DOCS/readme.MD")!.Value, data.Length));

        v = await fx.ReopenAsync();
        Assert.AreEqual(id, v.LookupId("DOCS/README.MD"), "kept across a reopen");
        Assert.AreEqual(MirrorError.Exists, (await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.CreateFileAsync("docs/readme.md"))).Error);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));
        TreeAssert.Equal(local, await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    public async Task CaseSensitiveNames_TheDefaultHere_NamesThatDifferInCaseAreTwoFiles()
    {
        await using var fx = new VolumeFixture(locals: 1);
        MirrorVolume v = await fx.OpenAsync();
        long a = await v.CreateFileAsync("Readme.txt");
        long b = await v.CreateFileAsync("README.txt");
        Assert.AreNotEqual(a, b);
        Assert.IsNull(v.LookupId("readme.txt"));
    }

    [TestMethod]
    public async Task SyncFile_FlushesThatFileOnEveryLocal_AfterAWriteOrAModeChange_NotAnotherFile()
    {
        // fsync through the mount is SyncFileAsync: the local facets flush that file's handle, not every file.
        await using var fx = new VolumeFixture(locals: 2);
        MirrorVolume v = await fx.OpenAsync();
        long a = await v.CreateFileAsync("a");
        long b = await v.CreateFileAsync("b");
        await v.WriteAsync(a, 0, Bytes(10_000, 1));
        await v.WriteAsync(b, 0, Bytes(10_000, 2));
        var locals = new[] { (DirectoryFacet)fx.Faults["local0"].Inner, (DirectoryFacet)fx.Faults["local1"].Inner };
        long[] before = [.. locals.Select(l => l.HandleFlushes)];

        await v.SyncFileAsync(a);
        CollectionAssert.AreEqual(before.Select(n => n + 1).ToList(), locals.Select(l => l.HandleFlushes).ToList(), "a's handle, on each local; not b's");
        await v.SetAttributesAsync("a", new AttributeChange { Mode = (UnixFileMode)0b100_000_000 });
        await v.SyncFileAsync(a);
        CollectionAssert.AreEqual(before.Select(n => n + 2).ToList(), locals.Select(l => l.HandleFlushes).ToList(), "a mode change is flushed with the file");
        await v.SyncAsync();
        CollectionAssert.AreEqual(before.Select(n => n + 3).ToList(), locals.Select(l => l.HandleFlushes).ToList(), "the whole barrier flushes b");
    }

    [TestMethod]
    public async Task Write_TwoLocals_BothHoldTheBytesAsPlainFiles()
    {
        await using var fx = new VolumeFixture(locals: 2);
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("docs");
        long id = await v.CreateFileAsync("docs/a.bin");
        byte[] data = Bytes(300_000, 1);
        await v.WriteAsync(id, 0, data);
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(fx.FacetPath("local0"), "docs", "a.bin")));
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(fx.FacetPath("local1"), "docs", "a.bin")));
        CollectionAssert.AreEqual(data, await ReadAllAsync(v, id, data.Length));
        Assert.AreEqual(300_000, (await v.StatAsync("docs/a.bin")).Length);
    }

    [TestMethod]
    public async Task Write_OneOfTwoLocalsFails_WritesAndReadsGoOn_FailedIsNotSynchronised()
    {
        await using var fx = new VolumeFixture(locals: 2);
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Bytes(100_000, 1));
        fx.Faults["local1"].FailWrite = (_, offset, _) => offset >= 100_000;

        byte[] more = Bytes(200_000, 2);
        await v.WriteAsync(id, 100_000, more); // succeeds: local0 holds it
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("local1"));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("local0"));
        var (dirty, _, _) = v.GetDirtyMap("local1");
        CollectionAssert.Contains(dirty.ToList(), new Location(id, 100_000 / v.BlockSize), "the failed facet's dirty map names what it missed");

        await v.WriteAsync(id, 300_000, Bytes(10, 3));
        int writesBefore = fx.Faults["local1"].WriteCount;
        await v.WriteAsync(id, 0, Bytes(10, 4));
        Assert.AreEqual(writesBefore, fx.Faults["local1"].WriteCount, "an offline facet gets no more writes");
        for (int i = 0; i < 4; i++)
        {
            byte[] got = new byte[200_000];
            Assert.AreEqual(200_000, await v.ReadAsync(id, 100_000, got));
            CollectionAssert.AreEqual(more, got);
        }
        v = await fx.ReopenAsync();
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("local1"), "the state survives a restart");
    }

    [TestMethod]
    public async Task Read_BadSectorOnOneLocal_ServedFromTheOther_AndRepaired()
    {
        await using var fx = new VolumeFixture(locals: 2);
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("data.bin");
        byte[] data = Bytes(256 * 1024, 9);
        await v.WriteAsync(id, 0, data);

        // Damage local1's copy under the volume, and make that range unreadable, as a bad sector is.
        string bad = Path.Combine(fx.FacetPath("local1"), "data.bin");
        var sector = new BadSector(fx.Faults["local1"], bad, 70_000, 5000);

        for (int i = 0; i < 4; i++)
        {
            byte[] got = new byte[100_000];
            Assert.AreEqual(100_000, await v.ReadAsync(id, 0, got));
            CollectionAssert.AreEqual(data[..100_000], got, "the reader gets good bytes");
        }
        Assert.IsFalse(sector.IsBad, "the failed facet was written back");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(bad), "read repair rewrote the bad bytes");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("local1"), "a repaired facet stays in service");
        Assert.IsTrue(fx.Faults["local1"].ReadCount > 0, "reads were balanced onto local1 too");
    }

    [TestMethod]
    public async Task Read_RepairFails_FacetTakenOffline()
    {
        await using var fx = new VolumeFixture(locals: 2);
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("x");
        await v.WriteAsync(id, 0, Bytes(1000, 1));
        fx.Faults["local1"].FailRead = (_, _, _) => true;
        fx.Faults["local1"].FailWrite = (_, _, _) => true;
        for (int i = 0; i < 3; i++)
        {
            byte[] got = new byte[1000];
            await v.ReadAsync(id, 0, got);
        }
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("local1"));
    }

    [TestMethod]
    public async Task ConcurrentWritersAndReaders_OverlappingRanges_FinalBytesMatchQueueOrderOnEveryCopy()
    {
        await using var fx = new VolumeFixture(locals: 2, remotes: 1, blockSize: 16 * 1024, queue: new QueueOptions { MemoryLimit = 1 << 20 });
        MirrorVolume v = await fx.OpenAsync();
        const int size = 1 << 20;
        long id = await v.CreateFileAsync("shared.bin");
        await v.SetLengthAsync(id, size);
        using var stop = new CancellationTokenSource();
        int writes = 0;
        var writers = Enumerable.Range(1, 8).Select(w => Task.Run(async () =>
        {
            var rnd = new Random(w);
            for (int i = 0; i < 150; i++)
            {
                int length = rnd.Next(1, 64 * 1024);
                int offset = rnd.Next(0, size - length);
                byte[] b = new byte[length];
                Array.Fill(b, (byte)(w * 16 + i % 16));
                await v.WriteAsync(id, offset, b);
                Interlocked.Increment(ref writes);
            }
        })).ToArray();
        var readers = Enumerable.Range(0, 3).Select(r => Task.Run(async () =>
        {
            var rnd = new Random(100 + r);
            byte[] buf = new byte[32 * 1024];
            while (!stop.IsCancelled())
            {
                int offset = rnd.Next(0, size - buf.Length);
                int n = await v.ReadAsync(id, offset, buf);
                Assert.AreEqual(buf.Length, n);
            }
        })).ToArray();
        await Task.WhenAll(writers);
        stop.Cancel();
        await Task.WhenAll(readers);

        // The model: the file's history replayed in queue order (the order the remote will apply).
        byte[] model = new byte[size];
        int replayed = 0;
        for (long after = 0; ;)
        {
            IReadOnlyList<Transaction> batch = v.ReadQueue("remote0", after, 500, 16 << 20);
            if (batch.Count == 0)
            {
                break;
            }
            foreach (Transaction t in batch.Where(t => t.Kind == TransactionKind.Write && t.FileId == id))
            {
                t.Data.Span.CopyTo(model.AsSpan((int)t.Offset));
                replayed++;
            }
            after = batch[^1].Seq;
        }
        Assert.AreEqual(8 * 150, writes);
        Assert.AreEqual(writes, replayed, "every write is in the queue");
        CollectionAssert.AreEqual(model, await ReadAllAsync(v, id, size), "the volume's bytes equal the queue-order model");
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(fx.FacetPath("local0"), "shared.bin")));
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(fx.FacetPath("local1"), "shared.bin")));
    }

    [TestMethod]
    public async Task Rename_OpenFileAndParentDirectory_WritesByIdFollow_IdsStableAcrossRestart()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1);
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("a");
        await v.CreateDirectoryAsync("a/b");
        long id = await v.CreateFileAsync("a/b/f.txt");
        await v.WriteAsync(id, 0, "hello "u8.ToArray());
        await v.RenameAsync("a/b/f.txt", "a/b/g.txt");
        await v.RenameAsync("a", "z");
        await v.WriteAsync(id, 6, "world"u8.ToArray()); // the handle still refers to the moved file
        Assert.AreEqual("z/b/g.txt", v.PathOf(id));
        Assert.AreEqual("hello world", File.ReadAllText(Path.Combine(fx.FacetPath("local0"), "z", "b", "g.txt")));
        Assert.IsNull(v.LookupId("a"));

        v = await fx.ReopenAsync();
        Assert.AreEqual(id, v.LookupId("z/b/g.txt"), "file ids survive a restart");
        IReadOnlyList<Transaction> q = v.ReadQueue("remote0", 0, 100, long.MaxValue);
        CollectionAssert.AreEqual(
            new[] { "CreateDirectory a", "CreateDirectory a/b", "CreateFile a/b/f.txt", "Write a/b/f.txt", "Rename a/b/f.txt", "Rename a", "Write z/b/g.txt" },
            q.Select(t => $"{t.Kind} {t.Path}").ToArray(), "the queue holds the history in order, with the paths in force at each step");
    }

    [TestMethod]
    public async Task FileTableSnapshotDamaged_NamesComeBackFromTheLocalFacet_NewFilesNeverReuseAnOldId()
    {
        // Ids live on outside the table (dirty maps, queue records, remote images). A damaged snapshot used to be
        // read up to the damage in silence, and the next id counted on from the highest id that survived: a new file
        // could take the id of one deleted before, which a dirty map still named.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(locals: 1, remotes: 1) { Logs = recording };
        MirrorVolume v = await fx.OpenAsync();
        var ids = new List<long>();
        for (int i = 0; i < 5; i++)
        {
            long id = await v.CreateFileAsync($"f{i}");
            await v.WriteAsync(id, 0, Bytes(100, i));
            ids.Add(id);
        }
        await v.DeleteFileAsync("f4"); // the highest id given out is no longer in the tree
        await v.DisposeAsync();
        string snapshot = Path.Combine(fx.Options.StateDir, "files.snapshot");
        byte[] bytes = File.ReadAllBytes(snapshot);
        bytes[3] ^= 0x40; // the first record: the marker that keeps the next id
        File.WriteAllBytes(snapshot, bytes);

        v = await fx.OpenAsync();
        string log = string.Join("\n", recording.Messages);
        Assert.IsTrue(recording.Messages.Any(m => m.Contains("files.snapshot: damaged record at offset 0", StringComparison.Ordinal)), log);
        for (int i = 0; i < 4; i++)
        {
            Assert.IsNotNull(v.LookupId($"f{i}"), $"f{i} is known again\n{log}");
            CollectionAssert.AreEqual(Bytes(100, i), await ReadAllAsync(v, v.LookupId($"f{i}")!.Value, 100));
        }
        long fresh = await v.CreateFileAsync("new");
        Assert.IsTrue(fresh > ids.Max(), $"a new file gets an id never given out before ({fresh} after {ids.Max()})");
    }

    [TestMethod]
    public async Task Write_SparseAtTenGiB_HoleReadsZeros()
    {
        await using var fx = new VolumeFixture();
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("sparse");
        long far = 10L << 30;
        await v.WriteAsync(id, far, Bytes(4096, 5));
        Assert.AreEqual(far + 4096, (await v.StatAsync("sparse")).Length);
        byte[] hole = Bytes(8192, 6);
        Assert.AreEqual(8192, await v.ReadAsync(id, 5L << 30, hole));
        Assert.IsTrue(hole.All(b => b == 0));
        byte[] tail = new byte[4096];
        Assert.AreEqual(4096, await v.ReadAsync(id, far, tail));
        CollectionAssert.AreEqual(Bytes(4096, 5), tail);
        await v.SetLengthAsync(id, 100);
        Assert.AreEqual(100, (await v.StatAsync("sparse")).Length);
    }

    [TestMethod]
    public async Task Namespace_BadRequests_GetTheirErrors()
    {
        await using var fx = new VolumeFixture();
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        await v.CreateFileAsync("d/f");
        async Task Expect(MirrorError error, Func<Task> call)
        {
            var e = await Assert.ThrowsExactlyAsync<MirrorException>(call);
            Assert.AreEqual(error, e.Error, e.Message);
        }
        await Expect(MirrorError.Exists, async () => await v.CreateFileAsync("d/f"));
        await Expect(MirrorError.NotEmpty, async () => await v.DeleteDirectoryAsync("d"));
        await Expect(MirrorError.InvalidArgument, async () => await v.RenameAsync("d", "d/inside"));
        await Expect(MirrorError.InvalidPath, async () => await v.CreateFileAsync("../escape"));
        await Expect(MirrorError.InvalidPath, async () => await v.CreateFileAsync("a//b"));
        await Expect(MirrorError.NotFound, async () => await v.CreateFileAsync("nope/f"));
        await Expect(MirrorError.NotDirectory, async () => await v.CreateFileAsync("d/f/g"));
        await Expect(MirrorError.IsDirectory, async () => await v.DeleteFileAsync("d"));
        await Expect(MirrorError.NotFound, async () => await v.StatAsync("missing"));
        CollectionAssert.AreEqual(new[] { "f" }, (await v.ListAsync("d")).Select(e => e.Name).ToArray());
    }

    [TestMethod]
    public async Task Open_SameStateDirTwice_SecondIsRefusedNamingTheVolume()
    {
        await using var fx = new VolumeFixture();
        await fx.OpenAsync();
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await MirrorVolume.OpenAsync(fx.Options));
        StringAssert.Contains(e.Message, fx.Options.StateDir);
        StringAssert.Contains(e.Message, "in use");
    }

    [TestMethod]
    public async Task Overflow_Unsync_RemoteReleasedAndDirtyMapNamesWhatItMissed()
    {
        await using var fx = new VolumeFixture(remotes: 2, queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 2 << 20, SegmentSize = 1 << 20 });
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("big");
        var written = new HashSet<Location>();
        for (int i = 0; i < 40; i++)
        {
            await v.WriteAsync(id, i * 100_000L, Bytes(100_000, i));
            for (long b = i * 100_000L / v.BlockSize; b <= (i * 100_000L + 99_999) / v.BlockSize; b++)
            {
                written.Add(new Location(id, b));
            }
        }
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"));
        var (dirty, _, ns) = v.GetDirtyMap("remote0");
        var queuedForNone = written.Except(dirty).ToList();
        Assert.AreEqual(0, queuedForNone.Count, $"every written block is in the dirty map, missing {queuedForNone.FirstOrDefault()}");
        Assert.IsTrue(ns, "the namespace changes it missed are marked too");
        Assert.IsTrue(v.GetStatus().QueueDiskBytes <= 2 << 20, "the queue stays within queue.diskLimit");
    }

    [TestMethod]
    public async Task Overflow_Block_WriterWaitsThenFailsClearly_LocalUntouched()
    {
        await using var fx = new VolumeFixture(remotes: 1, queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 1 << 20, SegmentSize = 1 << 20 },
            overflow: OverflowPolicy.Block, overflowTimeout: TimeSpan.FromMilliseconds(500));
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        int i = 0;
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () =>
        {
            for (; i < 100; i++)
            {
                await v.WriteAsync(id, i * 100_000L, Bytes(100_000, i));
            }
        });
        Assert.AreEqual(MirrorError.NoSpace, e.Error);
        StringAssert.Contains(e.Message, "queue.diskLimit");
        StringAssert.Contains(e.Message, "remote0");
        Assert.AreEqual(i * 100_000L, (await v.StatAsync("f")).Length, "the refused write never reached the local facet");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"), "block keeps the facet Synchronised: the queue holds everything acknowledged");
        Assert.AreEqual(i + 1, v.GetQueueCursor("remote0")!.Count, "create + every acknowledged write are queued");
    }

    [TestMethod]
    public async Task Sync_ConcurrentCallers_AllReturn()
    {
        await using var fx = new VolumeFixture(locals: 2, remotes: 1);
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await Task.WhenAll(Enumerable.Range(0, 16).Select(async i =>
        {
            await v.WriteAsync(id, i * 4096L, Bytes(4096, i));
            await v.SyncAsync();
        }));
        Assert.AreEqual(16 * 4096, (await v.StatAsync("f")).Length);
    }
}

internal static class CancellationExtensions
{
    public static bool IsCancelled(this CancellationTokenSource cts) => cts.IsCancellationRequested;
}
