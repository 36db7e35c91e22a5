using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// Issue 6, item 5: with the local facet failed mid-run, reads come from a remote with the queue's newer changes laid
/// over it (seed 000, "read from the buffer"), and every byte read equals a model of what was acknowledged.
/// </summary>
[TestClass]
public sealed class DegradedReadTests
{
    private const int Block = 64 * 1024;
    private const int FileSize = 512 * 1024;

    private static byte[] Bytes(int length, Random rnd)
    {
        byte[] b = new byte[length];
        rnd.NextBytes(b);
        return b;
    }

    private static void ModelWrite(Dictionary<long, byte[]> model, long id, long offset, byte[] data)
    {
        byte[] old = model[id];
        if (offset + data.Length > old.Length)
        {
            Array.Resize(ref old, (int)(offset + data.Length));
        }
        data.CopyTo(old, offset);
        model[id] = old;
    }

    private static void ModelZero(Dictionary<long, byte[]> model, long id, long offset, long length)
    {
        byte[] b = model[id];
        if (offset < b.Length)
        {
            Array.Clear(b, (int)offset, (int)Math.Min(length, b.Length - offset));
        }
    }

    private static async Task ReadEverythingAsync(MirrorVolume v, Dictionary<long, byte[]> model, Random rnd, string what)
    {
        foreach (var (id, want) in model)
        {
            byte[] whole = new byte[want.Length + 1000];
            int n = await v.ReadAsync(id, 0, whole);
            Assert.AreEqual(want.Length, n, $"{what}: file {id} length");
            CollectionAssert.AreEqual(want, whole[..n], $"{what}: file {id} bytes");
            for (int i = 0; i < 40; i++)
            {
                long off = rnd.Next(0, want.Length + 100);
                byte[] got = new byte[rnd.Next(1, 150_000)];
                int k = await v.ReadAsync(id, off, got);
                int expected = (int)Math.Clamp(want.Length - off, 0, got.Length);
                Assert.AreEqual(expected, k, $"{what}: file {id} read at {off}+{got.Length}");
                CollectionAssert.AreEqual(want.AsSpan((int)Math.Min(off, want.Length), expected).ToArray(), got[..k], $"{what}: file {id} bytes at {off}");
            }
        }
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LocalFailsMidRun_ReadsComeFromTheRemoteWithTheQueueLaidOver_EveryByteMatchesTheModel(string kind)
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: kind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(42);
        var model = new Dictionary<long, byte[]>();
        foreach (string name in new[] { "a", "b" })
        {
            long id = await v.CreateFileAsync(name);
            model[id] = [];
            byte[] data = Bytes(FileSize, rnd);
            await v.WriteAsync(id, 0, data);
            ModelWrite(model, id, 0, data);
        }
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));

        // The remote stops taking writes (its replicator retries): what follows exists only locally and in the queue.
        fx.Faults["remote0"].FailWrite = (_, _, _) => true;
        long[] ids = [.. model.Keys];
        for (int i = 0; i < 60; i++)
        {
            long id = ids[rnd.Next(ids.Length)];
            long off = rnd.Next(0, FileSize);
            byte[] data = Bytes(rnd.Next(1, 90_000), rnd);
            await v.WriteAsync(id, off, data);
            ModelWrite(model, id, off, data);
            if (i % 5 == 4)
            {
                // A hole punched (or a range zeroed), sometimes reaching past the end: the length stays.
                long zero = rnd.Next(0, FileSize);
                long length = rnd.Next(1, 3 * Block);
                await v.ZeroRangeAsync(id, zero, length, deallocate: i % 2 == 0);
                ModelZero(model, id, zero, length);
            }
        }
        // A truncate then a write past the end: the hole between reads as zeros.
        await v.SetLengthAsync(ids[1], 300_000);
        byte[] cut = model[ids[1]];
        Array.Resize(ref cut, 300_000);
        model[ids[1]] = cut;
        byte[] tail = Bytes(10_000, rnd);
        await v.WriteAsync(ids[1], 450_000, tail);
        ModelWrite(model, ids[1], 450_000, tail);
        // A file created since the remote last committed: only the queue holds it.
        long fresh = await v.CreateFileAsync("fresh");
        model[fresh] = [];
        for (int i = 0; i < 5; i++)
        {
            byte[] data = Bytes(70_000, rnd);
            await v.WriteAsync(fresh, i * 60_000L, data);
            ModelWrite(model, fresh, i * 60_000L, data);
        }
        await v.ZeroRangeAsync(fresh, 50_000, 100_000, deallocate: true);
        ModelZero(model, fresh, 50_000, 100_000);
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0);

        fx.Faults["local0"].Offline = true; // the local disk dies mid-run
        await ReadEverythingAsync(v, model, rnd, "local failed, remote behind");
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0, "the remote never caught up: every read above was served with the queue laid over it");
        Assert.IsTrue(v.BufferReads > 0);
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("local0"));

        // The remote heals: it catches up and holds exactly the model.
        fx.Faults["remote0"].FailWrite = null;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
        await ReadEverythingAsync(v, model, rnd, "after the remote caught up");
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LocalFailsMidRun_StatListAndReadLinkAnswerFromTheRemoteWithTheQueueLaidOver_WithoutWaitingForIt(string kind)
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: kind) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(5);
        long a = await v.CreateFileAsync("a");
        await v.WriteAsync(a, 0, Bytes(100_000, rnd));
        long b = await v.CreateFileAsync("b");
        await v.WriteAsync(b, 0, Bytes(200_000, rnd));
        await v.CreateDirectoryAsync("d");
        long x = await v.CreateFileAsync("d/x");
        await v.WriteAsync(x, 0, Bytes(5000, rnd));
        await v.CreateSymlinkAsync("l", "a");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));

        // The remote stops taking writes: the first change below fails there, and nothing after it is applied.
        fx.Faults["remote0"].FailWrite = (_, _, _) => true;
        await v.WriteAsync(a, 150_000, Bytes(1000, rnd)); // grows a, leaving a hole
        await v.SetLengthAsync(b, 50_000);
        await v.SetAttributesAsync("a", new AttributeChange { Mode = (UnixFileMode)0b110_000_000 });
        var stamp = new DateTime(2020, 2, 3, 4, 5, 6, DateTimeKind.Utc);
        await v.SetAttributesAsync("d/x", new AttributeChange { LastWriteUtc = stamp });
        long fresh = await v.CreateFileAsync("d/fresh");
        await v.WriteAsync(fresh, 0, Bytes(70_000, rnd));
        await v.CreateDirectoryAsync("newdir");
        await v.CreateSymlinkAsync("d/l2", "fresh");

        string[] paths = ["", "a", "b", "d", "d/x", "d/fresh", "d/l2", "l", "newdir"];
        var want = new Dictionary<string, NodeInfo>();
        foreach (string p in paths)
        {
            want[p] = await v.StatAsync(p);
        }
        var listings = new Dictionary<string, List<(string, NodeKind, long)>>();
        foreach (string dir in new[] { "", "d", "newdir" })
        {
            listings[dir] = [.. (await v.ListAsync(dir)).Select(e => (e.Name, e.Kind, e.FileId)).Order()];
        }
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0);

        fx.Faults["local0"].Offline = true; // the local disk dies; the remote is behind and stays behind
        TimeSpan hang = TimeSpan.FromSeconds(15); // past this, a call waited for the remote to catch up, which never happens
        foreach (string p in paths)
        {
            NodeInfo got = await v.StatAsync(p).AsTask().WaitAsync(hang);
            NodeInfo w = want[p];
            Assert.AreEqual((w.Kind, w.FileId, w.Mode), (got.Kind, got.FileId, got.Mode), p);
            if (w.Kind != NodeKind.Directory)
            {
                Assert.AreEqual(w.Length, got.Length, $"{p}: length");
                Assert.IsTrue((w.LastWriteUtc - got.LastWriteUtc).Duration() < TimeSpan.FromSeconds(2), $"{p}: mtime {got.LastWriteUtc:o}, local had {w.LastWriteUtc:o}");
            }
        }
        Assert.AreEqual(stamp, (await v.StatAsync("d/x")).LastWriteUtc, "a time set explicitly is exact");
        foreach (var (dir, entries) in listings)
        {
            List<(string, NodeKind, long)> got = [.. (await v.ListAsync(dir).AsTask().WaitAsync(hang)).Select(e => (e.Name, e.Kind, e.FileId)).Order()];
            CollectionAssert.AreEqual(entries, got, $"listing of '{dir}'");
        }
        Assert.AreEqual("a", await v.ReadLinkAsync("l").AsTask().WaitAsync(hang), "a link the remote holds");
        Assert.AreEqual("fresh", await v.ReadLinkAsync("d/l2").AsTask().WaitAsync(hang), "a link only the queue holds");
        Assert.IsTrue((await v.StatFsAsync().AsTask().WaitAsync(hang)).TotalBytes > 0, "statfs answers from the remote at once");
        Assert.IsTrue(v.BufferStats > 0);
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0, "the remote never caught up: every answer above came from the buffer");

        fx.Faults["remote0"].FailWrite = null;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
        Assert.AreEqual(want["a"].Length, (await v.StatAsync("a")).Length, "and the remote, caught up, says the same");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task LocalFailsAfterRenames_AnObjectStoreRemoteIsReadAtThePathsItStillHas_WithoutWaitingForIt()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: "folder") { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(9);
        await v.CreateDirectoryAsync("d");
        long x = await v.CreateFileAsync("d/x");
        byte[] model = Bytes(300_000, rnd);
        await v.WriteAsync(x, 0, model);
        await v.CreateSymlinkAsync("d/l", "x");
        long other = await v.CreateFileAsync("d/other");
        await v.WriteAsync(other, 0, Bytes(1000, rnd));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));

        // The remote stops taking writes; then the folder and a file in it are renamed, and the file written.
        fx.Faults["remote0"].FailWrite = (_, _, _) => true;
        await v.WriteAsync(other, 0, Bytes(10, rnd)); // fails on the remote: nothing after it is applied there
        await v.RenameAsync("d", "e");
        await v.RenameAsync("e/x", "e/x2");
        byte[] patch = Bytes(5000, rnd);
        await v.WriteAsync(x, 100_000, patch);
        patch.CopyTo(model, 100_000);
        var want = new Dictionary<string, NodeInfo>();
        foreach (string p in new[] { "e/x2", "e/l" })
        {
            want[p] = await v.StatAsync(p);
        }

        fx.Faults["local0"].Offline = true;
        TimeSpan hang = TimeSpan.FromSeconds(15);
        long readsBefore = v.BufferReads;
        byte[] got = new byte[model.Length];
        Assert.AreEqual(model.Length, await v.ReadAsync(x, 0, got).AsTask().WaitAsync(hang));
        CollectionAssert.AreEqual(model, got, "the remote's bytes at d/x, with the queued write laid over");
        Assert.IsTrue(v.BufferReads > readsBefore);
        // A reader going through the file in pieces: the queue stands still, so it is scanned once, not once a piece.
        long scans = v.BufferScans;
        byte[] piece = new byte[10_000];
        for (int off = 0; off < model.Length; off += piece.Length)
        {
            int n = await v.ReadAsync(x, off, piece).AsTask().WaitAsync(hang);
            CollectionAssert.AreEqual(model.AsSpan(off, n).ToArray(), piece[..n], $"piece at {off}");
        }
        Assert.IsTrue(v.BufferScans - scans <= 1, $"{v.BufferScans - scans} scans of the queue for {model.Length / piece.Length} reads");
        foreach (var (p, w) in want)
        {
            NodeInfo s = await v.StatAsync(p).AsTask().WaitAsync(hang);
            Assert.AreEqual((w.Kind, w.FileId, w.Length, w.Mode), (s.Kind, s.FileId, s.Length, s.Mode), p);
        }
        Assert.AreEqual("x", await v.ReadLinkAsync("e/l").AsTask().WaitAsync(hang), "a link the remote has under the folder's old name");
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0, "the remote never caught up: every answer above came from the buffer");
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task RemoteStillResyncing_ServesWhatItHoldsAndTheQueueHolds_RefusesWhatOnlyTheFailedDiskHad()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 1 << 20, SegmentSize = 256 * 1024 }) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(7);
        long id = await v.CreateFileAsync("a");
        byte[] model = Bytes(8 * Block, rnd);
        await v.WriteAsync(id, 0, model);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));

        // The remote refuses writes to blocks 0 and 1: the queue overflows, the remote goes NotSynchronised, and its
        // resync copies every dirty block but those two, retrying them. Blocks 0 and 1 are written first, so the
        // overflow folds them into the dirty map: afterwards only the failed local disk has their newest bytes.
        fx.Faults["remote0"].FailWrite = (f, off, _) => f.Id == id && off < 2 * Block;
        for (int round = 0; round < 4; round++)
        {
            for (int b = round == 0 ? 0 : 2; b < 8; b++)
            {
                byte[] data = Bytes(Block, rnd);
                await v.WriteAsync(id, b * (long)Block, data);
                data.CopyTo(model, b * Block);
            }
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (v.GetDirtyCount("remote0") != 2 || v.GetFacetState("remote0") == FacetState.NotSynchronised)
        {
            // Each attempt holds BeingSynchronised only for its pass, then waits out a retry delay NotSynchronised:
            // sample often, or a loaded machine can miss every pass.
            Assert.IsTrue(DateTime.UtcNow < deadline, ReplicationTests.Describe(v));
            await Task.Delay(2);
        }
        // New changes while it resyncs: block 0 rewritten whole (the queue decides it), block 5 in part.
        fx.Faults["remote0"].FailWrite = (_, _, _) => true;
        byte[] b0 = Bytes(Block, rnd), b5 = Bytes(1000, rnd);
        await v.WriteAsync(id, 0, b0);
        b0.CopyTo(model, 0);
        await v.WriteAsync(id, 5 * Block + 100, b5);
        b5.CopyTo(model, 5 * Block + 100);

        fx.Faults["local0"].Offline = true;
        byte[] got = new byte[Block];
        foreach (int b in new[] { 0, 2, 5, 7 })
        {
            Assert.AreEqual(Block, await v.ReadAsync(id, b * (long)Block, got), $"block {b}");
            CollectionAssert.AreEqual(model[(b * Block)..((b + 1) * Block)], got, $"block {b}: the remote's bytes with the queue's laid over");
        }
        // Block 1 was on the failed disk only: never guessed from stale remote bytes.
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.ReadAsync(id, Block, got));
        Assert.AreEqual(MirrorError.Unavailable, e.Error);
    }

    /// <summary>
    /// Seed 000's read repair with one local facet: a bad sector on it is read from the remote, with the queue's newer
    /// writes laid over, and written back; the facet stays Synchronised and keeps serving. Before, the one unreadable
    /// range took the only local facet out for the rest of the run.
    /// </summary>
    [TestMethod]
    public async Task BadSectorOnTheOnlyLocal_IsRepairedFromTheRemoteAndTheQueue_LocalStaysInService()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(11);
        byte[] model = Bytes(FileSize, rnd);
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, model);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        // The remote stops taking writes: a newer write stays in the queue, over part of the range that goes bad.
        fx.Faults["remote0"].FailWrite = (_, _, _) => true;
        byte[] newer = Bytes(3000, rnd);
        await v.WriteAsync(id, 101_000, newer);
        newer.CopyTo(model, 101_000);
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0);

        // Garbage under the volume where the sector is bad, unreadable until written.
        string local = Path.Combine(fx.FacetPath("local0"), "f");
        var sector = new BadSector(fx.Faults["local0"], local, 100_000, 5000);

        byte[] got = new byte[Block];
        Assert.AreEqual(Block, await v.ReadAsync(id, Block, got).AsTask().WaitAsync(TimeSpan.FromSeconds(15)));
        CollectionAssert.AreEqual(model[Block..(2 * Block)], got, "the remote's bytes with the queued write laid over");
        Assert.IsFalse(sector.IsBad, "the local facet was written back");
        CollectionAssert.AreEqual(model, File.ReadAllBytes(local), "read repair rewrote the bad bytes on the local facet");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("local0"), "a repaired facet stays in service");
        Assert.IsTrue(v.GetStatus().Facets.Single(f => f.Name == "local0").Reason is null);

        // It keeps serving: the next read of the range comes from it, and a write goes to it at once.
        int readsBefore = fx.Faults["local0"].ReadCount;
        Assert.AreEqual(Block, await v.ReadAsync(id, Block, got));
        CollectionAssert.AreEqual(model[Block..(2 * Block)], got);
        Assert.IsTrue(fx.Faults["local0"].ReadCount > readsBefore);

        fx.Faults["remote0"].FailWrite = null;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)), ReplicationTests.Describe(v));
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")));
    }
}
