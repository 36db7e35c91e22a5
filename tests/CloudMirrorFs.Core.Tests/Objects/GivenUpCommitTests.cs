using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// A commit that fails to land is given up: the facet goes back to its last landed image at its next probe, and the
/// commit after reuses the given-up commit's number, so its keys, with other bytes. Reads meanwhile must neither be
/// refused (a volume whose local disk died reads through the remote) nor mix the two.
/// </summary>
[TestClass]
public sealed class GivenUpCommitTests
{
    private const int Block = 64 * 1024;
    private const int Blocks = ObjectStoreFacet.UploadWindow + 1; // one more block than a read fetches at once
    private TempDir _dir = null!;

    [TestInitialize]
    public void SetUp() => _dir = new TempDir("given-up");

    [TestCleanup]
    public void TearDown() => _dir.Dispose();

    [TestMethod]
    public async Task AFacetWhoseCommitFailed_StillAnswersReads_BeforeItIsProbed()
    {
        var (store, facet, f, model) = await LandedFileAsync();
        await using ObjectStoreFacet _ = facet;
        byte[] given = await GiveUpAnExtentAsync(store, facet, f, Block + 100, 1000, seed: 2);

        byte[] got = new byte[Block];
        Assert.AreEqual(Block, await facet.ReadAsync(f, Block, got, default), "read, not refused");
        given.CopyTo(model, Block + 100);
        CollectionAssert.AreEqual(model[Block..(2 * Block)], got, "the landed image with the changes since, as between any two commits");
        Assert.IsNotNull(await facet.StatAsync(f.Path, default));
        await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.WriteAsync(f, 0, new byte[10], default), "changes are still refused until the probe");
    }

    [TestMethod]
    public async Task AReadUnderWay_WhenTheFacetGoesBack_NeverLaysTheNextCommitsBytesOutByTheGivenUpExtents()
    {
        var (store, facet, f, model) = await LandedFileAsync();
        await using ObjectStoreFacet _ = facet;
        long last = (Blocks - 1) * (long)Block;
        byte[] given = await GiveUpAnExtentAsync(store, facet, f, last + 100, 1000, seed: 2);

        // A read of the whole file takes its keys (the last block's extent is the given-up commit's), and waits on the
        // first blocks' objects; the last block waits for a free slot behind them.
        store.HoldGets = k => k.StartsWith("data/", StringComparison.Ordinal);
        byte[] got = new byte[Blocks * Block];
        ValueTask<int> read = facet.ReadAsync(f, 0, got, default);
        await store.Waiting.Task.WaitAsync(TimeSpan.FromSeconds(10));

        // The probe takes the facet back; the next commit, numbered as the given-up one, writes elsewhere in the block.
        store.HoldGets = null;
        await facet.OpenAsync(default);
        byte[] other = Bytes(3000, 3);
        await facet.WriteAsync(f, last + 5000, other, default);
        await facet.CommitAsync(3, default);
        store.Release();

        Assert.AreEqual(got.Length, await read);
        byte[] before = (byte[])model.Clone();
        given.CopyTo(before, last + 100);
        other.CopyTo(model, last + 5000);
        Assert.IsTrue(got.AsSpan().SequenceEqual(model) || got.AsSpan().SequenceEqual(before),
            "the file as it was when the read began, or as it is now; not the new extent's bytes at the given-up extent's place");
    }

    /// <summary>A facet over a store that can hold reads and drop writes, holding one file of whole blocks, landed.</summary>
    private async Task<(HoldingStore Store, ObjectStoreFacet Facet, FileRef File, byte[] Model)> LandedFileAsync()
    {
        var store = new HoldingStore(new FolderObjectStore(Path.Combine(_dir.Path, "bucket")));
        var facet = new ObjectStoreFacet("obj", "folder", store, Block, "test");
        await facet.OpenAsync(default);
        var f = new FileRef(1, "f");
        await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
        byte[] model = Bytes(Blocks * Block, 1);
        await facet.WriteAsync(f, 0, model, default);
        await facet.CommitAsync(1, default);
        return (store, facet, f, model);
    }

    /// <summary>Writes into part of a block, and has the commit that carries it fail to land; returns the bytes written.</summary>
    private static async Task<byte[]> GiveUpAnExtentAsync(HoldingStore store, ObjectStoreFacet facet, FileRef f, long offset, int length, int seed)
    {
        byte[] data = Bytes(length, seed);
        await facet.WriteAsync(f, offset, data, default);
        store.FailPuts = k => k.StartsWith("commits/", StringComparison.Ordinal);
        await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.CommitAsync(2, default));
        store.FailPuts = null;
        return data;
    }

    private static byte[] Bytes(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }
}
