using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Replication;

/// <summary>
/// A remote facet brought back by a dirty-map resync while writers keep writing (DESIGN.md promise 5: resync copies
/// what differs, and no write that arrives meanwhile is lost). The queue overflows under <c>unsync</c> while the link is
/// down; the link comes back slow, so the resync takes seconds, and drops once in the middle of it; four writers write
/// ranges, extend and truncate, rename, create and delete files all along. At the end the remote, the local facet and
/// the writers' model of every acknowledged change agree byte for byte. The other tests each pin down one way that
/// scenario lost changes: names changed between the reattach and the reconcile, or after the reconcile, a release
/// while the reconcile runs, and names changed while the queue's records were folded into the dirty map.
/// </summary>
[TestClass]
public sealed class RemoteResyncUnderWritersTests
{
    private const int Block = 64 * 1024;
    private const int Writers = 4;
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(60);

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task OverflowUnsync_ResyncOverASlowDroppingLink_WhileWritersWrite_RemoteEqualsLocalAndModel(string kind)
    {
        SimulatedLink? link = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: kind,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 512 * 1024, SegmentSize = 128 * 1024 })
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? link = new SimulatedLink(inner, seed: 7) : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        var writers = new Writer[Writers];
        for (int w = 0; w < Writers; w++)
        {
            writers[w] = await Writer.CreateAsync(v, w);
        }
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));

        // The link goes down; the changes overflow the queue, and the remote is released with a dirty map.
        link!.Down = true;
        var rng = new Random(3);
        for (int i = 0; i < 2000 && v.GetFacetState("remote0") != FacetState.NotSynchronised; i++)
        {
            await writers[rng.Next(Writers)].StepAsync();
        }
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), "the premise: the queue overflowed under unsync");
        for (int i = 0; i < 80; i++)
        {
            await writers[rng.Next(Writers)].StepAsync(); // straight to the dirty map
        }
        var (dirty, _, names) = v.GetDirtyMap("remote0");
        Assert.IsTrue(dirty.Count > 8 && names, $"the premise: the dirty map names the missed blocks ({dirty.Count}) and names ({names})");

        // Back, but slow: the resync takes seconds, with the writers going on all along.
        link.RoundTrip = TimeSpan.FromMilliseconds(10);
        link.BandwidthBytesPerSecond = 1 << 20;
        long sentBefore = link.BytesSent;
        using var stop = new CancellationTokenSource();
        int beingSynchronised = 0;
        Task watch = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                if (v.GetFacetState("remote0") == FacetState.BeingSynchronised)
                {
                    Interlocked.Increment(ref beingSynchronised);
                }
                await Task.Delay(2);
            }
        });
        int opsBefore = writers.Sum(w => w.Ops);
        var sw = Stopwatch.StartNew();
        Task writing = Task.WhenAll(writers.Select(w => Task.Run(() => w.RunAsync(stop.Token))));
        link.Down = false;

        // The link drops once while the resync is copying, and comes back.
        await Wait.UntilAsync(() => Volatile.Read(ref beingSynchronised) > 0 && link.BytesSent - sentBefore >= 4 * Block
                && v.GetFacetState("remote0") == FacetState.BeingSynchronised,
            $"the resync under way and some blocks copied ({link.BytesSent - sentBefore} bytes; {ReplicationTests.Describe(v)})", TimeSpan.FromSeconds(30));
        link.Down = true;
        await Task.Delay(400);
        FacetState duringDrop = v.GetFacetState("remote0");
        int seenBeforeDrop = Volatile.Read(ref beingSynchronised);
        link.Down = false;
        await Wait.UntilAsync(() => Volatile.Read(ref beingSynchronised) > seenBeforeDrop + 10, "the resync under way again after the drop", TimeSpan.FromSeconds(30));
        await Task.Delay(1500);
        await stop.CancelAsync();
        await writing;
        await watch;
        int ops = writers.Sum(w => w.Ops) - opsBefore;
        TimeSpan writersRan = sw.Elapsed;

        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreNotEqual(FacetState.Synchronised, duringDrop, "the drop interrupted the resync");
        Assert.IsTrue(ops > 100, $"the premise: the writers kept writing during the resync ({ops} changes in {writersRan.TotalSeconds:0.0} s)");
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"));
        string remote = await fx.RemoteTreeAsync("remote0");
        AssertEqualsModel(fx.FacetPath("local0"), writers, "the local facet");
        AssertEqualsModel(remote, writers, $"the {kind} remote");
        TreeAssert.Equal(fx.FacetPath("local0"), remote, $"the {kind} remote after its resync");
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public Task RenameAndRecreate_AfterTheReattach_BeforeTheReconcileLists_RemoteEqualsLocal(string kind)
        // The resync has reattached the queue, so the rename, the create and the write below are queued for the remote;
        // the reconcile then looks at the local facet and finds them done. Replayed after the copy onto that newer
        // tree, the rename moved the new 'a' over 'b', and the old file's blocks were lost.
        => ResyncAsync(kind,
            async v => await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(4 * Block, 1)),
            async v => await v.WriteAsync(v.LookupId("a")!.Value, 0, Pattern(4 * Block, 2)), // queued; the resync folds it into the dirty map
            holdAt: "local0",
            held: async v =>
            {
                await v.RenameAsync("a", "b");
                await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(Block, 3));
            });

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public Task DeleteAndRenameOver_AfterTheReconcile_BeforeTheCopy_RemoteEqualsLocal(string kind)
        // The reconcile lists the local facet before the delete and the rename below: the remote has 'a' and 'c' as
        // before. The copy of a's dirty block must then go to 'a', where the remote has that file until the queue's
        // rename moves it, not to 'c', where the local facet has it by now.
        => ResyncAsync(kind,
            async v =>
            {
                await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(4 * Block, 1));
                await v.WriteAsync(await v.CreateFileAsync("c"), 0, Pattern(4 * Block, 4));
            },
            async v => await v.WriteAsync(v.LookupId("a")!.Value, Block, Pattern(Block, 2)),
            holdAt: "remote0", // the reconcile has looked at the local facet
            held: async v =>
            {
                await v.DeleteFileAsync("c");
                await v.RenameAsync("a", "c");
            });

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public Task QueueOverflowsDuringTheReconcile_WhatItFoldedIsReconciledNext_RemoteEqualsLocal(string kind)
        // The queue overflows while the reconcile runs: the release folds the delete queued since the reattach into
        // the map's namespace mark. The reconcile, which began before, must not clear that mark when it ends, or no
        // later attempt reconciles the names again and the remote keeps the file.
        => ResyncAsync(kind,
            async v =>
            {
                await v.WriteAsync(await v.CreateFileAsync("x"), 0, Pattern(4 * Block, 1));
                await v.WriteAsync(await v.CreateFileAsync("y"), 0, Pattern(4 * Block, 2));
            },
            async v => await v.WriteAsync(v.LookupId("x")!.Value, 0, Pattern(Block, 3)),
            holdAt: "remote0", // reattached; the reconcile lists the remote
            held: async v =>
            {
                await v.DeleteFileAsync("y");
                for (int i = 0; i < 10; i++)
                {
                    await v.WriteAsync(v.LookupId("x")!.Value, i * (long)Block, Pattern(Block, 10 + i));
                }
                Assert.IsFalse(((IReplicationHost)v).Queue.CursorInfo("remote0").Active, "the premise: the queue overflowed and released the remote");
            },
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 512 * 1024, SegmentSize = 128 * 1024 });

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public Task RenameAndRecreate_WhileReleased_RemoteEqualsLocal(string kind)
        // Folded into the dirty map (a resync request folds what the queue holds, as an overflow does): the remote's 'a'
        // is another file than the local 'a' is now. An object store names its files, and kept the old id at 'a' while
        // the reconcile made 'b' with the same id: the two files' blocks were mixed.
        => ResyncAsync(kind,
            async v => await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(4 * Block, 1)),
            async v =>
            {
                await v.WriteAsync(v.LookupId("a")!.Value, 0, Pattern(4 * Block, 2));
                await v.RenameAsync("a", "b");
                await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(Block, 3));
            });

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public Task RenameOver_WhileReleased_RemoteEqualsLocal(string kind)
        // An editor's save (a file renamed over another) folded into the dirty map: the same name and length on both
        // sides, other bytes, and no block marked. The remote kept the old file.
        => ResyncAsync(kind,
            async v =>
            {
                await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(4 * Block, 1));
                await v.WriteAsync(await v.CreateFileAsync("b"), 0, Pattern(4 * Block, 2));
            },
            async v => await v.RenameAsync("a", "b"));

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public Task TruncateAndRegrow_WhileReleased_RemoteEqualsLocal(string kind)
        // Cut to one block and grown back to four: the same length as the remote's, three blocks of zeros where it
        // holds data.
        => ResyncAsync(kind,
            async v => await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(4 * Block, 1)),
            async v =>
            {
                long a = v.LookupId("a")!.Value;
                await v.SetLengthAsync(a, Block);
                await v.SetLengthAsync(a, 4 * Block);
            });

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task ResyncAskedForAgain_JustAsTheLastOneEnds_IsNotOverwrittenBySynchronised()
    {
        // The resync found its map empty; before it calls the facet Synchronised, another resync is asked for (a namespace
        // mark and NotSynchronised). Called Synchronised over that request, the facet kept its mark with nobody to act
        // on it: the replicator only resynchronises a facet that is not Synchronised, and drain never ended.
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block) { Replicate = true };
        MirrorVolume v = await fx.OpenAsync();
        await v.WriteAsync(await v.CreateFileAsync("a"), 0, Pattern(2 * Block, 1));
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        int asked = 0;
        v.BeforeSynchronised = slot =>
        {
            if (slot.Name == "remote0" && Interlocked.Increment(ref asked) == 1)
            {
                v.RequestResync("remote0", full: false);
            }
        };
        v.RequestResync("remote0", full: false);
        await Wait.UntilAsync(() => Volatile.Read(ref asked) > 0, "the first resync ends");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(10)), ReplicationTests.Describe(v));
        Assert.IsTrue(Volatile.Read(ref asked) >= 2, "the second request was acted on");
        Assert.IsTrue(v.GetDirtyMap("remote0") is { Locations.Count: 0, Namespace: false });
    }

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    [DataRow("directory")]
    [DataRow("folder")]
    public async Task ReleasedWhileTheCopyLands_AWriteToACopiedBlockIsNotForgotten(string kind)
    {
        // The resync has copied block 0 of 'a' and waits for the facet's flush before clearing its bit. Meanwhile 'a'
        // is written there again (queued: the cursor was reattached) and the queue overflows, releasing the cursor:
        // the release marks block 0, which is still marked, so nothing changes in the map. The resync then cleared the
        // bit it had copied, and with it the only thing that named the newer write.
        HeldFlushFacet? held = null;
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: Block, remoteKind: kind,
            queue: new QueueOptions { MemoryLimit = 0, DiskLimit = 512 * 1024, SegmentSize = 128 * 1024 })
        {
            Replicate = true,
            Wrap = (o, inner) => o.Role == FacetRole.Remote ? held = new HeldFlushFacet(inner, Block) : inner,
        };
        MirrorVolume v = await fx.OpenAsync();
        long a = await v.CreateFileAsync("a");
        await v.WriteAsync(a, 0, Pattern(4 * Block, 1));
        long b = await v.CreateFileAsync("b");
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));

        fx.Faults["remote0"].Offline = true;
        await v.WriteAsync(a, 0, Pattern(Block, 2));
        held!.Hold = true;
        v.RequestResync("remote0", full: false);
        fx.Faults["remote0"].Offline = false;
        await held.FlushHeld.Task.WaitAsync(TimeSpan.FromSeconds(30));

        await v.WriteAsync(a, 0, Pattern(Block, 3));
        for (int i = 0; i < 32 && v.GetQueueCursor("remote0")!.Active; i++)
        {
            await v.WriteAsync(b, (long)i * Block, Pattern(Block, 10 + i));
        }
        Assert.IsFalse(v.GetQueueCursor("remote0")!.Active, "the premise: the queue overflowed and released the cursor during the copy");
        held.Hold = false;
        held.Release();

        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"), $"the {kind} remote");
    }

    /// <summary>
    /// <paramref name="before"/> drained to the remote; <paramref name="offline"/> made while it is unreachable and
    /// folded into its dirty map by a resync request; with <paramref name="holdAt"/>, <paramref name="held"/> made while
    /// the resync is held at that facet's first look (a <see cref="Door"/>); then drained, and the remote compared with
    /// the local facet.
    /// </summary>
    private static async Task ResyncAsync(string kind, Func<MirrorVolume, Task> before, Func<MirrorVolume, Task> offline,
        string? holdAt = null, Func<MirrorVolume, Task>? held = null, QueueOptions? queue = null)
    {
        var doors = new Dictionary<string, Door>();
        await using VolumeFixture fx = Fixture(kind, doors, queue);
        MirrorVolume v = await fx.OpenAsync();
        await before(v);
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));

        fx.Faults["remote0"].Offline = true;
        await offline(v);
        Door? door = holdAt is null ? null : doors[holdAt];
        if (door is not null)
        {
            door.HoldLooks = true;
        }
        v.RequestResync("remote0", full: false);
        fx.Faults["remote0"].Offline = false;
        if (door is not null)
        {
            await door.Held.Task.WaitAsync(TimeSpan.FromSeconds(30));
            await held!(v);
            door.Release();
        }

        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"), $"the {kind} remote");
    }

    /// <summary>A local and a remote facet, each behind a <see cref="Door"/> put in <paramref name="doors"/> by name when the volume opens.</summary>
    private static VolumeFixture Fixture(string kind, Dictionary<string, Door> doors, QueueOptions? queue = null) =>
        new(locals: 1, remotes: 1, blockSize: Block, remoteKind: kind, queue: queue)
        {
            Replicate = true,
            Wrap = (o, inner) => doors[o.Name] = new Door(inner),
        };

    private static byte[] Pattern(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>A facet whose listings and lookups wait at the door while held.</summary>
    private sealed class Door(IFacet inner) : FacetDecorator(inner)
    {
        private readonly TaskCompletionSource _release = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public volatile bool HoldLooks;

        /// <summary>Completed when a held call reaches the door.</summary>
        public TaskCompletionSource Held { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _release.TrySetResult();

        public override async ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
        {
            await WaitAsync(HoldLooks, cancellationToken);
            return await base.ListAsync(path, cancellationToken);
        }

        public override async ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
        {
            await WaitAsync(HoldLooks, cancellationToken);
            return await base.StatAsync(path, cancellationToken);
        }

        private async ValueTask WaitAsync(bool hold, CancellationToken cancellationToken)
        {
            if (hold)
            {
                Held.TrySetResult();
                await _release.Task.WaitAsync(cancellationToken);
            }
        }
    }

    /// <summary>The folder holds exactly the writers' directories and files, each file with the model's bytes.</summary>
    private static void AssertEqualsModel(string root, Writer[] writers, string what)
    {
        var expectedDirs = writers.SelectMany(w => new[] { w.Dir, $"{w.Dir}/sub" }).ToHashSet(StringComparer.Ordinal);
        var expectedFiles = writers.SelectMany(w => w.Files).ToDictionary(f => f.Key, f => f.Value, StringComparer.Ordinal);
        var dirs = Directory.EnumerateDirectories(root, "*", SearchOption.AllDirectories)
            .Select(d => Path.GetRelativePath(root, d).Replace('\\', '/')).ToHashSet(StringComparer.Ordinal);
        var files = Directory.EnumerateFiles(root, "*", SearchOption.AllDirectories)
            .Select(f => Path.GetRelativePath(root, f).Replace('\\', '/')).ToHashSet(StringComparer.Ordinal);
        Assert.IsTrue(expectedDirs.SetEquals(dirs), $"{what}: directories {string.Join(", ", dirs.Order())}, the model's {string.Join(", ", expectedDirs.Order())}");
        Assert.IsTrue(expectedFiles.Keys.ToHashSet().SetEquals(files),
            $"{what}: files {string.Join(", ", files.Order())}, the model's {string.Join(", ", expectedFiles.Keys.Order())}");
        foreach (var (path, bytes) in expectedFiles)
        {
            byte[] actual = File.ReadAllBytes(Path.Combine(root, path));
            Assert.AreEqual(bytes.Length, actual.Length, $"{what}: {path} length");
            int same = bytes.AsSpan().CommonPrefixLength(actual);
            Assert.AreEqual(bytes.Length, same, $"{what}: {path} differs from the model first at byte {same} (block {same / Block})");
        }
    }

    /// <summary>
    /// One writer: its own directory and names (so its model is changed in the order the volume acknowledged), and a
    /// random mix of writes, extensions, truncations, renames (some over another of its files), creates and deletes.
    /// </summary>
    private sealed class Writer
    {
        private const int MaxLength = 6 * Block;
        private readonly MirrorVolume _v;
        private readonly Random _rng;
        private readonly string[] _names;

        private Writer(MirrorVolume v, int index)
        {
            _v = v;
            _rng = new Random(100 + index);
            Dir = $"d{index}";
            _names = [.. Enumerable.Range(0, 5).Select(k => $"{Dir}/f{k}"), .. Enumerable.Range(0, 2).Select(k => $"{Dir}/sub/g{k}")];
        }

        public string Dir { get; }

        /// <summary>Path to bytes of every file this writer's acknowledged changes leave.</summary>
        public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);

        /// <summary>Changes acknowledged.</summary>
        public int Ops { get; private set; }

        public static async Task<Writer> CreateAsync(MirrorVolume v, int index)
        {
            var w = new Writer(v, index);
            await v.CreateDirectoryAsync(w.Dir);
            await v.CreateDirectoryAsync($"{w.Dir}/sub");
            for (int k = 0; k < 4; k++)
            {
                await w.CreateAsync(w._names[k], 3 * Block);
            }
            return w;
        }

        public async Task RunAsync(CancellationToken stop)
        {
            while (!stop.IsCancellationRequested)
            {
                await StepAsync();
                await Task.Delay(_rng.Next(15, 45), CancellationToken.None);
            }
        }

        public async Task StepAsync()
        {
            string[] present = [.. _names.Where(Files.ContainsKey)];
            string[] absent = [.. _names.Where(n => !Files.ContainsKey(n))];
            int op = _rng.Next(100);
            if (present.Length == 0 || (op < 12 && absent.Length > 0))
            {
                await CreateAsync(absent[_rng.Next(absent.Length)], _rng.Next(1, Block));
            }
            else if (op < 20 && present.Length > 1)
            {
                string path = present[_rng.Next(present.Length)];
                await _v.DeleteFileAsync(path);
                Files.Remove(path);
            }
            else if (op < 34)
            {
                string from = present[_rng.Next(present.Length)];
                string to = _names.Where(n => n != from).ElementAt(_rng.Next(_names.Length - 1)); // may replace a file
                await _v.RenameAsync(from, to);
                Files[to] = Files[from];
                Files.Remove(from);
            }
            else if (op < 44)
            {
                string path = present[_rng.Next(present.Length)];
                long length = Math.Min(MaxLength, Files[path].Length + _rng.Next(1, 2 * Block));
                await SetLengthAsync(path, length);
            }
            else if (op < 54)
            {
                string path = present[_rng.Next(present.Length)];
                await SetLengthAsync(path, _rng.Next(0, Files[path].Length + 1));
            }
            else
            {
                string path = present[_rng.Next(present.Length)];
                int length = _rng.Next(1, Block / 4);
                int offset = _rng.Next(0, MaxLength - length);
                await WriteAsync(path, offset, length);
            }
            Ops++;
        }

        private async Task CreateAsync(string path, int length)
        {
            await _v.CreateFileAsync(path);
            Files[path] = [];
            await WriteAsync(path, 0, length);
        }

        private async Task WriteAsync(string path, int offset, int length)
        {
            byte[] data = new byte[length];
            _rng.NextBytes(data);
            await _v.WriteAsync(_v.LookupId(path)!.Value, offset, data);
            byte[] model = Files[path];
            if (offset + length > model.Length)
            {
                Array.Resize(ref model, offset + length);
                Files[path] = model;
            }
            data.CopyTo(model, offset);
        }

        private async Task SetLengthAsync(string path, long length)
        {
            await _v.SetLengthAsync(_v.LookupId(path)!.Value, length);
            byte[] model = Files[path];
            Array.Resize(ref model, (int)length);
            Files[path] = model;
        }
    }
}
