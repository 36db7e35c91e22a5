using CloudMirrorFs.Facets;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>Fast resync: dirty blocks whose hash matches at the far end are not sent again (DRBD's csums-alg).</summary>
[TestClass]
public sealed class FastResyncTests
{
    private const int Block = 64 * 1024;

    [TestMethod]
    public async Task DirtyMapResync_SendsOnlyTheBlocksThatDiffer()
    {
        SimulatedLink? link = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? link = new SimulatedLink(inner) { RoundTrip = TimeSpan.FromMilliseconds(2) } : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        byte[] model = new byte[64 * Block];
        new Random(1).NextBytes(model);
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, model);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        link!.Down = true;
        var rng = new Random(2);
        int[] blocks = [.. Enumerable.Range(0, 64).OrderBy(_ => rng.Next()).Take(26)];
        foreach (int b in blocks.Take(20))
        {
            await v.WriteAsync(id, (long)b * Block, model.AsMemory(b * Block, Block)); // rewritten with the same bytes
        }
        foreach (int b in blocks.Skip(20))
        {
            rng.NextBytes(model.AsSpan(b * Block, Block));
            await v.WriteAsync(id, (long)b * Block, model.AsMemory(b * Block, Block)); // really changed
        }
        v.RequestResync("remote0", full: false);
        long before = link.BytesSent;
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), "resynchronised");

        long sent = link.BytesSent - before;
        long changed = 6L * Block;
        Assert.IsTrue(sent <= changed * 1.1, $"sent {sent / Block} block(s) for 6 changed (26 dirty): {(double)sent / changed:0.00}x");
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")));
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task FullResync_OfASparseFile_SendsItsDataNotItsHoles_AndTheCopyStaysSparse(string kind)
    {
        // A 64-block file with data in 3 blocks (a VM image, a database file): a full resync used to send every
        // block, 61 of them zeros, and left a directory remote's copy fully allocated.
        SimulatedLink? link = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: kind)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? link = new SimulatedLink(inner) { RoundTrip = TimeSpan.FromMilliseconds(1) } : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        byte[] model = new byte[64 * Block];
        long id = await v.CreateFileAsync("sparse.img");
        await v.SetLengthAsync(id, model.Length);
        foreach (int b in new[] { 0, 17, 63 })
        {
            new Random(b).NextBytes(model.AsSpan(b * Block, Block));
            await v.WriteAsync(id, (long)b * Block, model.AsMemory(b * Block, Block));
        }
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        v.RequestResync("remote0", full: true);
        long before = link!.BytesSent;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), "resynchronised");
        long sent = link.BytesSent - before;
        Assert.IsTrue(sent <= 3L * Block * 1.1, $"a full resync sent {(double)sent / Block:0.0} blocks for a file with 3 blocks of data");

        string remoteFile = Path.Combine(fx.FacetPath("remote0"), "sparse.img");
        if (kind == "folder")
        {
            string restored = Path.Combine(fx.FacetPath("remote0") + "-restored");
            await CloudMirrorFs.Objects.RemoteRestore.RestoreAsync(FacetFactory.CreateStore(fx.Options.Facets.First(f => f.Name == "remote0")), restored, null, null, default);
            remoteFile = Path.Combine(restored, "sparse.img");
        }
        else
        {
            Assert.IsTrue(Allocation.BytesOf(remoteFile) <= 8L * Block, $"the remote copy has {Allocation.BytesOf(remoteFile)} bytes allocated for 3 blocks of data");
        }
        CollectionAssert.AreEqual(model, File.ReadAllBytes(remoteFile), "what the remote holds after the resync");
    }

    [TestMethod]
    public async Task FullResync_ItsVolumeMarksLeaveTheMapFile_OnlyOnceTheRemoteIsFlushed()
    {
        // A power cut between the reconcile of names and the remote's flush must find the full and namespace marks
        // still in the remote's dirty-map file: the names the reconcile made may not be on the remote's disk yet.
        HeldFlushFacet? held = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? held = new HeldFlushFacet(inner, Block) : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, new byte[8 * Block]);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        held!.Hold = true;
        try
        {
            v.RequestResync("remote0", full: true);
            await held.FlushHeld.Task.WaitAsync(TimeSpan.FromSeconds(60));
            string copy = Path.Combine(fx.Options.StateDir, "remote0-at-the-cut.map");
            File.Copy(Path.Combine(fx.Options.StateDir, "dirty", "remote0.map"), copy);
            using var onDisk = CloudMirrorFs.Storage.DirtyMap.Open(copy);
            Assert.IsTrue(onDisk.IsFull, "the full mark is still in the file");
            Assert.IsTrue(onDisk.NamespaceDirty, "and the namespace mark");
        }
        finally
        {
            held.Release();
        }
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        var (_, full, ns) = v.GetDirtyMap("remote0");
        Assert.IsFalse(full || ns, "cleared once the remote was flushed");
        string after = Path.Combine(fx.Options.StateDir, "remote0-after.map");
        File.Copy(Path.Combine(fx.Options.StateDir, "dirty", "remote0.map"), after);
        using var inFile = CloudMirrorFs.Storage.DirtyMap.Open(after);
        Assert.IsFalse(inFile.IsFull || inFile.NamespaceDirty, "and in the file: a restart does not resync it again");
    }
}
