using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;

namespace CloudMirrorFs.Tests.Queue;

[TestClass]
public sealed class DataArenaTests
{
    private const int Slab = 256 * 1024; // a quarter of the 1 MiB limit below

    [TestMethod]
    public void TrimIdle_AfterABurst_LetsAllButOneSpareSlabGo()
    {
        using var arena = new DataArena(1 << 20);
        byte[] data = new byte[64 * 1024];
        new Random(7).NextBytes(data);
        var owners = new List<IBufferOwner>();
        for (int i = 0; i < 16; i++)
        {
            owners.Add(arena.Copy(data).Owner); // 1 MiB: four slabs
        }
        foreach (IBufferOwner o in owners)
        {
            o.Release();
        }
        Thread.Sleep(200); // the spare slab allocated ahead of need, on a pool thread
        Assert.IsTrue(arena.AllocatedBytes >= 4L * Slab, $"the burst took {arena.AllocatedBytes} bytes");

        Assert.AreEqual(0, arena.TrimIdle(), "slabs were taken since the last look: nothing goes yet");
        Assert.IsTrue(arena.TrimIdle() >= 2, "a whole idle period: the free slabs go");
        Assert.AreEqual(2L * Slab, arena.AllocatedBytes, "the slab being filled and one spare stay");

        (ReadOnlyMemory<byte> copy, IBufferOwner owner) = arena.Copy(data);
        CollectionAssert.AreEqual(data, copy.ToArray(), "the arena still works after a trim");
        owner.Release();
    }

    /// <summary>
    /// After a burst of hundreds of MiB the slabs go, and so does the memory: a normal collection would keep it committed
    /// for the collector's next use, and an idle drive would hold a burst's worth of memory for ever.
    /// </summary>
    [TestMethod]
    [DoNotParallelize]
    public void TrimIdle_AfterALargeBurst_HandsTheMemoryBackToTheSystem()
    {
        DataArena.ResetGiveBackTurn(); // an arena of an earlier test may have had the turn
        using var arena = new DataArena(512L << 20); // slabs of 16 MiB
        byte[] data = new byte[1 << 20];
        new Random(8).NextBytes(data);
        var owners = new List<IBufferOwner>();
        for (int i = 0; i < 320; i++)
        {
            owners.Add(arena.Copy(data).Owner);
        }
        foreach (IBufferOwner o in owners)
        {
            o.Release();
        }
        owners.Clear(); // (each owner is its slab)
        GC.Collect();
        long before = GC.GetGCMemoryInfo().TotalCommittedBytes;
        Assert.IsTrue(before > 300L << 20, $"the burst's slabs are committed ({before >> 20} MiB)");

        Assert.AreEqual(0, arena.TrimIdle());
        Assert.IsTrue(arena.TrimIdle() >= 18, "a whole idle period: the free slabs go");
        GC.Collect();
        long after = GC.GetGCMemoryInfo().TotalCommittedBytes;
        Assert.IsTrue(before - after > 250L << 20, $"committed memory {before >> 20} MiB before the trim, {after >> 20} MiB after");
    }
}
