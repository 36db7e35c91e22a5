using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Facets;

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
    public async Task Open_OtherBlockSize_RefusedNamingBoth()
    {
        await Facet.CommitAsync(0, default);
        await using var other = new ObjectStoreFacet("obj", "folder", new FolderObjectStore(Bucket), Block * 2, "test");
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await other.OpenAsync(default));
        StringAssert.Contains(e.Message, $"{Block}");
        StringAssert.Contains(e.Message, $"{Block * 2}");
    }
}

/// <summary>Reads from an object-store facet on a long link: whole blocks cached, the next ones fetched ahead.</summary>
[TestClass]
public sealed class ObjectStoreReadAheadTests
{
    [TestMethod]
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
