using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

[TestClass]
public sealed class ReplicationTests
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(60);

    public static string Describe(MirrorVolume v)
        => "drain did not finish: " + string.Join("; ", v.GetStatus().Facets.Select(f =>
            $"{f.Name} {f.State} queued={f.QueuedEntries} dirty={f.DirtyLocations} reason={f.Reason} head={v.GetQueueCursor(f.Name)?.Head} tail={v.GetQueueCursor(f.Name)?.Tail} active={v.GetQueueCursor(f.Name)?.Active}"));

    private static byte[] Bytes(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A little of everything: directories, files, writes, a rename, a delete, a truncate.</summary>
    public static async Task WorkloadAsync(MirrorVolume v, int seed, int files = 6)
    {
        var rnd = new Random(seed);
        string dir = $"d{seed}";
        await v.CreateDirectoryAsync(dir);
        var ids = new List<(long Id, string Path)>();
        for (int i = 0; i < files; i++)
        {
            string p = $"{dir}/f{i}";
            ids.Add((await v.CreateFileAsync(p), p));
        }
        for (int i = 0; i < 60; i++)
        {
            var (id, _) = ids[rnd.Next(ids.Count)];
            await v.WriteAsync(id, rnd.Next(0, 400_000), Bytes(rnd.Next(1, 70_000), rnd.Next()));
        }
        await v.RenameAsync(ids[0].Path, $"{dir}/renamed");
        await v.DeleteFileAsync(ids[1].Path);
        await v.SetLengthAsync(ids[2].Id, 1234);
    }

    private static async Task<VolumeFixture> OpenAsync(int locals, int remotes, Func<FacetOptions, IFacet, IFacet>? wrap = null, QueueOptions? queue = null,
        OverflowPolicy overflow = OverflowPolicy.Unsync, string remoteKind = "directory")
    {
        var fx = new VolumeFixture(locals, remotes, queue: queue, overflow: overflow, remoteKind: remoteKind) { Replicate = true, Wrap = wrap };
        await fx.OpenAsync();
        return fx;
    }

    [TestMethod]
    public async Task ATrickleWaitsForTheLinger_ButABurstStartedDuringItIsSentAtOnce()
    {
        // Waiting the whole linger once a burst had begun started a 1 GB/s copy's remote 200 MB behind.
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Linger = TimeSpan.FromSeconds(30) };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Bytes(100, 1));
        long trickle = v.GetQueueCursor("remote0")!.Tail;
        await Task.Delay(500);
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Head < trickle, "a trickle waits for the linger: " + Describe(v));

        // A trickle ends once a quarter of a batch waits: 4 MiB here (16 MiB batches against the fixture's 64 MiB queue).
        // The writes up to there go out within a 10 ms look; what follows may start a new trickle, and wait its linger.
        byte[] burst = Bytes(8 << 20, 2);
        long fourth = 0;
        for (int i = 0; i < 8; i++)
        {
            await v.WriteAsync(id, 100 + (i << 20), burst.AsMemory(i << 20, 1 << 20));
            if (i == 3)
            {
                fourth = v.GetQueueCursor("remote0")!.Tail;
            }
        }
        await Wait.UntilAsync(() => v.GetQueueCursor("remote0")!.Head >= fourth, "the burst's first 4 MiB on the remote: " + Describe(v), TimeSpan.FromSeconds(5));
        byte[] remote = await File.ReadAllBytesAsync(Path.Combine(fx.FacetPath("remote0"), "f"));
        CollectionAssert.AreEqual(burst[..(4 << 20)], remote[100..(100 + (4 << 20))]);
    }

    [TestMethod]
    [DoNotParallelize] // counts the process's background work: not while another test class replicates
    public async Task AFolderRemoteThatKeepsUp_WritesItsObjectsInTheBackground_UnlessTheOptionIsOff()
    {
        foreach (bool background in new[] { true, false })
        {
            await using var fx = new VolumeFixture(1, 1, remoteKind: "folder") { Replicate = true, BackgroundWhileWithin = background ? TimeSpan.FromMinutes(10) : TimeSpan.Zero };
            MirrorVolume v = await fx.OpenAsync();
            long before = CloudMirrorFs.Storage.BackgroundWork.Taken;
            long id = await v.CreateFileAsync("f");
            byte[] data = Bytes(2 << 20, 44);
            await v.WriteAsync(id, 0, data);
            Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
            long ran = CloudMirrorFs.Storage.BackgroundWork.Taken - before;
            if (background)
            {
                Assert.IsTrue(ran >= (2 << 20) / fx.Options.BlockSize, $"each block's object in the background: {ran}");
            }
            else
            {
                Assert.AreEqual(0, ran, "with the option off, nothing runs in the background");
            }
            CollectionAssert.AreEqual(data, await File.ReadAllBytesAsync(Path.Combine(await fx.RemoteTreeAsync("remote0"), "f")));
        }
    }

    [TestMethod]
    public void BackgroundFor_OnlyWhileTheReplicatorKeepsUp()
    {
        var options = new ReplicationOptions();
        TimeSpan within = options.BackgroundWhileWithin;
        DateTime now = new(2026, 11, 25, 4, 0, 0, DateTimeKind.Utc);
        Assert.AreEqual(within / 2, Replicator.BackgroundFor(options, spilling: false, localServes: true, now - within / 2, now));
        Assert.AreEqual(TimeSpan.Zero, Replicator.BackgroundFor(options, spilling: false, localServes: true, now - within * 3, now), "fallen behind in time");
        Assert.AreEqual(within, Replicator.BackgroundFor(options, spilling: false, localServes: true, now + TimeSpan.FromHours(1), now), "a clock stepped back: never longer than the window");
        Assert.AreEqual(TimeSpan.Zero, Replicator.BackgroundFor(options, spilling: true, localServes: true, now, now), "the queue spills: catch up on every core");
        Assert.AreEqual(TimeSpan.Zero, Replicator.BackgroundFor(options, spilling: false, localServes: false, now, now), "writes wait for the remote");
        Assert.AreEqual(TimeSpan.Zero, Replicator.BackgroundFor(options with { BackgroundWhileWithin = TimeSpan.Zero }, spilling: false, localServes: true, now, now), "off");
    }

    [TestMethod]
    public async Task AFileRewrittenThenLeftAlone_LeavesOnlyItsLastVersionOnAnObjectStore()
    {
        // A short run of rewrites frees fewer superseded blocks than a landing collects at once, and no checkpoint is
        // due: the replicator's idle moment deletes them, so the remote does not hold old versions until the next burst.
        await using VolumeFixture fx = await OpenAsync(1, 1, remoteKind: "folder");
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("f");
        byte[] data = [];
        for (int round = 0; round < 5; round++)
        {
            data = Bytes(4 * 64 * 1024, 600 + round); // four blocks, whole
            await v.WriteAsync(id, 0, data);
            Assert.IsTrue(await v.DrainAsync(Drain), Describe(v)); // a commit each
        }
        string objects = Path.Combine(fx.FacetPath("remote0"), "data");
        int Count() => Directory.GetFiles(objects, "*", SearchOption.AllDirectories).Length;
        await Wait.UntilAsync(() => Count() == 4, $"the remote holds the file's four blocks, not their older versions ({Count()}: {string.Join(", ", Directory.GetFiles(objects, "*", SearchOption.AllDirectories).Select(Path.GetFileName))})",
            TimeSpan.FromSeconds(30));
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(await fx.RemoteTreeAsync("remote0"), "f")));
    }

    [TestMethod]
    [DataRow(1, 1, "directory")]
    [DataRow(1, 2, "directory")]
    [DataRow(2, 1, "directory")]
    [DataRow(1, 1, "folder")]
    [DataRow(1, 2, "folder")]
    public async Task Drain_Configurations_EveryRemoteEqualsTheLocal(int locals, int remotes, string kind)
    {
        await using VolumeFixture fx = await OpenAsync(locals, remotes, remoteKind: kind);
        await WorkloadAsync(fx.Volume, 1);
        await WorkloadAsync(fx.Volume, 2);
        Assert.IsTrue(await fx.Volume.DrainAsync(Drain), Describe(fx.Volume));
        for (int r = 0; r < remotes; r++)
        {
            TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync($"remote{r}"), $"remote{r}");
            Assert.AreEqual(FacetState.Synchronised, fx.Volume.GetFacetState($"remote{r}"));
            Assert.AreEqual(0, fx.Volume.GetQueueCursor($"remote{r}")!.Count);
        }
        if (locals == 2)
        {
            TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("local1"), "local1");
        }
    }

    [TestMethod]
    public async Task FailureTable_LocalDiskFails_TransparentToWriter_ReadsAndWritesGoToTheRemote()
    {
        // Seed 000 failure table, row 1: 1 local, 1 remote async; the local disk fails, the queue is intact.
        await using VolumeFixture fx = await OpenAsync(1, 1);
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("keep.bin");
        byte[] first = Bytes(300_000, 1);
        await v.WriteAsync(id, 0, first);

        fx.Faults["local0"].Offline = true; // the disk is gone
        byte[] second = Bytes(100_000, 2);
        await v.WriteAsync(id, 300_000, second); // Result: transparent to the initiator
        long other = await v.CreateFileAsync("made-while-degraded");
        await v.WriteAsync(other, 0, Bytes(5000, 3));

        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("local0"), "Result: the local facet is marked unsynchronised");
        Assert.IsTrue(v.IsDegraded);
        byte[] got = new byte[400_000];
        Assert.AreEqual(400_000, await v.ReadAsync(id, 0, got));
        CollectionAssert.AreEqual(first.Concat(second).ToArray(), got, "reads are served by the remote");
        Assert.AreEqual(5000, (await v.StatAsync("made-while-degraded")).Length);
        CollectionAssert.AreEqual(first.Concat(second).ToArray(), File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "keep.bin")),
            "every acknowledged write is on the remote");
        var (dirty, _, ns) = v.GetDirtyMap("local0");
        Assert.IsTrue(dirty.Contains(new Location(id, 300_000 / v.BlockSize)) && ns, "Recovery: the failed facet's dirty map names what a new disk needs");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task LocalDiskAndLinkBothDown_ReadsAndWritesFailAfterDegradedTimeout_NotHang_AndTheWriteStillReachesTheRemote()
    {
        SimulatedLink? link = null;
        var timeout = TimeSpan.FromMilliseconds(800);
        TimeSpan hang = TimeSpan.FromSeconds(15); // a TimeoutException past this: the operation hung
        await using var fx = new VolumeFixture(1, 1, degradedTimeout: timeout)
        {
            Replicate = true, Wrap = (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f) : f,
        };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        byte[] first = Bytes(300_000, 1);
        await v.WriteAsync(id, 0, first);
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));

        fx.Faults["local0"].Offline = true;
        link!.Down = true;
        byte[] second = Bytes(1000, 2);
        var clock = Stopwatch.StartNew();
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.WriteAsync(id, 100, second).AsTask().WaitAsync(hang));
        Assert.AreEqual(MirrorError.Unavailable, e.Error);
        Assert.IsTrue(clock.Elapsed >= timeout && clock.Elapsed < hang, $"failed after {clock.Elapsed}");
        StringAssert.Contains(e.Message, "remote facet 'remote0' has been unreachable");
        Assert.AreEqual(FacetState.Offline, v.GetFacetState("remote0"));

        clock.Restart();
        e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await v.ReadAsync(id, 200_000, new byte[4096]).AsTask().WaitAsync(hang));
        Assert.AreEqual(MirrorError.Unavailable, e.Error, "bytes only the unreachable remote holds cannot be served");
        Assert.IsTrue(clock.Elapsed < hang, $"failed after {clock.Elapsed}");

        link.Down = false;
        byte[] got = new byte[300_000];
        Assert.AreEqual(300_000, await v.ReadAsync(id, 0, got), "with the link back, the remote serves");
        byte[] want = (byte[])first.Clone();
        second.CopyTo(want, 100);
        CollectionAssert.AreEqual(want, got, "the write that timed out was queued: it reached the remote, in order");
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        CollectionAssert.AreEqual(want, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")));
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task FailureTable_RemoteRebooted_QueueFills_AutomaticRecovery(string kind)
    {
        // Row 2: the remote target is rebooted. Outstanding writes go back to the head; the queue fills with changes;
        // failure transparent; recovery automatic once the remote is back.
        SimulatedLink? link = null;
        await using VolumeFixture fx = await OpenAsync(1, 1, wrap: (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f) : f, remoteKind: kind);
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Bytes(10_000, 1));
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));

        link!.Down = true;
        for (int i = 0; i < 50; i++)
        {
            await v.WriteAsync(id, i * 10_000L, Bytes(10_000, 100 + i));
        }
        await Task.Delay(300);
        Assert.AreEqual(FacetState.Offline, v.GetFacetState("remote0"));
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count >= 50, "the queue holds the changes");
        Assert.IsFalse(await v.DrainAsync(TimeSpan.FromMilliseconds(300)), "drain cannot finish while the remote is down");

        link.Down = false; // back online: nobody intervenes
        Assert.IsTrue(await v.DrainAsync(Drain), "recovery is automatic");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"), "the queue covered the outage: no resync was needed");
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task ChmodOfTheRoot_ReachesTheRemote_WhichStaysSynchronised(string kind)
    {
        // An object store used to refuse the root's attributes ("no such file or directory"): the remote fell to
        // NotSynchronised and a resync, and a restore gave the root 0755.
        await using VolumeFixture fx = await OpenAsync(1, 1, remoteKind: kind);
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Bytes(1000, 1));
        var mode = (UnixFileMode)0b111_101_000;
        await v.SetAttributesAsync("", new AttributeChange { Mode = mode });
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"), Describe(v));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"));
        Assert.AreEqual(mode, File.GetUnixFileMode(await fx.RemoteTreeAsync("remote0")) & (UnixFileMode)0b111_111_111);
    }

    [TestMethod]
    public async Task RemoteThatOpensButRefusesWrites_StaysOffline_WithoutFlapping()
    {
        // A half-working remote: it answers (open succeeds) but every write fails. Each retry used to bring it back
        // to Synchronised on the open and drop it to Offline on the write, two log lines and two state saves a time.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Logs = recording };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Bytes(10_000, 1));
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));

        fx.Faults["remote0"].FailWrite = (_, _, _) => true;
        for (int i = 1; i <= 5; i++)
        {
            await v.WriteAsync(id, i * 10_000L, Bytes(10_000, 100 + i));
        }
        for (int i = 0; i < 500 && v.GetFacetState("remote0") != FacetState.Offline; i++)
        {
            await Task.Delay(10);
        }
        var seen = new HashSet<FacetState>();
        var until = DateTime.UtcNow.AddSeconds(1.5); // retries every 10-200 ms: several of them
        while (DateTime.UtcNow < until)
        {
            seen.Add(v.GetFacetState("remote0"));
            await Task.Delay(2);
        }
        string log = string.Join("\n", recording.Messages);
        Assert.AreEqual(FacetState.Offline, v.GetFacetState("remote0"), log);
        Assert.IsFalse(seen.Contains(FacetState.Synchronised), "the remote never looked synchronised while refusing writes\n" + log);
        Assert.AreEqual(1, recording.Messages.Count(m => m.Contains("remote0: Synchronised -> Offline", StringComparison.Ordinal)), log);
        Assert.AreEqual(0, recording.Messages.Count(m => m.Contains("remote0: Offline -> Synchronised", StringComparison.Ordinal)), log);

        fx.Faults["remote0"].FailWrite = null; // the remote is whole again: one line says so
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        Assert.AreEqual(1, recording.Messages.Count(m => m.Contains("remote0: Offline -> Synchronised", StringComparison.Ordinal)), string.Join("\n", recording.Messages));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"), "the queue covered the time it refused writes");
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    public async Task QueueStateFileCannotBeSaved_ReplicatorStallsVisiblyOnce_ThenCarriesOn()
    {
        // The queue's cursor file cannot be replaced (its temp name is taken by a folder: as good as a full disk for
        // that one file) when a resync re-attaches the facet. The replicator used to log the same error with a stack
        // trace every 5 s, and 'cmfs status' showed nothing but "resync in progress".
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Logs = recording };
        MirrorVolume v = await fx.OpenAsync();
        string blocker = Path.Combine(fx.Options.StateDir, "queue", "cursors.json.tmp");
        Directory.CreateDirectory(blocker);
        try
        {
            await StallThenCarryOnAsync(v, fx, recording, blocker);
        }
        finally
        {
            if (Directory.Exists(blocker))
            {
                Directory.Delete(blocker); // the close saves the cursors too
            }
        }
    }

    private static async Task StallThenCarryOnAsync(MirrorVolume v, VolumeFixture fx, RecordingLoggerFactory recording, string blocker)
    {
        long id = await v.CreateFileAsync("f");
        byte[] data = Bytes(300_000, 3);
        await v.WriteAsync(id, 0, data);
        v.RequestResync("remote0", full: false); // a resync starts by re-attaching the facet's cursor: the file is saved
        string Reason() => v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "";
        for (int i = 0; i < 500 && !Reason().StartsWith("stalled", StringComparison.Ordinal); i++)
        {
            await Task.Delay(10);
        }
        await Task.Delay(1000); // retried meanwhile (MaxRetryDelay is 200 ms here)
        string reason = Reason();
        string log = string.Join("\n", recording.Messages);
        StringAssert.StartsWith(reason, "stalled", log);
        StringAssert.Contains(reason, "cursors.json", log);
        Assert.AreEqual(1, recording.Messages.Count(m => m.Contains("cursors.json", StringComparison.Ordinal) && m.Contains("retrying", StringComparison.Ordinal)), log);
        Assert.IsFalse(log.Contains("   at ", StringComparison.Ordinal), "no stack trace for a file the OS refused\n" + log);

        Directory.Delete(blocker);
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        Assert.IsNull(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason, "the stall's reason goes once it carries on");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")));
    }

    [TestMethod]
    [DataRow(true, DisplayName = "emptied while the volume runs")]
    [DataRow(false, DisplayName = "emptied while the volume is closed")]
    public async Task RemoteStoreEmptiedOutsideCmfs_IsSentEverythingAgain_NotReportedSynchronisedOverNothing(bool whileOpen)
    {
        // A lifecycle rule, an operator's rm -rf, a bucket swapped for a new one: the store loses everything. It used
        // to take the next commit as if it still held the image before it (drain said "drained", status said
        // Synchronised, and a restore found no volume.json, or after a reopen an empty volume).
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remoteKind: "folder") { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 11);

        string store = fx.FacetPath("remote0");
        if (!whileOpen)
        {
            v = await CloseThen(fx, () => Directory.Delete(store, recursive: true));
        }
        else
        {
            Directory.Delete(store, recursive: true);
        }
        await WorkloadAsync(v, 12); // changes after the wipe: replicated into the empty store
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v) + "\n" + string.Join("\n", recording.Messages));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0")); // a restore of the store alone: both workloads
        Assert.IsTrue(recording.Messages.Any(m => m.Contains("emptied or replaced outside cmfs", StringComparison.Ordinal)), string.Join("\n", recording.Messages));
    }

    [TestMethod]
    [DataRow(true, DisplayName = "folder deleted and made again")]
    [DataRow(false, DisplayName = "folder kept, its contents deleted")]
    public async Task DirectoryRemoteEmptiedWhileClosed_IsNotSynchronisedAtOpen_AndSentEverythingAgain(bool folderToo)
    {
        // A directory remote has no descriptor to carry an identity: emptied while the volume was closed, it used to
        // open Synchronised over nothing, and stay so until a write to a file it lacked was refused.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 21);

        string remote = fx.FacetPath("remote0");
        fx.Replicate = false; // the states as the open left them, before a replicator moves them on
        v = await CloseThen(fx, () =>
        {
            if (folderToo)
            {
                Directory.Delete(remote, recursive: true);
                Directory.CreateDirectory(remote);
                return;
            }
            foreach (string e in Directory.EnumerateFileSystemEntries(remote))
            {
                if (Directory.Exists(e))
                {
                    Directory.Delete(e, recursive: true);
                }
                else
                {
                    File.Delete(e);
                }
            }
        });
        string log = string.Join("\n", recording.Messages);
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("remote0"), "an empty remote is not called Synchronised\n" + log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "empty", log);
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        TreeAssert.Equal(fx.FacetPath("local0"), remote);
    }

    [TestMethod]
    public async Task QueueCursorFileDeletedWhileClosed_RecordsKeptAreStillSent_RemoteEqualsLocal()
    {
        // Records written while the remote lagged, kept by a clean close; then cursors.json goes. The remote used to
        // stay Synchronised with its cursor put at the tail: the kept records were never sent.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 31);
        fx.Replicate = false;
        v = await CloseThen(fx, () => { });
        await WorkloadAsync(v, 32); // kept in the queue: nothing sends it in this run
        fx.Replicate = true;
        v = await CloseThen(fx, () => File.Delete(Path.Combine(fx.Options.StateDir, "queue", "cursors.json")));
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v) + "\n" + string.Join("\n", recording.Messages));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
        Assert.IsTrue(recording.Messages.Any(m => m.Contains("cursors.json is missing", StringComparison.Ordinal)), string.Join("\n", recording.Messages));
    }

    [TestMethod]
    public async Task DirtyMapsDamagedWhileClosed_RemoteIsResynchronisedInFull_SynchronisedLocalKeepsServing()
    {
        // A damaged map loses which locations a facet misses. The remote's used to be read as "all dirty" while the
        // facet stayed Synchronised, so the full resync the log announced never ran and status showed DIRTY "all"
        // on a Synchronised remote for good.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 41);
        fx.Replicate = false; // the states as the open left them, before a replicator moves them on
        v = await CloseThen(fx, () =>
        {
            foreach (string name in new[] { "local0", "remote0" })
            {
                File.WriteAllBytes(Path.Combine(fx.Options.StateDir, "dirty", name + ".map"), Bytes(64, 9));
            }
        });
        string log = string.Join("\n", recording.Messages);
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("local0"), "a Synchronised local facet's map named nothing: it keeps serving\n" + log);
        var (localDirty, localFull, localNamespace) = v.GetDirtyMap("local0");
        Assert.IsTrue(localDirty.Count == 0 && !localFull && !localNamespace, log);
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("remote0"), log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "dirty map", log);
        await WorkloadAsync(v, 42);
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        var (remoteDirty, remoteFull, _) = v.GetDirtyMap("remote0");
        Assert.IsTrue(remoteDirty.Count == 0 && !remoteFull, "the resync emptied the map");
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
    }

    [TestMethod]
    [DataRow(true, DisplayName = "queue folder deleted")]
    [DataRow(false, DisplayName = "queue files deleted, folder kept (a disk not mounted under it)")]
    public async Task QueueLostWhileClosed_RemoteIsResynchronisedInFull_NothingItHeldIsMissed(bool folderToo)
    {
        // The queue on a disk of its own that is not mounted at the next start, or deleted by hand: a new, empty queue
        // is made. It used to be taken as the old one: what it held for the remote was never sent, and the remote
        // stayed Synchronised without it.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1) { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 51);
        fx.Replicate = false;
        v = await CloseThen(fx, () => { });
        await WorkloadAsync(v, 52); // held by the queue only: nothing sends it in this run
        string queue = Path.Combine(fx.Options.StateDir, "queue");
        v = await CloseThen(fx, () =>
        {
            if (folderToo)
            {
                Directory.Delete(queue, recursive: true);
                return;
            }
            foreach (string f in Directory.GetFiles(queue))
            {
                File.Delete(f);
            }
        });
        string log = string.Join("\n", recording.Messages);
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "is not the one that fed it", log);
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
    }

    [TestMethod]
    public async Task StoreWrittenByAnotherStateMeanwhile_IsResynchronisedInFull_NotCalledSynchronisedOverTheOthersTree()
    {
        // Two cmfs states took turns on one store: another machine's volume, or a new state made while this one's
        // disk was not mounted. This volume used to open the store Synchronised and go on committing on top of the
        // other's tree (drain said "drained"); every commit now names the queue that fed it, and another name at open
        // means a full resync from this volume.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remoteKind: "folder") { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 71);
        await v.DisposeAsync();
        await using (var other = new VolumeFixture(1, 1, remoteKind: "folder", remotePath: _ => fx.FacetPath("remote0")) { Replicate = true, Logs = recording })
        {
            MirrorVolume o = await WrittenAndDrainedAsync(other, 72);
            Assert.IsTrue(await o.DrainAsync(Drain), Describe(o));
        }
        fx.Replicate = false;
        v = await fx.OpenAsync();
        string log = string.Join("\n", recording.Messages);
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "written by another cmfs state", log);
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task LocalFolderEditedWhileNotRunning_RemoteIsResynchronisedWithTheEdits(string remoteKind)
    {
        // The local facet is a plain folder: edited while the drive is not mounted, nothing of it goes through the
        // queue. The remote used to stay Synchronised without the edits (drain said "drained", verify found them).
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remoteKind: remoteKind) { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 61);
        fx.Replicate = false;
        v = await CloseThen(fx, () => { });
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"), "a clean close and open with nothing edited marks nothing\n" + string.Join("\n", recording.Messages));

        string local = fx.FacetPath("local0");
        string[] files = [.. Directory.GetFiles(local, "*", SearchOption.AllDirectories).Where(f => new FileInfo(f).Length > 0).Order(StringComparer.Ordinal)];
        Assert.IsTrue(files.Length >= 3, string.Join(", ", files));
        v = await CloseThen(fx, () =>
        {
            Thread.Sleep(20); // past the close's time at any clock granularity
            using (var edit = new FileStream(files[0], FileMode.Open, FileAccess.Write))
            {
                edit.Position = 10;
                edit.Write(Bytes(5000, 62)); // in place
            }
            File.Delete(files[1]);
            Directory.CreateDirectory(Path.Combine(local, "added-offline"));
            File.WriteAllBytes(Path.Combine(local, "added-offline", "new.bin"), Bytes(300_000, 63));
        });
        string log = string.Join("\n", recording.Messages);
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "outside cmfs", log);
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        TreeAssert.Equal(local, await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    public async Task LocalFileReplacedWhileNotRunning_KeepingItsOldMtime_IsStillFound()
    {
        // cp -p, rsync -a and tar x give the file they write the source's (older) mtime. Only its ctime tells that it
        // changed since the close: the open used to read the older of mtime and ctime as the change time, and missed it.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remoteKind: "folder") { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 64);
        fx.Replicate = false;
        string local = fx.FacetPath("local0");
        string file = Directory.GetFiles(local, "*", SearchOption.AllDirectories).First(f => new FileInfo(f).Length > 0);
        DateTime old = File.GetLastWriteTimeUtc(file);
        v = await CloseThen(fx, () =>
        {
            Thread.Sleep(20); // past the close's time at any clock granularity
            File.WriteAllBytes(file, Bytes((int)new FileInfo(file).Length, 65));
            File.SetLastWriteTimeUtc(file, old - TimeSpan.FromDays(30));
        });
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), "a file rewritten outside cmfs with an old mtime went unnoticed");
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        TreeAssert.Equal(local, await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    public async Task CrashWhileARemoteIsNotSynchronised_ItsLostInMemoryRecordsAreStillMarked()
    {
        // The crash recovery put the locations of the in-memory records a crash lost into the dirty maps of the
        // Synchronised and Offline remotes only. A remote already NotSynchronised (a resync asked or under way) with
        // its cursor attached lost those writes for good: its own map did not name them, the queue no longer held them.
        await using var fx = new VolumeFixture(1, 1) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        long id = await v.CreateFileAsync("f");
        await v.WriteAsync(id, 0, Bytes(1 << 20, 71));
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        fx.Replicate = false;
        v = await CloseThen(fx, () => { });
        v.RequestResync("remote0", full: false); // NotSynchronised, cursor still attached
        await v.WriteAsync(id, 300_000, Bytes(50_000, 72)); // in place: the length does not change
        await v.SyncAsync();

        // A crash now: the state folder as it is while the volume runs (records in memory, their intent bits on disk).
        string state = fx.Options.StateDir, crashed = state + ".crashed";
        CopyTree(state, crashed);
        await v.DisposeAsync();
        Directory.Delete(state, recursive: true);
        Directory.Move(crashed, state);

        fx.Replicate = true;
        v = await fx.OpenAsync();
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
    }

    private static void CopyTree(string from, string to)
    {
        foreach (string dir in Directory.GetDirectories(from, "*", SearchOption.AllDirectories))
        {
            Directory.CreateDirectory(Path.Combine(to, Path.GetRelativePath(from, dir)));
        }
        Directory.CreateDirectory(to);
        foreach (string file in Directory.GetFiles(from, "*", SearchOption.AllDirectories).Where(f => Path.GetFileName(f) != "volume.lock"))
        {
            using var source = new FileStream(file, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var target = new FileStream(Path.Combine(to, Path.GetRelativePath(from, file)), FileMode.Create, FileAccess.Write);
            source.CopyTo(target);
        }
    }

    [TestMethod]
    public async Task NewestCommitsDeletedFromTheStoreWhileClosed_RemoteIsResynchronisedInFull()
    {
        // The newest commit objects of a folder store deleted (or damaged: the checksum turns that into the same):
        // the image ends at an older commit. It used to open Synchronised, so the files only the lost commits held
        // were missing from a restore for good.
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remoteKind: "folder") { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 81);
        long id = await v.CreateFileAsync("last.bin");
        await v.WriteAsync(id, 0, Bytes(200_000, 82));
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        string commits = Path.Combine(fx.FacetPath("remote0"), "commits");
        fx.Replicate = false; // the states as the open left them, before a replicator moves them on
        v = await CloseThen(fx, () => File.Delete(Directory.GetFiles(commits).Order(StringComparer.Ordinal).Last()));
        string log = string.Join("\n", recording.Messages);
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "were deleted or damaged", log);
        v = await ReopenReplicatingAndDrainAsync(fx, recording);
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    /// <summary>Opens the fixture's volume, writes workload <paramref name="seed"/> and drains it to every remote.</summary>
    private static async Task<MirrorVolume> WrittenAndDrainedAsync(VolumeFixture fx, int seed)
    {
        MirrorVolume v = await fx.OpenAsync();
        await WorkloadAsync(v, seed);
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        return v;
    }

    /// <summary>Closes the volume, opens it again with its replicators, and waits until every remote holds everything.</summary>
    private static async Task<MirrorVolume> ReopenReplicatingAndDrainAsync(VolumeFixture fx, RecordingLoggerFactory recording)
    {
        fx.Replicate = true;
        MirrorVolume v = await CloseThen(fx, () => { });
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v) + "\n" + string.Join("\n", recording.Messages));
        return v;
    }

    private static async Task<MirrorVolume> CloseThen(VolumeFixture fx, Action between)
    {
        await fx.Volume.DisposeAsync();
        between();
        return await fx.OpenAsync();
    }

    [TestMethod]
    public async Task FolderStoreDiskRemountedReadOnly_SaidOnceWithoutTempNames_CatchesUpOnceWritable()
    {
        // A folder store's disk gone read-only (remounted, or the kernel's errors=remount-ro). Its error used to carry
        // the random name of the temporary file each try wrote, so every retry logged a "new" message. (A directory
        // remote keeps its files open for writing, so this tmpfs cannot be remounted read-only under it.)
        const string remoteKind = "folder";
        using var disk = new SmallDisk(32);
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remoteKind: remoteKind, remotePath: _ => Path.Combine(disk.Path, "remote")) { Replicate = true, Logs = recording };
        MirrorVolume v = await WrittenAndDrainedAsync(fx, 91);
        disk.ReadOnly(true);
        try
        {
            await WorkloadAsync(v, 92); // acknowledged: the local disk takes it
            for (int i = 0; i < 1000 && v.GetFacetState("remote0") == FacetState.Synchronised; i++)
            {
                await Task.Delay(10);
            }
            await Task.Delay(1500); // retried meanwhile
            string log = string.Join("\n", recording.Messages);
            Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("remote0"), log);
            StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "read-only", log);
            Assert.IsFalse(log.Contains("cmfs-tmp", StringComparison.Ordinal), "no temporary file names in messages\n" + log);
            int lines = recording.Messages.Count(m => m.Contains("read-only", StringComparison.Ordinal));
            Assert.IsTrue(lines <= 6, $"said a few times, not at every retry ({lines} lines)\n{log}");
        }
        finally
        {
            disk.ReadOnly(false);
        }
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v) + "\n" + string.Join("\n", recording.Messages));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    public async Task RemoteDiskFills_WhileStateFilesCannotBeSaved_ReplicationResumesOnceSpaceIsBack()
    {
        // A real full disk under the remote (a 12 MiB tmpfs, 6 MiB of it taken), and a facet-state file that cannot
        // be saved (as when the state folder shares that disk). The replicator used to die on the failed save inside
        // its refusal handler: the remote then stayed NotSynchronised for the daemon's life, space or no space.
        using var disk = new SmallDisk(12);
        string ballast = disk.Ballast(6);
        using var recording = new RecordingLoggerFactory();
        await using var fx = new VolumeFixture(1, 1, remotePath: _ => Path.Combine(disk.Path, "remote")) { Replicate = true, Logs = recording };
        MirrorVolume v = await fx.OpenAsync();
        string blocker = FacetStateStore.FilePath(fx.Options.StateDir) + ".tmp";
        Directory.CreateDirectory(blocker); // the temp file of every save is a folder now: each save fails

        long id = await v.CreateFileAsync("big");
        byte[] all = Bytes(10 << 20, 7);
        for (int off = 0; off < all.Length; off += 1 << 20)
        {
            await v.WriteAsync(id, off, all.AsMemory(off, 1 << 20)); // every write is acknowledged: the local disk has room
        }
        for (int i = 0; i < 1000 && v.GetFacetState("remote0") == FacetState.Synchronised; i++)
        {
            await Task.Delay(10);
        }
        await Task.Delay(1500); // the refused resync is tried again and again meanwhile
        string log = string.Join("\n", recording.Messages);
        Assert.AreNotEqual(FacetState.Synchronised, v.GetFacetState("remote0"), log);
        StringAssert.Contains(v.GetStatus().Facets.Single(f => f.Name == "remote0").Reason ?? "", "no space left", log);
        Assert.AreEqual(1, recording.Messages.Count(m => m.Contains("could not save the facet states", StringComparison.Ordinal)), log);
        int refusals = recording.Messages.Count(m => m.Contains("falling back to a dirty-map resync", StringComparison.Ordinal));
        Assert.IsTrue(refusals is >= 1 and <= 2, $"a refusal is logged once, not at every retry ({refusals} times)\n{log}");
        int transitions = recording.Messages.Count(m => m.Contains("facet remote0:", StringComparison.Ordinal)
            && (m.Contains(" -> ", StringComparison.Ordinal) || m.Contains(": still ", StringComparison.Ordinal)));
        Assert.IsTrue(transitions <= 4, $"the state (or its reason) does not flap at every retry ({transitions} changes logged)\n{log}");

        File.Delete(ballast);
        Directory.Delete(blocker);
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v) + "\n" + string.Join("\n", recording.Messages));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        CollectionAssert.AreEqual(all, File.ReadAllBytes(Path.Combine(await fx.RemoteTreeAsync("remote0"), "big")), "the remote holds every byte written");
        Assert.IsTrue(File.ReadAllText(FacetStateStore.FilePath(fx.Options.StateDir)).Contains("\"Synchronised\"", StringComparison.Ordinal));
        Assert.IsFalse(File.ReadAllText(FacetStateStore.FilePath(fx.Options.StateDir)).Contains("NotSynchronised", StringComparison.Ordinal),
            "the states were saved again once the file could be written");
    }

    [TestMethod]
    public async Task FailureTable_RemoteDiskFails_QueueFillsAndIsFreed_ResyncToNewDisk()
    {
        // Row 3: the remote target's disk fails. Writes go to the tail of the queue; when it fills, the facet is
        // marked unsynchronised and its queue freed. Recovery: replace the disk, recreate the target, synchronise.
        SimulatedLink? link = null;
        await using VolumeFixture fx = await OpenAsync(1, 1, wrap: (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f) : f,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 1 << 20, SegmentSize = 256 * 1024 });
        MirrorVolume v = fx.Volume;
        await WorkloadAsync(v, 1);
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));

        link!.Down = true;
        long id = await v.CreateFileAsync("after-failure");
        for (int i = 0; i < 40; i++)
        {
            await v.WriteAsync(id, i * 50_000L, Bytes(50_000, i));
        }
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), "queue full: the facet is marked unsynchronised");
        Assert.AreEqual(0, v.GetQueueCursor("remote0")!.Count, "and its queue is freed");
        Assert.IsTrue(v.GetDirtyCount("remote0") > 0);

        // Replace the disk: an empty folder where the remote was.
        Directory.Delete(fx.FacetPath("remote0"), recursive: true);
        Directory.CreateDirectory(fx.FacetPath("remote0"));
        v.RequestResync("remote0", full: true);
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
    }

    [TestMethod]
    public async Task OverflowUnsync_ThenLinkReturns_DirtyMapResyncCopiesOnlyWhatChanged()
    {
        SimulatedLink? link = null;
        await using VolumeFixture fx = await OpenAsync(1, 1, wrap: (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f) : f,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 512 * 1024, SegmentSize = 128 * 1024 });
        MirrorVolume v = fx.Volume;
        long big = await v.CreateFileAsync("big");
        for (int i = 0; i < 64; i++)
        {
            await v.WriteAsync(big, i * 65536L, Bytes(65536, i));
        }
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        link!.Down = true;
        long sentBefore = link.BytesSent;
        for (int i = 0; i < 12; i++)
        {
            await v.WriteAsync(big, i * 5 * 65536L, Bytes(65536, 1000 + i)); // 12 of 64 blocks change
        }
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"));
        Assert.AreEqual(12, v.GetDirtyCount("remote0"), "the dirty map names exactly the changed blocks");
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
        long sent = link.BytesSent - sentBefore;
        Assert.IsTrue(sent <= 12 * 65536L * 2, $"resync sent {sent} bytes for 12 changed blocks: it copies what changed, not the volume");
    }

    [TestMethod]
    public async Task OverflowBlock_SlowLink_WritersWaitThenProceed()
    {
        SimulatedLink? link = null;
        await using VolumeFixture fx = await OpenAsync(1, 1, wrap: (o, f) => o.Role == FacetRole.Remote
                ? link = new SimulatedLink(f) { RoundTrip = TimeSpan.FromMilliseconds(5), BandwidthBytesPerSecond = 4 << 20 } : f,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 1 << 20, SegmentSize = 256 * 1024 }, overflow: OverflowPolicy.Block);
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("f");
        var sw = Stopwatch.StartNew();
        for (int i = 0; i < 60; i++)
        {
            await v.WriteAsync(id, i * 65536L, Bytes(65536, i)); // 3.75 MiB through a 1 MiB queue
        }
        Assert.IsTrue(sw.Elapsed > TimeSpan.FromMilliseconds(300), "writers were held back by the full queue");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"), "block never unsynchronises the facet");
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"));
    }

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task LinkDropsTwentyTimes_UnderContinuousWrites_WritersNeverStall_RemoteEqualsLocal()
    {
        SimulatedLink? link = null;
        await using VolumeFixture fx = await OpenAsync(1, 1, wrap: (o, f) => o.Role == FacetRole.Remote
            ? link = new SimulatedLink(f, seed: 5) { RoundTrip = TimeSpan.FromMilliseconds(10), Jitter = TimeSpan.FromMilliseconds(5), BandwidthBytesPerSecond = 20 << 20 } : f);
        MirrorVolume v = fx.Volume;
        var ids = new List<long>();
        for (int i = 0; i < 4; i++)
        {
            ids.Add(await v.CreateFileAsync($"f{i}"));
        }
        using var done = new CancellationTokenSource();
        var latencies = new List<double>();
        Task writer = Task.Run(async () =>
        {
            var rnd = new Random(3);
            byte[] buf = Bytes(16 * 1024, 9);
            while (!done.IsCancellationRequested)
            {
                long t0 = Stopwatch.GetTimestamp();
                await v.WriteAsync(ids[rnd.Next(ids.Count)], rnd.Next(0, 64) * 16384L, buf);
                latencies.Add(Stopwatch.GetElapsedTime(t0).TotalMilliseconds);
                buf[rnd.Next(buf.Length)]++;
                await Task.Delay(1); // a steady writer (about 10 MB/s), not a flood the link could never drain
            }
        });
        for (int drop = 0; drop < 20; drop++)
        {
            await Task.Delay(60);
            link!.Down = true;
            await Task.Delay(60);
            link.Down = false;
        }
        done.Cancel();
        await writer;
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), fx.FacetPath("remote0"));
        latencies.Sort();
        double p99 = latencies[latencies.Count * 99 / 100];
        // Enough samples for a p99 (about 2,000 on an idle machine; a loaded 2-core machine delays the 1 ms pauses).
        Assert.IsTrue(latencies.Count > 200, $"only {latencies.Count} writes in 2.4 s");
        Assert.IsTrue(p99 < 40, $"writer p99 {p99:0.00} ms: a dropping link (60 ms outages) must not stall writers");
        Assert.IsTrue(link!.Calls > 100);
    }

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task SpilledBacklog_SentToAnObjectStoreOverALinkThatDrops_RemoteEqualsLocal()
    {
        // A folder remote behind a link that is down while 12 MiB of 32 KiB writes go into a queue with 1 MiB of
        // memory: nearly all of them spill. The catch-up reads them back into the queue's read-back arena and the
        // remote keeps those bytes (a hold on their slab) until each commit lands, while the link drops again and
        // again and the writers go on overwriting what is queued. A hold given back too early would let a slab be
        // reused under a block the remote still has to upload: the restored remote would differ from the local.
        SimulatedLink? link = null;
        await using VolumeFixture fx = await OpenAsync(1, 1,
            wrap: (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f, seed: 11) { RoundTrip = TimeSpan.FromMilliseconds(2) } : f,
            queue: new QueueOptions { MemoryLimit = 1 << 20, DiskLimit = 512L << 20, SegmentSize = 4 << 20 }, remoteKind: "folder");
        MirrorVolume v = fx.Volume;
        var ids = new List<long>();
        for (int i = 0; i < 6; i++)
        {
            ids.Add(await v.CreateFileAsync($"f{i}"));
        }
        link!.Down = true;
        var rnd = new Random(17);
        async Task WriteSomeAsync(int count)
        {
            for (int i = 0; i < count; i++)
            {
                await v.WriteAsync(ids[rnd.Next(ids.Count)], rnd.Next(0, 64) * 32768L, Bytes(32 * 1024, rnd.Next()));
            }
        }
        await WriteSomeAsync(384);
        Assert.IsTrue(v.GetStatus().QueueDiskBytes > 8 << 20, $"the backlog spilled: {v.GetStatus().QueueDiskBytes} bytes on disk");
        for (int round = 0; round < 8; round++)
        {
            link.Down = false;
            Task writes = WriteSomeAsync(48);
            await Task.Delay(40 + (round * 15));
            link.Down = true;
            await writes;
        }
        link.Down = false;
        Assert.IsTrue(await v.DrainAsync(Drain), Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"));
    }

    [TestMethod]
    [Timeout(300_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task WriterKilled_Twenty_Rounds_RestartAndDrain_RemoteEqualsLocal(string kind)
    {
        for (int round = 0; round < 20; round++)
        {
            using var dir = new TempDir($"kill{round}");
            string state = dir.Sub("state"), local = dir.Sub("local"), remote = dir.Sub("remote");
            long memoryLimit = round % 2 == 0 ? 64L << 20 : 128 * 1024;
            await CrashTests.RunAndKillAsync(state, local, remote, memoryLimit, Path.Combine(dir.Path, "log"), seed: 77 + round,
                killAfterMs: 150 + round * 29 % 300, replicate: true, remoteKind: kind);
            await using (MirrorVolume v = await MirrorVolume.OpenAsync(CrashTests.Options(state, local, remote, memoryLimit, kind)))
            {
                Assert.IsTrue(await v.DrainAsync(Drain), $"round {round}: drain");
            }
            string tree = remote;
            if (kind == "folder")
            {
                tree = dir.Sub("restored");
                Directory.Delete(tree);
                await CloudMirrorFs.Objects.RemoteRestore.RestoreAsync(FacetFactory.CreateStore(CrashTests.Options(state, local, remote, memoryLimit, kind).Facets[1]), tree, null, null, default);
            }
            TreeAssert.Equal(local, tree, $"round {round}");
        }
    }
}
