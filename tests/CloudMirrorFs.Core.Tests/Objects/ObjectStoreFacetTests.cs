using System.Text.Json;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Facets;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>The facet contract on an object store in a folder, plus what only an image-publishing facet does.</summary>
[TestClass]
public sealed class ObjectStoreFacetTests : FacetContractTests
{
    private const int Block = 64 * 1024;

    private string Bucket => Path.Combine(Scratch, "bucket");

    protected override IFacet CreateFacet(string scratchDir)
        => new ObjectStoreFacet("obj", "folder", new FolderObjectStore(Path.Combine(scratchDir, "bucket")), Block, "test");

    private ObjectStoreFacet Reopened() => new("obj", "folder", new FolderObjectStore(Bucket), Block, "test");

    [TestMethod]
    public async Task Commit_ThenReopen_SameTree_AndUncommittedChangesAreNotTheImage()
    {
        await Facet.CreateDirectoryAsync("d", (UnixFileMode)0b111_101_101, default);
        var f = new FileRef(7, "d/f");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        byte[] data = Bytes(300_000, 1);
        await Facet.WriteAsync(f, 0, data, default);
        await Facet.CommitAsync(10, default);
        await Facet.WriteAsync(f, 0, Bytes(10, 2), default); // not committed

        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        Assert.AreEqual(10, again.CommittedQueueSeq);
        byte[] got = new byte[400_000];
        Assert.AreEqual(300_000, await again.ReadAsync(f, 0, got, default));
        CollectionAssert.AreEqual(data, got[..300_000], "the image is the last commit, without the later write");
    }

    [TestMethod]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task RootMode_KeptThroughReopenAndCheckpoint_AndRestored()
    {
        // chmod of the drive's root used to be dropped by an object store (its manifest has no root node): a restore
        // gave 0755 whatever the volume had.
        var owner = (UnixFileMode)0b111_000_000;
        await Facet.CreateDirectoryAsync("ro", (UnixFileMode)0b101_101_101, default);
        await Facet.CreateSymlinkAsync(new FileRef(3, "ro/l"), "target", default);
        await Facet.SetAttributesAsync("", new AttributeChange { Mode = owner }, default);
        await Facet.CommitAsync(1, default);
        Assert.AreEqual(owner, (await Facet.StatAsync("", default))!.Value.Mode & (UnixFileMode)0b111_111_111);

        // Past a checkpoint (one per 64 commits): a reopen starts from it, not from the commit that set the mode.
        var f = new FileRef(9, "f");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        for (int i = 0; i < 70; i++)
        {
            await Facet.WriteAsync(f, 0, Bytes(10, i), default);
            await Facet.CommitAsync(2 + i, default);
        }
        Assert.IsTrue(Directory.EnumerateFiles(Path.Combine(Bucket, "checkpoints")).Any(), "a checkpoint was written");
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        Assert.AreEqual(owner, (await again.StatAsync("", default))!.Value.Mode & (UnixFileMode)0b111_111_111);

        string target = Path.Combine(Scratch, "restored");
        await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        Assert.AreEqual(owner, File.GetUnixFileMode(target));
        Assert.AreEqual((UnixFileMode)0b101_101_101, File.GetUnixFileMode(Path.Combine(target, "ro")));
        Assert.AreEqual("target", new FileInfo(Path.Combine(target, "ro", "l")).LinkTarget, "the link inside the read-only folder is there");
    }

    [TestMethod]
    public async Task Read_AfterTheStoreFailedOnce_ReadsTheBlock_TheFailureIsNotKept()
    {
        var f = new FileRef(40, "f");
        byte[] data = Bytes(3 * Block, 40);
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, data, default);
        await Facet.CommitAsync(1, default);

        // A store that fails synchronously, as a folder on a disk that stops answering does, then answers again.
        var flaky = new FlakyStore(new FolderObjectStore(Bucket));
        await using var again = new ObjectStoreFacet("obj", "folder", flaky, Block, "test");
        await again.OpenAsync(default);
        flaky.FailDataGets = true;
        byte[] got = new byte[data.Length];
        // One block only: a read that fetched several would leave fetches of the others running past the recovery.
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await again.ReadAsync(f, 0, got.AsMemory(0, 1000), default));
        StringAssert.Contains(e.Message, "injected");
        flaky.FailDataGets = false;
        Assert.AreEqual(data.Length, await again.ReadAsync(f, 0, got, default), "the disk answers again: so does the facet");
        CollectionAssert.AreEqual(data, got);
    }

    /// <summary>Fails every get of a block object, synchronously, while <see cref="FailDataGets"/> is set.</summary>
    private sealed class FlakyStore(IObjectStore inner) : IObjectStore
    {
        public volatile bool FailDataGets;

        public string Description => inner.Description;

        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);

        public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct) => inner.PutAsync(key, data, ct);

        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct)
            => FailDataGets && key.StartsWith("data/", StringComparison.Ordinal)
                ? throw new MirrorException(MirrorError.IoError, $"{key}: injected: the disk does not answer")
                : inner.GetAsync(key, offset, length, ct);

        public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public ValueTask DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.DeleteManyAsync(keys, ct);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    /// <summary>Forwards everything to a folder store and records the puts and syncs, in order.</summary>
    private sealed class RecordingStore(FolderObjectStore inner) : IObjectStore
    {
        public System.Collections.Concurrent.ConcurrentQueue<string> Events { get; } = new();

        public string Description => inner.Description;

        public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken ct) => inner.EnsureReadyAsync(createIfMissing, ct);

        public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            Events.Enqueue("put " + key);
            return inner.PutAsync(key, data, ct);
        }

        public async ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> data, CancellationToken ct)
        {
            await inner.PutUnsyncedAsync(key, data, ct);
            Events.Enqueue("unsynced " + key);
        }

        public async ValueTask SyncAsync(CancellationToken ct)
        {
            Events.Enqueue("sync");
            await inner.SyncAsync(ct);
        }

        public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken ct) => inner.GetAsync(key, offset, length, ct);

        public IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, CancellationToken ct) => inner.ListAsync(prefix, ct);

        public ValueTask DeleteAsync(string key, CancellationToken ct) => inner.DeleteAsync(key, ct);

        public ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken ct) => inner.DeleteManyAsync(keys, ct);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)]
    public async Task BlockObjects_GoUpUnsynced_AndTheStoreIsSyncedAfterThemBeforeTheCommitObjectNamesThem(bool throughTheCodec)
    {
        // A folder store flushes a folder once per commit instead of once per block object: the objects may go up
        // unsynced only because the sync comes after the last of them and before the commit that names them. The
        // codec (checksums, compression, encryption) sits between the facet and the store as it does in a volume.
        var store = new RecordingStore(new FolderObjectStore(Path.Combine(Scratch, "recorded")));
        IObjectStore top = throughTheCodec ? new CodecObjectStore(store, key: null, compress: true) : store;
        await using var facet = new ObjectStoreFacet("rec", "folder", top, Block, "test");
        await facet.OpenAsync(default);
        var f = new FileRef(60, "f");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        for (long commit = 1; commit <= 3; commit++)
        {
            await facet.WriteAsync(f, 0, Bytes(5 * Block, (int)commit), default);
            await facet.WriteAsync(f, (6 * Block) + 100, Bytes(300, (int)commit), default); // an extent
            await facet.CommitAsync(commit, default);
        }
        string[] events = [.. store.Events];
        for (long commit = 1; commit <= 3; commit++)
        {
            int named = Array.IndexOf(events, "put " + RemoteImage.CommitKey(commit));
            Assert.IsTrue(named >= 0, $"commit {commit} was put");
            string suffix = $".{commit:x16}";
            int[] uploads = [.. events.Select((e, i) => (e, i)).Where(x => x.e.StartsWith("unsynced data/", StringComparison.Ordinal) && x.e.EndsWith(suffix, StringComparison.Ordinal)).Select(x => x.i)];
            Assert.AreEqual(6, uploads.Length, $"commit {commit}: 5 blocks and 1 extent object went up unsynced: {string.Join(", ", events)}");
            Assert.IsTrue(events.Skip(uploads.Max()).Take(named - uploads.Max()).Contains("sync"),
                $"commit {commit}: a sync between its last block object and its commit object: {string.Join(", ", events)}");
        }
        Assert.IsFalse(events.Any(e => e.StartsWith("put data/", StringComparison.Ordinal)), "block objects never take the synced path (a flush each)");
    }

    [TestMethod]
    public async Task Writes_ToOneBlockWithinACommit_AreFoldedIntoOneUpload()
    {
        var f = new FileRef(8, "folded");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        for (int i = 0; i < 16; i++)
        {
            await Facet.WriteAsync(f, i * 4096L, Bytes(4096, i), default); // 16 writes, one 64 KiB block
        }
        var facet = (ObjectStoreFacet)Facet;
        long before = facet.ObjectsUploaded;
        await Facet.CommitAsync(16, default);
        Assert.AreEqual(2, facet.ObjectsUploaded - before, "one block object and one commit object");
    }

    [TestMethod]
    public async Task WriteKeeping_WholeBlocksAreKeptUntilTheirCommitLands_ThenLetGo_AndTheImageHoldsTheBytesWritten()
    {
        var f = new FileRef(41, "kept");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        byte[] lent = Bytes(3 * Block + 1000, 41); // three whole blocks, kept; the last 1000 bytes are copied
        byte[] asLent = (byte[])lent.Clone();
        byte[] expected = (byte[])lent.Clone();
        var owner = new CountingOwner();
        await Facet.WriteKeepingAsync(f, 0, lent, owner, default);
        Assert.AreEqual(3, owner.Held, "each whole block holds the lent bytes instead of a copy");

        // A later write into the second block, before the commit: that block takes a copy of its own and lets go.
        byte[] patch = Bytes(100, 42);
        await Facet.WriteAsync(f, Block + 10, patch, default);
        patch.CopyTo(expected, Block + 10);
        Assert.AreEqual(2, owner.Held);
        CollectionAssert.AreEqual(asLent, lent, "the lent bytes are never written to");
        byte[] got = new byte[expected.Length];
        Assert.AreEqual(expected.Length, await Facet.ReadAsync(f, 0, got, default));
        CollectionAssert.AreEqual(expected, got, "reads before the commit see the kept blocks and the patch");

        await Facet.CommitAsync(1, default);
        Assert.AreEqual(0, owner.Held, "once the commit has landed, every hold is given back");
        Assert.AreEqual(3, owner.Retains);

        // The owner may now reuse its buffer: the image does not change with it.
        Array.Fill(lent, (byte)0xEE);
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        Array.Clear(got);
        Assert.AreEqual(expected.Length, await again.ReadAsync(f, 0, got, default));
        CollectionAssert.AreEqual(expected, got);
    }

    [TestMethod]
    public async Task WriteKeeping_BlocksCutOffOrDeletedBeforeTheCommit_LetGoAtOnce()
    {
        var f = new FileRef(43, "cut");
        var g = new FileRef(44, "gone");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.CreateFileAsync(g, (UnixFileMode)0b110_100_100, default);
        var owner = new CountingOwner();
        byte[] data = Bytes(4 * Block, 43);
        await Facet.WriteKeepingAsync(f, 0, data, owner, default);
        await Facet.WriteKeepingAsync(g, 0, Bytes(2 * Block, 44), owner, default);
        Assert.AreEqual(6, owner.Held);

        await Facet.SetLengthAsync(f, Block + 5, default); // block 1 is cut inside (a copy of its own), 2 and 3 go
        Assert.AreEqual(3, owner.Held);
        await Facet.DeleteFileAsync(g, default);
        Assert.AreEqual(1, owner.Held);
        await Facet.CommitAsync(1, default);
        Assert.AreEqual(0, owner.Held);

        byte[] got = new byte[Block + 5];
        Assert.AreEqual(Block + 5, await Facet.ReadAsync(f, 0, got, default));
        CollectionAssert.AreEqual(data[..(Block + 5)], got);
    }

    /// <summary>An owner of lent bytes that counts the holds taken on them and given back.</summary>
    private sealed class CountingOwner : IBufferOwner
    {
        private int _held;
        private int _retains;

        public int Held => Volatile.Read(ref _held);

        public int Retains => Volatile.Read(ref _retains);

        public void Retain()
        {
            Interlocked.Increment(ref _retains);
            Interlocked.Increment(ref _held);
        }

        public void Release()
        {
            Assert.IsTrue(Interlocked.Decrement(ref _held) >= 0, "a hold was given back twice");
        }
    }

    [TestMethod]
    public async Task ZeroRange_UploadsNothing_FreesBlocksZeroedWhole_AndTheImageReadsZerosAfterReopenAndRestore()
    {
        var f = new FileRef(50, "img");
        byte[] data = Bytes(8 * Block, 50);
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, data, default);
        await Facet.CommitAsync(1, default);
        string[] before = [.. Directory.EnumerateFiles(Path.Combine(Bucket, "data"), "*", SearchOption.AllDirectories)];

        // A hole from the middle of block 1 to the middle of block 5 (blocks 2 to 4 whole), and a few bytes of block 7.
        await Facet.ZeroRangeAsync(f, Block + 100, 4 * Block, deallocate: true, default);
        await Facet.ZeroRangeAsync(f, 7 * Block + 10, 20, deallocate: false, default);
        Array.Clear(data, Block + 100, 4 * Block);
        Array.Clear(data, 7 * Block + 10, 20);
        await Facet.CommitAsync(2, default);

        string[] after = [.. Directory.EnumerateFiles(Path.Combine(Bucket, "data"), "*", SearchOption.AllDirectories)];
        CollectionAssert.IsSubsetOf(after, before, "a zeroed range uploads no object: the zeros are extents that name none");
        string journal = await File.ReadAllTextAsync(Directory.EnumerateFiles(Path.Combine(Bucket, "commits")).Order().Last());
        foreach (int b in new[] { 2, 3, 4 })
        {
            StringAssert.Contains(journal, $"data/{50:x16}/{b:x16}.{1:x16}", $"block {b}, zeroed whole, frees its object");
        }
        Assert.AreEqual(8L * Block, (await Facet.StatAsync("img", default))!.Value.Length, "the length is kept");

        await using (ObjectStoreFacet again = Reopened())
        {
            await again.OpenAsync(default);
            byte[] got = new byte[data.Length];
            Assert.AreEqual(data.Length, await again.ReadAsync(f, 0, got, default));
            CollectionAssert.AreEqual(data, got, "the committed image after a reopen");
        }
        string target = Path.Combine(Scratch, "restored");
        await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        CollectionAssert.AreEqual(data, await File.ReadAllBytesAsync(Path.Combine(target, "img")), "the restored file");
        long allocated = Allocation.BytesOf(Path.Combine(target, "img"));
        Assert.IsTrue(allocated <= (5 * Block) + (16 << 10), $"the restore leaves blocks 2 to 4 a hole: {allocated} bytes allocated for 5 blocks of data");
    }

    [TestMethod]
    public async Task BlockObjects_AreNeverOverwritten()
    {
        var f = new FileRef(9, "x");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, Bytes(Block, 1), default);
        await Facet.CommitAsync(1, default);
        var first = Directory.GetFiles(Path.Combine(Bucket, "data"), "*", SearchOption.AllDirectories).ToDictionary(p => p, File.ReadAllBytes);
        await Facet.WriteAsync(f, 0, Bytes(Block, 2), default);
        await Facet.CommitAsync(2, default);
        foreach (var (path, bytes) in first)
        {
            CollectionAssert.AreEqual(bytes, File.ReadAllBytes(path), $"{path} was overwritten");
        }
    }

    [TestMethod]
    public async Task Truncate_ThenExtend_ReadsZerosNotOldBytes_AfterCommitAndReopen()
    {
        var f = new FileRef(10, "t");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, Bytes(100_000, 3), default);
        await Facet.CommitAsync(1, default);
        await Facet.SetLengthAsync(f, 10, default);
        await Facet.SetLengthAsync(f, 100_000, default);
        await Facet.CommitAsync(2, default);
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        byte[] got = new byte[100_000];
        Assert.AreEqual(100_000, await again.ReadAsync(f, 0, got, default));
        CollectionAssert.AreEqual(Bytes(100_000, 3)[..10], got[..10]);
        Assert.IsTrue(got[10..].All(b => b == 0));
    }

    [TestMethod]
    public async Task Restore_CommittedImage_EqualsTheTree()
    {
        await Facet.CreateDirectoryAsync("a", (UnixFileMode)0b111_101_101, default);
        var f = new FileRef(11, "a/b.bin");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 0, Bytes(200_000, 4), default);
        await Facet.CreateFileAsync(new FileRef(12, "empty"), (UnixFileMode)0b110_100_100, default);
        await Facet.CommitAsync(5, default);
        string target = Path.Combine(Scratch, "restored");
        RemoteRestore.Result r = await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        Assert.AreEqual(2, r.Files);
        CollectionAssert.AreEqual(Bytes(200_000, 4), File.ReadAllBytes(Path.Combine(target, "a", "b.bin")));
        Assert.AreEqual(0, new FileInfo(Path.Combine(target, "empty")).Length);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(() => RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default));
        Assert.AreEqual(MirrorError.NotEmpty, e.Error);
    }

    [TestMethod]
    public async Task ManyCommits_CheckpointAndCollection_KeepTheImage()
    {
        var f = new FileRef(13, "c");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        for (int i = 0; i < 150; i++)
        {
            await Facet.WriteAsync(f, (i % 4) * (long)Block, Bytes(Block, i), default);
            await Facet.CommitAsync(i + 1, default);
        }
        Assert.IsTrue(Directory.GetFiles(Path.Combine(Bucket, "checkpoints")).Length >= 1);
        Assert.IsTrue(Directory.GetFiles(Path.Combine(Bucket, "commits")).Length < 70, "journals before the checkpoint were collected");
        Assert.IsTrue(Directory.GetFiles(Path.Combine(Bucket, "data"), "*", SearchOption.AllDirectories).Length < 100, "superseded blocks were collected");
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        for (int k = 0; k < 4; k++)
        {
            int last = Enumerable.Range(0, 150).Last(i => i % 4 == k);
            byte[] got = new byte[Block];
            await again.ReadAsync(f, k * (long)Block, got, default);
            CollectionAssert.AreEqual(Bytes(Block, last), got, $"block {k}");
        }
    }

    [TestMethod]
    public async Task LargeTree_TrickleOfSmallCommits_CheckpointsSpacedByJournalSize_ImageKept()
    {
        // A checkpoint is the whole tree. On a large remote one every 64 commits (as before) rewrote megabytes for a
        // few hundred bytes of journal each time; now the next is due when the journals reach a quarter of its size.
        for (int i = 0; i < 3000; i++)
        {
            await Facet.CreateFileAsync(new FileRef(1000 + i, $"file-with-a-longish-name-{i:D5}"), (UnixFileMode)0b110_100_100, default);
        }
        var f = new FileRef(1000, "file-with-a-longish-name-00000");
        for (int i = 0; i < 300; i++)
        {
            await Facet.WriteAsync(f, 0, Bytes(16, i), default);
            await Facet.CommitAsync(i + 1, default);
        }
        long[] checkpoints = [.. Directory.GetFiles(Path.Combine(Bucket, "checkpoints")).Select(p => RemoteImage.ParseNumber(Path.GetFileName(p))!.Value).Order()];
        Assert.AreEqual(64, checkpoints.Max(), $"the newest checkpoint: one at commit 64 (the first), none of the tree's size since ({string.Join(", ", checkpoints)})");
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        Assert.AreEqual(300, again.CommittedQueueSeq);
        byte[] got = new byte[16];
        await again.ReadAsync(f, 0, got, default);
        CollectionAssert.AreEqual(Bytes(16, 299), got, "the image after the journals since the checkpoint are read back");
        Assert.AreEqual(3000, (await again.ListAsync("", default)).Count);
    }

    [TestMethod]
    public async Task Open_OtherBlockSize_RefusedNamingBoth()
    {
        await Facet.CommitAsync(0, default);
        await using var other = new ObjectStoreFacet("obj", "folder", new FolderObjectStore(Bucket), Block * 2, "test");
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await other.OpenAsync(default));
        StringAssert.Contains(e.Message, $"{Block}");
        StringAssert.Contains(e.Message, $"{Block * 2}");
    }

    private int DescriptorFormat() => JsonDocument.Parse(File.ReadAllBytes(Path.Combine(Bucket, "volume.json"))).RootElement.GetProperty("Format").GetInt32();

    /// <summary>Turns the bucket into a remote an older cmfs created (its descriptor at <paramref name="format"/>) and opens it.</summary>
    private async Task<ObjectStoreFacet> OpenAsCreatedAtFormatAsync(int format)
    {
        string descriptor = Path.Combine(Bucket, "volume.json");
        File.WriteAllText(descriptor, File.ReadAllText(descriptor).Replace($"\"Format\":{VolumeDescriptor.NewestFormat}", $"\"Format\":{format}", StringComparison.Ordinal));
        Assert.AreEqual(format, DescriptorFormat());
        ObjectStoreFacet facet = Reopened();
        await facet.OpenAsync(default);
        return facet;
    }

    [TestMethod]
    public async Task Open_NewRemote_StartsAtTheNewestFormat_AndItsDescriptorIsNeverRewritten()
    {
        Assert.AreEqual(VolumeDescriptor.NewestFormat, DescriptorFormat(), "created at the newest format");
        NodeInfo root = (await Facet.StatAsync("", default))!.Value;
        Assert.IsTrue((DateTime.UtcNow - root.LastWriteUtc).Duration() < TimeSpan.FromMinutes(5), $"the root's time is the volume's creation, not {root.LastWriteUtc:o}");
        string descriptor = Path.Combine(Bucket, "volume.json");
        DateTime written = File.GetLastWriteTimeUtc(descriptor);
        byte[] before = File.ReadAllBytes(descriptor);
        var f = new FileRef(23, "f");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await Facet.WriteAsync(f, 100, Bytes(10, 1), default); // an extent
        await Facet.CreateSymlinkAsync(new FileRef(24, "l"), "f", default);
        await Facet.CommitAsync(1, default);
        CollectionAssert.AreEqual(before, File.ReadAllBytes(descriptor), "a link and an extent need no rewrite");
        Assert.AreEqual(written, File.GetLastWriteTimeUtc(descriptor));
    }

    [TestMethod]
    public async Task Symlink_OnARemoteAnOlderCmfsCreated_FirstCommitHoldingOne_RaisesTheDescriptorToFormat2_AndTheImageKeepsIt()
    {
        await using ObjectStoreFacet old = await OpenAsCreatedAtFormatAsync(VolumeDescriptor.BaseFormat);
        var f = new FileRef(20, "f");
        await old.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        await old.CommitAsync(1, default);
        Assert.AreEqual(1, DescriptorFormat(), "a remote without links stays readable by older cmfs");
        await old.CreateSymlinkAsync(new FileRef(21, "l"), "../t", default);
        Assert.AreEqual(1, DescriptorFormat(), "nothing is raised before the link is committed");
        await old.CommitAsync(2, default);
        Assert.AreEqual(2, DescriptorFormat(), "an older cmfs now refuses the remote instead of dropping its links");
        await old.DeleteFileAsync(new FileRef(21, "l"), default);
        await old.CommitAsync(3, default);
        Assert.AreEqual(2, DescriptorFormat(), "never lowered");

        await old.CreateSymlinkAsync(new FileRef(22, "l2"), "/etc", default);
        await old.CommitAsync(4, default);
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        Assert.AreEqual("/etc", await again.ReadLinkAsync("l2", default));
        NodeInfo info = (await again.StatAsync("l2", default))!.Value;
        Assert.AreEqual((NodeKind.Symlink, 4L, 22L), (info.Kind, info.Length, info.FileId));
        Assert.IsNull(await again.StatAsync("l", default));
    }

    [TestMethod]
    public async Task Symlink_SurvivesACheckpoint_AndJournalsCollectedBeforeIt()
    {
        await Facet.CreateDirectoryAsync("d", (UnixFileMode)0b111_101_101, default);
        await Facet.CreateSymlinkAsync(new FileRef(30, "d/l"), "../f", default);
        var f = new FileRef(31, "f");
        await Facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        for (int i = 0; i < 70; i++)
        {
            await Facet.WriteAsync(f, 0, Bytes(100, i), default);
            await Facet.CommitAsync(i + 1, default);
        }
        string checkpoint = Directory.GetFiles(Path.Combine(Bucket, "checkpoints")).Single();
        StringAssert.Contains(File.ReadAllText(checkpoint), "\"Target\":\"../f\"");
        Assert.IsFalse(File.Exists(Path.Combine(Bucket, "commits", $"{1:D20}.json")), "the commit that made the link is gone: only the checkpoint holds it");
        await using ObjectStoreFacet again = Reopened();
        await again.OpenAsync(default);
        Assert.AreEqual("../f", await again.ReadLinkAsync("d/l", default));
        string target = Path.Combine(Scratch, "restored");
        RemoteRestore.Result r = await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        Assert.AreEqual(1, r.Symlinks);
        Assert.AreEqual("../f", new FileInfo(Path.Combine(target, "d", "l")).LinkTarget);
    }

    [TestMethod]
    public async Task Open_DescriptorFormatNewerThanThisBuild_RefusedAskingForAnUpgrade_Symlink()
    {
        await Facet.CommitAsync(0, default);
        string descriptor = Path.Combine(Bucket, "volume.json");
        File.WriteAllText(descriptor, File.ReadAllText(descriptor).Replace($"\"Format\":{VolumeDescriptor.NewestFormat}", $"\"Format\":{VolumeDescriptor.NewestFormat + 1}", StringComparison.Ordinal));
        await using ObjectStoreFacet again = Reopened();
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await again.OpenAsync(default));
        Assert.AreEqual(MirrorError.NotSupported, e.Error);
        StringAssert.Contains(e.Message, "upgrade cmfs");
    }

    [TestMethod]
    [DataRow("l/x", DisplayName = "a link under a link")]
    [DataRow("../x", DisplayName = "a path out of the volume")]
    public async Task Restore_DamagedImage_WithALinkThatWouldLeadOut_RefusedBeforeWritingOutside_Symlink(string evil)
    {
        // An image no facet writes (the facet refuses both), as a damaged or forged remote could hold.
        using var outside = new TempDir("outside");
        await Facet.CommitAsync(0, default); // the descriptor
        var record = new CommitRecord(1, 0, 1, DateTime.UtcNow,
        [
            new JournalOp { Op = "symlink", Path = "l", Id = 1, Target = outside.Path },
            new JournalOp { Op = "symlink", Path = evil, Id = 2, Target = "evil" },
        ], []);
        Directory.CreateDirectory(Path.Combine(Bucket, "commits"));
        File.WriteAllBytes(Path.Combine(Bucket, "commits", $"{1:D20}.json"), JsonSerializer.SerializeToUtf8Bytes(record));
        string target = Path.Combine(Scratch, "restored", "tree");
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(() => RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default));
        Assert.AreEqual(MirrorError.IoError, e.Error);
        StringAssert.Contains(e.Message, "damaged");
        Assert.AreEqual(0, Directory.GetFileSystemEntries(outside.Path).Length, "nothing was made through the first link");
        Assert.IsFalse(File.Exists(Path.Combine(Scratch, "restored", "x")) || new FileInfo(Path.Combine(Scratch, "restored", "x")).LinkTarget is not null);
    }

    [TestMethod]
    public async Task DamagedCommit_EndsTheImage_AndALaterStaleCommitIsNeverSplicedOntoTheRewrite()
    {
        // A store that kept part of an interrupted upload (s3rver does, when the writer is killed mid-put): the
        // commit object is there but holds no CloudMirrorFs header.
        string bucket = Path.Combine(Scratch, "coded");
        ObjectStoreFacet Coded() => new("obj", "folder", new CodecObjectStore(new FolderObjectStore(bucket), null, compress: true), Block, "test");
        var f = new FileRef(20, "g");
        await using (ObjectStoreFacet first = Coded())
        {
            await first.OpenAsync(default);
            await first.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
            for (int g = 1; g <= 4; g++)
            {
                await first.WriteAsync(f, 0, Bytes(Block, g), default);
                await first.CommitAsync(g, default);
            }
        }
        File.WriteAllBytes(Path.Combine(bucket, RemoteImage.CommitKey(3)), []);
        string[] BlockObjects() => [.. Directory.GetFiles(Path.Combine(bucket, "data"), "*", SearchOption.AllDirectories).Select(Path.GetFileName).Order()!];
        Assert.IsTrue(BlockObjects().Any(k => k.EndsWith(".0000000000000004", StringComparison.Ordinal)));

        byte[] got = new byte[Block];
        await using (ObjectStoreFacet second = Coded())
        {
            await second.OpenAsync(default);
            Assert.AreEqual(2, second.CommittedImage, "the image ends before the damaged commit");
            await second.ReadAsync(f, 0, got, default);
            CollectionAssert.AreEqual(Bytes(Block, 2), got);
            Assert.IsFalse(File.Exists(Path.Combine(bucket, RemoteImage.CommitKey(4))), "the commit past the break was dropped");
            Assert.IsFalse(BlockObjects().Any(k => k.EndsWith(".0000000000000003", StringComparison.Ordinal) || k.EndsWith(".0000000000000004", StringComparison.Ordinal)),
                "block objects of commits that are not in the image were collected: " + string.Join(", ", BlockObjects()));
            Assert.IsTrue(BlockObjects().Any(k => k.EndsWith(".0000000000000002", StringComparison.Ordinal)), "the image's own block object stays");
            await second.WriteAsync(f, 0, Bytes(Block, 5), default);
            await second.CommitAsync(5, default);
            Assert.AreEqual(3, second.CommittedImage, "the damaged commit's number is written anew");
        }
        await using ObjectStoreFacet third = Coded();
        await third.OpenAsync(default);
        Assert.AreEqual(3, third.CommittedImage);
        await third.ReadAsync(f, 0, got, default);
        CollectionAssert.AreEqual(Bytes(Block, 5), got, "the image is the rewrite, with no old change spliced after it");
    }
}

/// <summary>Reads from an object-store facet on a long link: whole blocks cached, the next ones fetched ahead.</summary>
[TestClass]
public sealed class ObjectStoreReadAheadTests
{
    [TestMethod]
    [DoNotParallelize] // a timing bound: not measured while another test class loads the CPU
    public async Task SequentialRead_OverASlowLink_FetchesAheadAndReusesBlocks()
    {
        using var dir = new TempDir("ra");
        var link = new LinkModel(1) { RoundTrip = TimeSpan.FromMilliseconds(40) };
        const int block = 64 * 1024;
        await using var facet = new ObjectStoreFacet("r", "folder", new SimulatedLinkStore(new FolderObjectStore(dir.Path), link), block, "v");
        await facet.OpenAsync(default);
        var f = new FileRef(1, "seq");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        byte[] data = new byte[16 * block];
        new Random(3).NextBytes(data);
        await facet.WriteAsync(f, 0, data, default);
        await facet.CommitAsync(1, default);

        long callsBefore = link.Calls;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        byte[] got = new byte[data.Length];
        for (int off = 0; off < data.Length; off += 16 * 1024)
        {
            await facet.ReadAsync(f, off, got.AsMemory(off, 16 * 1024), default);
        }
        CollectionAssert.AreEqual(data, got);
        long calls = link.Calls - callsBefore;
        Assert.IsTrue(calls <= 17, $"{calls} gets for 64 reads of 16 blocks: each block is fetched once");
        Assert.IsTrue(sw.Elapsed < TimeSpan.FromMilliseconds(16 * 40), $"{sw.ElapsedMilliseconds} ms: read-ahead overlaps the round trips");
    }
}
