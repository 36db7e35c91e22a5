using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Tests.Support;

namespace CloudMirrorFs.Tests.Objects;

/// <summary>
/// Superseded objects (old block versions, extents laid over since) cost a remote's owner space and money: with
/// <c>retention</c> zero they must go, whether the writer stops after a burst, or the daemon restarts before its next
/// checkpoint.
/// </summary>
[TestClass]
public sealed class GarbageTests
{
    private const int Block = 64 * 1024;
    private const int Blocks = 8;
    private TempDir _dir = null!;

    private string Bucket => Path.Combine(_dir.Path, "bucket");

    [TestInitialize]
    public void SetUp() => _dir = new TempDir("garbage");

    [TestCleanup]
    public void TearDown() => _dir.Dispose();

    [TestMethod]
    public async Task SupersededBlocks_AreCollected_WhenTheWriterStops()
    {
        byte[] model;
        await using (ObjectStoreFacet facet = await OpenAsync())
        {
            model = await OverwriteAsync(facet, rounds: 6, seed: 1);
            Assert.AreEqual(7 * Blocks, DataObjects(), "every version is on the store before any collection");

            await facet.CollectAsync(default); // what the replicator does when its queue is empty
            Assert.AreEqual(Blocks, DataObjects(), "only the blocks of the image are left");
        }
        await AssertImageAsync(model);
    }

    [TestMethod]
    public async Task SupersededBlocks_AreCollected_AfterTheDaemonRestarts()
    {
        await using (ObjectStoreFacet facet = await OpenAsync())
        {
            await OverwriteAsync(facet, rounds: 6, seed: 2);
        } // a stop before any checkpoint: what was superseded is known only from the journals
        Assert.AreEqual(7 * Blocks, DataObjects());

        byte[] model;
        await using (ObjectStoreFacet again = await OpenAsync())
        {
            model = await OverwriteAsync(again, rounds: 1, seed: 3, create: false);
            await again.CollectAsync(default);
            Assert.AreEqual(Blocks, DataObjects(), "the versions superseded before the restart are collected too");
        }
        await AssertImageAsync(model);
    }

    [TestMethod]
    public async Task SupersededBlocks_AreCollected_AfterARestartPastACheckpoint_WhenRetentionHeldThem()
    {
        // Within retention at the checkpoint, so the checkpoint itself must carry them: the journals that freed them
        // are behind it.
        await using (ObjectStoreFacet facet = await OpenAsync(TimeSpan.FromSeconds(1.5)))
        {
            await OverwriteAsync(facet, rounds: 3, seed: 4);
            for (int i = 0; i < 64; i++)
            {
                await facet.SetAttributesAsync("f", new AttributeChange { LastWriteUtc = DateTime.UnixEpoch.AddSeconds(i) }, default);
                await facet.CommitAsync(100 + i, default); // to the checkpoint
            }
            Assert.IsTrue(Directory.GetFiles(Path.Combine(Bucket, "checkpoints")).Length > 0, "a checkpoint was written");
            Assert.AreEqual(4 * Blocks, DataObjects(), "retention keeps the superseded versions");
        }
        await Task.Delay(TimeSpan.FromSeconds(1.6));

        byte[] model;
        await using (ObjectStoreFacet again = await OpenAsync(TimeSpan.FromSeconds(1.5)))
        {
            model = await ReadAllAsync(again);
            await again.CollectAsync(default);
            Assert.AreEqual(Blocks, DataObjects(), "past retention, the versions the checkpoint recorded as superseded are collected");
        }
        await AssertImageAsync(model);
    }

    [TestMethod]
    public async Task ALongBurst_CollectsAsItGoes_WithoutWaitingForACheckpoint()
    {
        await using ObjectStoreFacet facet = await OpenAsync();
        int most = 0;
        byte[] model = await OverwriteAsync(facet, rounds: 60, seed: 5, after: () => most = Math.Max(most, DataObjects()));
        Assert.IsTrue(most <= Blocks + ObjectStoreFacet.CollectBatch + Blocks,
            $"{most} data objects at most during 60 overwrites of {Blocks} blocks: superseded ones go once a batch of them is due");
        await AssertImageAsync(model);
    }

    [TestMethod]
    public async Task AReadInFlight_StillFindsItsObjects_WhenAWriteSupersedesThemAndTheyAreCollected()
    {
        byte[] old;
        await using (ObjectStoreFacet facet = await OpenAsync())
        {
            old = await OverwriteAsync(facet, rounds: 0, seed: 6);
        }
        var store = new HoldingStore(new FolderObjectStore(Bucket)) { HoldGets = k => k.StartsWith("data/", StringComparison.Ordinal) };
        await using var reader = new ObjectStoreFacet("obj", "folder", store, Block, "test");
        await reader.OpenAsync(default);

        // The read takes the image's keys, then waits on its GETs (a slow link) ...
        byte[] got = new byte[Blocks * Block];
        ValueTask<int> read = reader.ReadAsync(new FileRef(1, "f"), 0, got, default);
        await store.Waiting.Task.WaitAsync(TimeSpan.FromSeconds(10));
        // ... while a write replaces every block, lands, and what it superseded is collected.
        byte[] data = new byte[Blocks * Block];
        new Random(7).NextBytes(data);
        await reader.WriteAsync(new FileRef(1, "f"), 0, data, default);
        await reader.CommitAsync(1, default);
        await reader.CollectAsync(default);
        store.Release();

        Assert.AreEqual(got.Length, await read, "the read finds the objects it was given, not 'missing; run verify --repair'");
        CollectionAssert.AreEqual(old, got, "it reads the file as it was when it began");
        Assert.AreEqual(2 * Blocks, DataObjects(), "kept while the read was under way");
        await reader.CollectAsync(default);
        Assert.AreEqual(Blocks, DataObjects(), "collected once it is done");
    }

    [TestMethod]
    public async Task AReadThatFails_DoesNotHoldBackCollection()
    {
        await using ObjectStoreFacet facet = await OpenAsync();
        await OverwriteAsync(facet, rounds: 1, seed: 8);
        await Assert.ThrowsExactlyAsync<MirrorException>(async () => await facet.ReadAsync(new FileRef(9, "nope"), 0, new byte[10], default));
        byte[] model = await OverwriteAsync(facet, rounds: 2, seed: 9, create: false);
        await facet.CollectAsync(default);
        Assert.AreEqual(Blocks, DataObjects(), "a read of a missing file is not a read under way");
        CollectionAssert.AreEqual(model, await ReadAllAsync(facet));
    }

    private async Task<ObjectStoreFacet> OpenAsync(TimeSpan retention = default)
    {
        var facet = new ObjectStoreFacet("obj", "folder", new FolderObjectStore(Bucket), Block, "test", retention: retention);
        await facet.OpenAsync(default);
        return facet;
    }

    /// <summary>Writes the file whole (<paramref name="rounds"/> + 1 times when it is created), a commit each time; returns its bytes.</summary>
    private static async Task<byte[]> OverwriteAsync(ObjectStoreFacet facet, int rounds, int seed, bool create = true, Action? after = null)
    {
        var f = new FileRef(1, "f");
        if (create)
        {
            await facet.CreateFileAsync(f, (UnixFileMode)0b110_100_100, default);
            rounds++;
        }
        byte[] data = [];
        for (int r = 0; r < rounds; r++)
        {
            data = new byte[Blocks * Block];
            new Random(seed * 1000 + r).NextBytes(data);
            await facet.WriteAsync(f, 0, data, default);
            await facet.CommitAsync(seed * 1000 + r, default);
            after?.Invoke();
        }
        return data;
    }

    private int DataObjects()
        => Directory.Exists(Path.Combine(Bucket, "data")) ? Directory.GetFiles(Path.Combine(Bucket, "data"), "*", SearchOption.AllDirectories).Length : 0;

    private static async Task<byte[]> ReadAllAsync(ObjectStoreFacet facet)
    {
        byte[] got = new byte[Blocks * Block];
        Assert.AreEqual(got.Length, await facet.ReadAsync(new FileRef(1, "f"), 0, got, default));
        return got;
    }

    /// <summary>What is left still holds the image: a reopened facet and <c>cmfs restore</c> read the file whole.</summary>
    private async Task AssertImageAsync(byte[] model)
    {
        await using (ObjectStoreFacet again = await OpenAsync())
        {
            CollectionAssert.AreEqual(model, await ReadAllAsync(again), "a reopened facet reads the last version");
        }
        string target = Path.Combine(_dir.Path, "restored-" + Guid.NewGuid().ToString("N")[..6]);
        await RemoteRestore.RestoreAsync(new FolderObjectStore(Bucket), target, null, null, default);
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(target, "f")), "the restored file");
    }
}
