using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
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

    /// <summary>
    /// The disk holding the local facet and the state folder dies with the remote caught up; the volume goes on with
    /// the remote written synchronously; then the process stops and the disk comes back as it was when it died. Its
    /// state says the local facet is Synchronised and knows nothing of what came after: taken at its word, the stale
    /// local served old bytes and old names, and the crash recovery copied its blocks over the remote's newer ones.
    /// The remote's newest commit says it was written after the queue failed, so it becomes the reference.
    /// </summary>
    [TestMethod]
    [DataRow("folder", false, DisplayName = "folder store, answering at the mount: it is the reference")]
    [DataRow("folder", true, DisplayName = "folder store, unreachable at the mount: held once it answers")]
    [DataRow("directory", false, DisplayName = "directory remote, answering at the mount: it is the reference")]
    [DataRow("directory", true, DisplayName = "directory remote, unreachable at the mount: held once it answers")]
    public async Task DiskComesBackAsItWasWhenItDied_TheRemoteWrittenSinceIsNotOverwritten(string remoteKind, bool remoteDownAtTheMount)
    {
        const int Block = 64 * 1024;
        SimulatedLink? link = null;
        bool startDown = false;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: remoteKind, queue: new QueueOptions { MemoryLimit = 256 * 1024 })
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? link = new SimulatedLink(inner) { Down = startDown } : inner,
        };
        using var scratch = new TempDir("stale-disk");
        string model = scratch.Sub("model");
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(11);
        byte[] f = new byte[6 * Block + 321];
        rnd.NextBytes(f);
        long fid = await v.CreateFileAsync("f");
        await v.WriteAsync(fid, 0, f);
        foreach (string name in new[] { "g", "h" })
        {
            long id = await v.CreateFileAsync(name);
            byte[] bytes = new byte[Block + 7];
            rnd.NextBytes(bytes);
            await v.WriteAsync(id, 0, bytes);
            File.WriteAllBytes(Path.Combine(model, name), bytes);
        }
        await v.CreateDirectoryAsync("d");
        Directory.CreateDirectory(Path.Combine(model, "d"));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        // Written while the link is down, so the queue spills them to a segment; the disk's copy of the queue keeps
        // them and its cursor before them, while the remote commits them from memory once the link is back.
        link!.Down = true;
        byte[] again = new byte[6 * Block];
        rnd.NextBytes(again);
        for (int b = 0; b < 6; b++)
        {
            await v.WriteAsync(fid, b * Block, again.AsMemory(b * Block, Block));
        }
        again.CopyTo(f, 0);
        Assert.IsTrue(Directory.EnumerateFiles(Path.Combine(fx.Options.StateDir, "queue"), "seg-*.cmq").Any(), "records spilled");
        string stateDisk = scratch.Sub("state-at-death"), localDisk = scratch.Sub("local-at-death");
        CopyTree(fx.Options.StateDir, stateDisk);
        CopyTree(fx.FacetPath("local0"), localDisk);
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        // The disk dies: what it holds stays as it was above (nothing later reached it).
        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        fx.Faults["local0"].Offline = true;
        TimeSpan hang = TimeSpan.FromSeconds(15);
        byte[] late = new byte[5 * Block + Block / 4]; // over every block the queue's segment and intent map name
        rnd.NextBytes(late);
        await v.WriteAsync(fid, Block / 2, late).AsTask().WaitAsync(hang);
        late.CopyTo(f, Block / 2);
        Assert.IsTrue(v.QueueFailed);
        long made = await v.CreateFileAsync("d/made-after").AsTask().WaitAsync(hang);
        byte[] madeBytes = new byte[3 * Block + 5];
        rnd.NextBytes(madeBytes);
        await v.WriteAsync(made, 0, madeBytes).AsTask().WaitAsync(hang);
        File.WriteAllBytes(Path.Combine(model, "d", "made-after"), madeBytes);
        await v.RenameAsync("g", "g2").AsTask().WaitAsync(hang);
        File.Move(Path.Combine(model, "g"), Path.Combine(model, "g2"));
        await v.DeleteFileAsync("h").AsTask().WaitAsync(hang);
        File.Delete(Path.Combine(model, "h"));
        await v.SyncAsync().AsTask().WaitAsync(hang);
        File.WriteAllBytes(Path.Combine(model, "f"), f);
        await v.DisposeAsync();

        // The disk comes back as it was when it died.
        Directory.Delete(fx.Options.StateDir, recursive: true);
        Directory.Delete(fx.FacetPath("local0"), recursive: true);
        CopyTree(stateDisk, fx.Options.StateDir);
        CopyTree(localDisk, fx.FacetPath("local0"));
        if (remoteDownAtTheMount)
        {
            // Nothing at the mount says the disk is stale (a reboot before the network is up): the local serves what
            // it has and takes writes. Once the remote answers, its newest commit says it was written after the queue
            // failed: the queue's older records are not sent over it, nor is the stale local copied over it.
            startDown = true;
            v = await fx.OpenAsync();
            startDown = false;
            long n = await v.CreateFileAsync("new-after-the-mount");
            await v.WriteAsync(n, 0, Pattern(Block, 5));
            link.Down = false;
            await Wait.UntilAsync(() => v.GetStatus().Facets.Single(x => x.Name == "remote0").Reason?.StartsWith("held", StringComparison.Ordinal) == true,
                "the remote held", TimeSpan.FromSeconds(30));
            await Task.Delay(500); // a replicator that went on would have sent something by now
            Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"));
            Assert.IsTrue(v.GetStatus().Facets.Single(x => x.Name == "remote0").Held);
            StringAssert.Contains(v.GetStatus().Facets.Single(x => x.Name == "remote0").Reason, "cmfs resync --facet remote0");
            Assert.IsFalse(await v.DrainAsync(TimeSpan.FromMilliseconds(300)), "a held remote is not current");
            TreeAssert.Equal(model, await fx.RemoteTreeAsync("remote0"), "the held remote keeps every change acknowledged before the mount");
            await v.DisposeAsync();
            v = await fx.OpenAsync(); // held across a restart
            await Task.Delay(500);
            StringAssert.StartsWith(v.GetStatus().Facets.Single(x => x.Name == "remote0").Reason, "held");
            TreeAssert.Equal(model, await fx.RemoteTreeAsync("remote0"), "still, after a restart");

            // The user has saved what it held, and has this volume overwrite it.
            v.RequestResync("remote0", full: false);
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
            TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"), "overwritten by this volume once asked");
            return;
        }
        v = await fx.OpenAsync();
        byte[] got = new byte[f.Length];
        Assert.AreEqual(f.Length, await v.ReadAsync((await v.StatAsync("f")).FileId, 0, got)); // a directory remote records no ids: the table gives new ones
        CollectionAssert.AreEqual(f, got, "f as last acknowledged, not as the stale disk holds it");
        CollectionAssert.AreEquivalent(new[] { "d", "f", "g2" }, (await v.ListAsync("")).Select(n => n.Name).ToArray());
        CollectionAssert.AreEquivalent(new[] { "made-after" }, (await v.ListAsync("d")).Select(n => n.Name).ToArray());

        // Writes go on; the local facet is rebuilt from the remote, and both end equal to what was acknowledged.
        byte[] after = new byte[Block / 3];
        rnd.NextBytes(after);
        long g2 = (await v.StatAsync("g2")).FileId;
        await v.WriteAsync(g2, 100, after);
        using (var m = new FileStream(Path.Combine(model, "g2"), FileMode.Open))
        {
            m.Position = 100;
            m.Write(after);
        }
        await Wait.UntilAsync(() => v.GetFacetState("local0") == FacetState.Synchronised, "the local facet rebuilt", TimeSpan.FromSeconds(60));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)));
        TreeAssert.Equal(model, fx.FacetPath("local0"), "the local facet");
        TreeAssert.Equal(model, await fx.RemoteTreeAsync("remote0"), "the remote");

        // The same disk dies again in this run, and comes back as it was again: told apart the same way.
        byte[] before = Pattern(Block, 21), lost = Pattern(Block, 22);
        await v.WriteAsync(g2, 0, before);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        Directory.Delete(stateDisk, recursive: true);
        Directory.Delete(localDisk, recursive: true);
        CopyTree(fx.Options.StateDir, stateDisk);
        CopyTree(fx.FacetPath("local0"), localDisk);
        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error, again");
        fx.Faults["local0"].Offline = true;
        await v.WriteAsync(g2, 0, lost).AsTask().WaitAsync(hang);
        await v.DisposeAsync();
        Directory.Delete(fx.Options.StateDir, recursive: true);
        Directory.Delete(fx.FacetPath("local0"), recursive: true);
        CopyTree(stateDisk, fx.Options.StateDir);
        CopyTree(localDisk, fx.FacetPath("local0"));
        v = await fx.OpenAsync();
        byte[] second = new byte[Block];
        Assert.AreEqual(Block, await v.ReadAsync((await v.StatAsync("g2")).FileId, 0, second));
        CollectionAssert.AreEqual(lost, second, "the write made after the second death, not the stale disk's");
        if (remoteKind == "directory")
        {
            await v.WriteAsync((await v.StatAsync("g2")).FileId, 0, Pattern(100, 23));
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
            v = await fx.ReopenAsync();
            Assert.IsNull(((IUnqueuedMark)IFacetDecorator.Unwrap(fx.Faults["remote0"])).UnqueuedBy, "the mark goes once a change the queue fed has landed");
        }
    }

    /// <summary>
    /// Only the queue's disk fails (the local facet and the state folder live elsewhere) and comes back at the next
    /// mount holding records the remote had committed before the failure. The remote was written synchronously since,
    /// so those records are older than its image: replayed, they put old bytes back over newer ones on a remote still
    /// called Synchronised.
    /// </summary>
    [TestMethod]
    [DataRow(false, DisplayName = "the remote answers at the mount")]
    [DataRow(true, DisplayName = "the remote answers only after the mount: its records are folded into its dirty map")]
    public async Task QueueDiskComesBackAsItWas_ItsOlderRecordsAreNotReplayedOverTheRemote(bool remoteDownAtTheMount)
    {
        const int Block = 64 * 1024;
        SimulatedLink? link = null;
        bool startDown = false;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: "folder", queue: new QueueOptions { MemoryLimit = 256 * 1024 })
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? link = new SimulatedLink(inner) { Down = startDown } : inner,
        };
        using var scratch = new TempDir("stale-queue");
        MirrorVolume v = await fx.OpenAsync();
        var rnd = new Random(12);
        long fid = await v.CreateFileAsync("f");
        await v.WriteAsync(fid, 0, new byte[6 * Block]);
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        link!.Down = true;
        for (int b = 0; b < 6; b++)
        {
            byte[] bytes = new byte[Block];
            rnd.NextBytes(bytes);
            await v.WriteAsync(fid, b * Block, bytes);
        }
        string queueDir = Path.Combine(fx.Options.StateDir, "queue"), queueDisk = scratch.Sub("queue-at-death");
        CopyTree(queueDir, queueDisk);
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        byte[] late = new byte[6 * Block];
        rnd.NextBytes(late);
        await v.WriteAsync(fid, 0, late);
        Assert.IsTrue(v.QueueFailed);
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        await v.DisposeAsync();

        Directory.Delete(queueDir, recursive: true);
        CopyTree(queueDisk, queueDir);
        startDown = remoteDownAtTheMount;
        v = await fx.OpenAsync();
        if (remoteDownAtTheMount)
        {
            byte[] meanwhile = Pattern(Block, 31);
            await v.WriteAsync(fid, Block, meanwhile); // queued after the old records, for a remote not yet looked at
            meanwhile.CopyTo(late, Block);
            await Task.Delay(300);
            link!.Down = false;
        }
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)), ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        Assert.IsFalse(v.GetStatus().Facets.Single(x => x.Name == "remote0").Held, "the saved state knew of the failure: nothing to hold");
        CollectionAssert.AreEqual(late, File.ReadAllBytes(Path.Combine(fx.FacetPath("local0"), "f")));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"), "the remote holds the last write");
    }

    /// <summary>
    /// The state folder's disk alone dies (the local facet lives on another, and keeps working); the remote written
    /// synchronously since then fails a write and drops out, and the local facet alone takes the next ones; then the
    /// state folder comes back as it was. The remote's newest commit says it was written after the queue failed, but
    /// the local facet has changes it lacks: taken as the reference, the remote rebuilt the local facet without them.
    /// </summary>
    [TestMethod]
    public async Task StateDiskComesBackAsItWas_AfterTheRemoteDroppedOut_TheLocalFacetKeepsItsNewerWrites()
    {
        const int Block = 64 * 1024;
        var linked = new LinkedRemote();
        await using VolumeFixture fx = linked.Fixture("folder", Block);
        using var scratch = new TempDir("stale-state");
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Pattern(Block, 1));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        string stateDisk = scratch.Sub("state-at-death");
        CopyTree(fx.Options.StateDir, stateDisk);

        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("state disk: input/output error");
        await v.WriteAsync(id, 0, Pattern(Block, 2)); // to the local facet and, synchronously, the remote
        Assert.IsTrue(v.QueueFailed);
        linked.Link.Down = true;
        byte[] last = Pattern(Block, 3);
        await v.WriteAsync(id, 0, last); // the remote fails it and drops out: the local facet alone has it
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"));
        long made = await v.CreateFileAsync("made-after-the-dropout");
        await v.WriteAsync(made, 0, Pattern(100, 4));
        await v.DisposeAsync();

        Directory.Delete(fx.Options.StateDir, recursive: true);
        CopyTree(stateDisk, fx.Options.StateDir);
        linked.Link.Down = false;
        v = await fx.OpenAsync();
        byte[] got = new byte[Block];
        Assert.AreEqual(Block, await v.ReadAsync((await v.StatAsync("f")).FileId, 0, got));
        CollectionAssert.AreEqual(last, got, "the local facet's newer write");
        Assert.IsNotNull(v.LookupId("made-after-the-dropout"), "the file made after the dropout");
        await Task.Delay(500);
        FacetStatus remote = v.GetStatus().Facets.Single(x => x.Name == "remote0");
        Assert.IsTrue(remote.Held, remote.Reason);
        CollectionAssert.AreEqual(last, File.ReadAllBytes(Path.Combine(fx.FacetPath("local0"), "f")), "not rebuilt from the remote");
    }

    /// <summary>
    /// After a run on a failed queue the remote's image counts the synchronous commits, numbered past the queue's tail,
    /// and the queue, working again at the next mount, numbers on from its own tail. A change made then and not yet in
    /// the image sits below the image's position: verify must skip it as changing, not report it missing from the remote.
    /// </summary>
    [TestMethod]
    public async Task AfterARunOnAFailedQueue_VerifyDoesNotTakeChangesMadeSinceForReceived()
    {
        const int Block = 64 * 1024;
        var linked = new LinkedRemote();
        await using VolumeFixture fx = linked.Fixture("folder", Block);
        MirrorVolume v = await fx.OpenAsync();
        long fid = await v.CreateFileAsync("f");
        await v.WriteAsync(fid, 0, Pattern(Block, 1));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        for (int i = 0; i < 20; i++)
        {
            await v.WriteAsync(fid, i * 100, Pattern(100, i + 2)); // a synchronous commit each, numbered past the queue's tail
        }
        Assert.IsTrue(v.QueueFailed);
        Assert.AreEqual(0, (await v.VerifyAsync("remote0", repair: false)).Differences.Count, "in the failed-queue run too");
        ((IReplicationHost)v).Queue.InjectedStorageFailure = null;
        v = await fx.ReopenAsync();
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        Assert.AreEqual(0, (await v.VerifyAsync("remote0", repair: false)).Differences.Count, "what the remote holds matches");

        linked.Link.RoundTrip = TimeSpan.FromSeconds(3); // the remote is slow to take what comes next, and stays Synchronised
        long gid = await v.CreateFileAsync("g");
        await v.WriteAsync(gid, 0, Pattern(Block, 40));
        v.VerifyDrainBudget = TimeSpan.FromMilliseconds(200);
        VerifyReport report = await v.VerifyAsync("remote0", repair: false);
        Assert.AreEqual(0, report.Differences.Count, string.Join("; ", report.Differences.Select(d => $"{d.Path}: {d.What}")));
        Assert.IsTrue(report.BlocksSkipped > 0, "the new file is skipped as changing");
        linked.Link.RoundTrip = TimeSpan.Zero;
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        VerifyReport after = await v.VerifyAsync("remote0", repair: false);
        Assert.AreEqual(0, after.Differences.Count);
        Assert.AreEqual(0, after.BlocksSkipped, "once it has landed, the new file is compared");
    }

    /// <summary>
    /// In the failed-queue mode a remote gets each change synchronously, over whatever link it has. Its file and the
    /// folder whose names changed must carry the times the local facet's took, as the replicator stamps them, not the
    /// moment the change crossed a slow link.
    /// </summary>
    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task FailedQueueMode_TheRemoteGetsTheLocalFacetsModificationTimes(string remoteKind)
    {
        var linked = new LinkedRemote();
        await using VolumeFixture fx = linked.Fixture(remoteKind, 64 * 1024);
        MirrorVolume v = await fx.OpenAsync();
        await v.CreateDirectoryAsync("d");
        long fid = await v.CreateFileAsync("d/f");
        await v.WriteAsync(fid, 0, Pattern(1000, 1));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));

        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        linked.Link.RoundTrip = TimeSpan.FromMilliseconds(700);
        await v.WriteAsync(fid, 500, Pattern(1000, 2)); // acknowledged once the remote has it, 700 ms a call later
        await Task.Delay(100);
        await v.CreateFileAsync("d/g");
        Assert.IsTrue(v.QueueFailed);
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        linked.Link.RoundTrip = TimeSpan.Zero;

        string local = fx.FacetPath("local0");
        string remote = remoteKind == "directory" ? fx.FacetPath("remote0") : await fx.RemoteTreeAsync("remote0");
        foreach (string path in new[] { "d/f", "d" })
        {
            DateTime want = File.GetLastWriteTimeUtc(Path.Combine(local, path)), got = File.GetLastWriteTimeUtc(Path.Combine(remote, path));
            Assert.IsTrue(Math.Abs((got - want).TotalMilliseconds) < 300, $"{path}: the local facet's time {want:O}, the remote's {got:O}");
        }
    }

    /// <summary>
    /// In the failed-queue mode a change is in the table of names before the remote written synchronously has it (its
    /// acknowledgement waits for that): verify must not compare the new names with a remote that has not taken them
    /// yet, and report the file missing there and the old name extra (reviewer's finding).
    /// </summary>
    [TestMethod]
    public async Task FailedQueueMode_VerifyDoesNotCompareChangesTheRemoteHasNotTakenYet()
    {
        SlowRenames? slow = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: 64 * 1024)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? slow = new SlowRenames(inner) : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        long fid = await v.CreateFileAsync("f");
        await v.WriteAsync(fid, 0, Pattern(1000, 1));
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        ((IReplicationHost)v).Queue.InjectedStorageFailure = new IOException("queue disk: input/output error");
        await v.WriteAsync(fid, 0, Pattern(1000, 2));
        Assert.IsTrue(v.QueueFailed);

        slow!.Delay = TimeSpan.FromSeconds(3);
        Task renaming = v.RenameAsync("f", "g").AsTask(); // in the table at once; on the remote 3 s later
        await Task.Delay(300);
        v.VerifyDrainBudget = TimeSpan.FromMilliseconds(100);
        VerifyReport report = await v.VerifyAsync("remote0", repair: false);
        Assert.AreEqual(0, report.Differences.Count, string.Join("; ", report.Differences.Select(d => $"{d.Path}: {d.What}")));
        Assert.IsFalse(renaming.IsCompleted, "the premise: verify ran while the remote had not taken the rename");
        await renaming;
        VerifyReport after = await v.VerifyAsync("remote0", repair: false);
        Assert.AreEqual(0, after.Differences.Count, string.Join("; ", after.Differences.Select(d => $"{d.Path}: {d.What}")));
        Assert.IsTrue(after.BlocksCompared > 0, "once the remote has it, the file is compared");
    }

    /// <summary>A facet whose renames take <see cref="Delay"/> to happen.</summary>
    private sealed class SlowRenames(IFacet inner) : FacetDecorator(inner)
    {
        public TimeSpan Delay { get; set; }

        public override async ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
        {
            await Task.Delay(Delay, cancellationToken);
            await base.RenameAsync(from, to, cancellationToken);
        }
    }

    /// <summary>One local and one remote facet behind a simulated link the test can slow or cut.</summary>
    private sealed class LinkedRemote
    {
        public SimulatedLink Link => _link ?? throw new InvalidOperationException("the volume is not open yet");

        private SimulatedLink? _link;

        public VolumeFixture Fixture(string remoteKind, int blockSize) => new(locals: 1, remotes: 1, blockSize: blockSize, remoteKind: remoteKind)
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? _link = new SimulatedLink(inner) : inner,
        };
    }

    private static byte[] Pattern(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static void CopyTree(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (string dir in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }
        // A live folder: the lock is held, an atomic write's temporary file may be open or already renamed, and a file
        // listed may be gone by its copy (it was not on the disk at that moment either).
        foreach (string file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories)
            .Where(f => Path.GetFileName(f) != "volume.lock" && !f.EndsWith(".tmp", StringComparison.Ordinal)))
        {
            try
            {
                File.Copy(file, Path.Combine(to, Path.GetRelativePath(from, file)), overwrite: true);
            }
            catch (FileNotFoundException)
            {
            }
        }
    }
}
