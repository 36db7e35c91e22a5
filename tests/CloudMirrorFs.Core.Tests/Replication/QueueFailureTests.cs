using CloudMirrorFs.Facets;
using CloudMirrorFs.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>The storage holding the transaction queue fails (seed 000): who becomes NotSynchronised, who is written synchronously.</summary>
[TestClass]
public sealed class QueueFailureTests
{
    [TestMethod]
    public async Task QueueStorageFails_RemoteWithBacklogIsNotSynchronised_CaughtUpRemoteIsWrittenSynchronously()
    {
        SimulatedLink? slow = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 2, blockSize: 64 * 1024)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Name == "remote0" ? slow = new SimulatedLink(inner) : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, new byte[100_000]);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        slow!.Down = true; // remote0 falls behind; remote1 keeps up
        byte[] second = new byte[50_000];
        new Random(1).NextBytes(second);
        await v.WriteAsync(id, 200_000, second);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (v.GetQueueCursor("remote1")!.Count > 0)
        {
            Assert.IsTrue(DateTime.UtcNow < deadline, "remote1 caught up");
            await Task.Delay(20);
        }
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count > 0, "remote0 has transactions outstanding");

        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        byte[] third = new byte[30_000];
        new Random(2).NextBytes(third);
        await v.WriteAsync(id, 400_000, third); // acknowledged: the local facet has it, remote1 has it synchronously
        await v.ZeroRangeAsync(id, 210_000, 20_000, deallocate: true); // a hole punched in the second write, likewise
        Array.Clear(second, 10_000, 20_000);
        await v.RenameAsync("f", "g");
        await v.CreateFileAsync("made-after");

        Assert.IsTrue(v.QueueFailed);
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), "outstanding transactions: NotSynchronised");
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason, "queue's storage failed");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote1"), "nothing outstanding: stays usable");
        string r1 = fx.FacetPath("remote1");
        byte[] onRemote1 = File.ReadAllBytes(Path.Combine(r1, "g"));
        CollectionAssert.AreEqual(third, onRemote1.AsSpan(400_000, third.Length).ToArray(), "remote1 got the write before it was acknowledged");
        CollectionAssert.AreEqual(second, onRemote1.AsSpan(200_000, second.Length).ToArray(), "and the hole punched");
        Assert.IsTrue(File.Exists(Path.Combine(r1, "made-after")), "and the namespace changes");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(1)) == false, "remote0 waits for the next mount");

        // The next mount, on a queue that works again: remote0 is resynchronised from the local facet.
        ((IReplicationHost)v).Queue.InjectedStorageFailure = null;
        slow.Down = false;
        v = await fx.ReopenAsync();
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), "both remotes current after the remount");
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote1"));
    }

    /// <summary>
    /// The default layout keeps the queue and the local facet on one disk. When that disk dies with the remote caught
    /// up, the remote holds every acknowledged change and is written synchronously: reads, listings and writes must go
    /// on from it, not fail with "no local facet works".
    /// </summary>
    [TestMethod]
    public async Task QueueAndLocalDiskFail_CaughtUpRemoteServesReadsAndWrites()
    {
        const int Block = 64 * 1024;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(7);
        byte[] model = new byte[5 * Block + 123];
        rnd.NextBytes(model);
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, model);
        await v.CreateDirectoryAsync("d");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        // The disk goes: the queue's next append fails, and so does every local operation.
        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        fx.Faults["local0"].Offline = true;
        TimeSpan hang = TimeSpan.FromSeconds(15);
        byte[] second = new byte[Block / 2];
        rnd.NextBytes(second);
        await v.WriteAsync(id, 2 * Block + 10, second).AsTask().WaitAsync(hang);
        second.CopyTo(model, 2 * Block + 10);
        Assert.IsTrue(v.QueueFailed);
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("local0"));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));

        byte[] got = new byte[model.Length];
        Assert.AreEqual(model.Length, await v.ReadAsync(id, 0, got).AsTask().WaitAsync(hang));
        CollectionAssert.AreEqual(model, got, "the remote's bytes, with the write made after the disk died");
        Assert.AreEqual(model.Length, (await v.StatAsync("f").AsTask().WaitAsync(hang)).Length);
        long made = await v.CreateFileAsync("d/after").AsTask().WaitAsync(hang);
        await v.WriteAsync(made, 0, second).AsTask().WaitAsync(hang);
        CollectionAssert.AreEquivalent(new[] { "after" }, (await v.ListAsync("d").AsTask().WaitAsync(hang)).Select(n => n.Name).ToArray());
        byte[] back = new byte[second.Length];
        Assert.AreEqual(second.Length, await v.ReadAsync(made, 0, back).AsTask().WaitAsync(hang));
        CollectionAssert.AreEqual(second, back);
        await v.SyncFileAsync(made).AsTask().WaitAsync(hang); // fsync: the remote serving in the local's place is flushed
        await v.SyncAsync().AsTask().WaitAsync(hang);
        CollectionAssert.AreEqual(model, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")), "on the remote before it was acknowledged");
        CollectionAssert.AreEqual(second, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "d", "after")));
    }
}
