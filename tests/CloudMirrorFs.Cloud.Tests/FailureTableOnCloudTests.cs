using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Cloud.Tests;

/// <summary>
/// The engine's failure table (seed 000, rows 1 to 3), rerun with an S3 (s3rver) and an Azure Blob (Azurite) remote
/// instead of a folder: the local disk fails, the remote is rebooted, the remote fails long enough for the queue to
/// overflow. Every remote is checked by restoring its committed image from the store alone and comparing bytes.
/// </summary>
[TestClass]
public sealed class FailureTableOnCloudTests
{
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(60);

    public TestContext TestContext { get; set; } = null!;

    [ClassInitialize]
    public static void RegisterStores(TestContext _) => FacetFactory.CloudStores = o => CloudStores.Create(o, (value, _) => value);

    private static byte[] Bytes(int length, int seed)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    /// <summary>Settings for a remote of <paramref name="kind"/> in a prefix (S3) or container (Azure) of its own.</summary>
    private static Dictionary<string, string> Settings(string kind)
    {
        string run = Guid.NewGuid().ToString("N");
        return kind switch
        {
            "s3" => new Dictionary<string, string>
            {
                ["bucket"] = TestServers.S3Bucket, ["prefix"] = $"failure-{run}/", ["endpoint"] = TestServers.S3Endpoint,
                ["forcePathStyle"] = "true", ["accessKeyId"] = "S3RVER", ["secretAccessKey"] = "S3RVER",
            },
            "azure" => new Dictionary<string, string> { ["container"] = $"f{run}", ["connectionString"] = TestServers.AzureConnectionString() },
            _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "s3 or azure"),
        };
    }

    /// <summary>One local directory facet and one cloud remote, replicating; a SimulatedLink in front of the remote.</summary>
    private static async Task<(VolumeFixture Fx, SimulatedLink Link)> OpenAsync(string kind, QueueOptions? queue = null)
    {
        SimulatedLink? link = null;
        var fx = new VolumeFixture(1, 1, queue: queue, remoteKind: kind, remoteSettings: _ => Settings(kind))
        {
            Replicate = true,
            Wrap = (o, f) => o.Role == FacetRole.Remote ? link = new SimulatedLink(f) : f,
        };
        try
        {
            await fx.OpenAsync();
        }
        catch
        {
            await fx.DisposeAsync();
            throw;
        }
        return (fx, link!);
    }

    private static async Task WaitForStateAsync(MirrorVolume v, string facet, FacetState state, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (v.GetFacetState(facet) != state && DateTime.UtcNow < deadline)
        {
            await Task.Delay(20);
        }
        Assert.AreEqual(state, v.GetFacetState(facet), ReplicationTests.Describe(v));
    }

    /// <summary>A little of everything, small enough to pass a 1 MiB queue whole: directories, writes, a rename, a delete, a truncate.</summary>
    private static async Task SmallWorkloadAsync(MirrorVolume v, int seed)
    {
        var rnd = new Random(seed);
        string dir = $"d{seed}";
        await v.CreateDirectoryAsync(dir);
        var ids = new List<(long Id, string Path)>();
        for (int i = 0; i < 4; i++)
        {
            string p = $"{dir}/f{i}";
            ids.Add((await v.CreateFileAsync(p), p));
        }
        for (int i = 0; i < 20; i++)
        {
            var (id, _) = ids[rnd.Next(ids.Count)];
            await v.WriteAsync(id, rnd.Next(0, 200_000), Bytes(rnd.Next(1, 30_000), rnd.Next()));
        }
        await v.RenameAsync(ids[0].Path, $"{dir}/renamed");
        await v.DeleteFileAsync(ids[1].Path);
        await v.SetLengthAsync(ids[2].Id, 1234);
    }

    [TestMethod]
    [DataRow("s3")]
    [DataRow("azure")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FailureTable_LocalDiskFails_TransparentToWriter_ReadsAndWritesGoToTheCloudRemote(string kind)
    {
        // Row 1: 1 local, 1 remote async; the local disk fails, the queue is intact. Writes go on, acknowledged once
        // the cloud remote has committed them; reads are served by the remote.
        CancellationToken ct = TestContext.CancellationToken;
        var (fx, _) = await OpenAsync(kind);
        await using VolumeFixture _ = fx;
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("keep.bin", cancellationToken: ct);
        byte[] first = Bytes(200_000, 1);
        await v.WriteAsync(id, 0, first, ct);

        fx.Faults["local0"].Offline = true; // the disk is gone
        byte[] second = Bytes(100_000, 2);
        await v.WriteAsync(id, 200_000, second, ct); // Result: transparent to the initiator
        long other = await v.CreateFileAsync("made-while-degraded", cancellationToken: ct);
        byte[] third = Bytes(5000, 3);
        await v.WriteAsync(other, 0, third, ct);

        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("local0"), "Result: the local facet is marked unsynchronised");
        Assert.IsTrue(v.IsDegraded);
        byte[] expected = [.. first, .. second];
        byte[] got = new byte[expected.Length];
        Assert.AreEqual(expected.Length, await v.ReadAsync(id, 0, got, ct));
        CollectionAssert.AreEqual(expected, got, "reads are served by the remote");
        byte[] gotThird = new byte[third.Length];
        Assert.AreEqual(third.Length, await v.ReadAsync(other, 0, gotThird, ct));
        CollectionAssert.AreEqual(third, gotThird, "a file made while degraded is read back from the remote");

        // Every acknowledged byte is in the remote's committed image, restored from the store alone (no drain).
        string tree = await fx.RemoteTreeAsync("remote0");
        CollectionAssert.AreEquivalent(new[] { "keep.bin", "made-while-degraded" },
            Directory.GetFileSystemEntries(tree).Select(Path.GetFileName).ToArray(), "the remote image holds exactly the volume's files");
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(tree, "keep.bin")), "every acknowledged write is on the remote");
        CollectionAssert.AreEqual(third, File.ReadAllBytes(Path.Combine(tree, "made-while-degraded")), "every acknowledged write is on the remote");
        var (dirty, _, ns) = v.GetDirtyMap("local0");
        Assert.IsTrue(dirty.Contains(new Location(id, 200_000 / v.BlockSize)) && ns, "Recovery: the failed facet's dirty map names what a new disk needs");
    }

    [TestMethod]
    [DataRow("s3")]
    [DataRow("azure")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FailureTable_CloudRemoteRebooted_QueueFills_AutomaticRecovery(string kind)
    {
        // Row 2: the remote is unreachable for a while (the link is down). The queue fills with changes; the failure
        // is transparent; recovery is automatic once the remote is back.
        CancellationToken ct = TestContext.CancellationToken;
        var (fx, link) = await OpenAsync(kind);
        await using VolumeFixture _ = fx;
        MirrorVolume v = fx.Volume;
        long id = await v.CreateFileAsync("f", cancellationToken: ct);
        byte[] expected = Bytes(10_000, 1);
        await v.WriteAsync(id, 0, expected, ct);
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));

        link.Down = true;
        const int Writes = 30;
        Array.Resize(ref expected, Writes * 10_000);
        for (int i = 0; i < Writes; i++)
        {
            byte[] b = Bytes(10_000, 100 + i);
            await v.WriteAsync(id, i * 10_000L, b, ct);
            b.CopyTo(expected, i * 10_000);
        }
        await WaitForStateAsync(v, "remote0", FacetState.Offline, TimeSpan.FromSeconds(10));
        Assert.IsTrue(v.GetQueueCursor("remote0")!.Count >= Writes, "the queue holds the changes");
        Assert.IsFalse(await v.DrainAsync(TimeSpan.FromMilliseconds(300)), "drain cannot finish while the remote is down");

        link.Down = false; // back online: nobody intervenes
        Assert.IsTrue(await v.DrainAsync(Drain), "recovery is automatic: " + ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"), "the queue covered the outage: no resync was needed");
        string tree = await fx.RemoteTreeAsync("remote0");
        TreeAssert.Equal(fx.FacetPath("local0"), tree, kind);
        CollectionAssert.AreEqual(expected, File.ReadAllBytes(Path.Combine(tree, "f")), "the remote holds every write made during the outage");
    }

    [TestMethod]
    [DataRow("s3")]
    [DataRow("azure")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task FailureTable_CloudRemoteFails_QueueOverflows_DirtyMapResyncWhenBack(string kind)
    {
        // Row 3: the remote fails long enough for the queue to fill: the facet is marked unsynchronised and its queue
        // freed, its dirty map records what it missed. When the remote is back, a resync of the dirty map alone brings
        // it level with the local facet.
        CancellationToken ct = TestContext.CancellationToken;
        var (fx, link) = await OpenAsync(kind, new QueueOptions { MemoryLimit = 0, DiskLimit = 1 << 20, SegmentSize = 256 * 1024 });
        await using VolumeFixture _ = fx;
        MirrorVolume v = fx.Volume;
        await SmallWorkloadAsync(v, 1);
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"), "the workload before the failure fits the queue");
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"), $"{kind} before the failure");

        link.Down = true;
        long id = await v.CreateFileAsync("after-failure", cancellationToken: ct);
        for (int i = 0; i < 40; i++)
        {
            await v.WriteAsync(id, i * 50_000L, Bytes(50_000, i), ct); // 2 MB through a 1 MiB queue
        }
        Assert.AreEqual(FacetState.NotSynchronised, v.GetFacetState("remote0"), "queue full: the facet is marked unsynchronised");
        Assert.AreEqual(0, v.GetQueueCursor("remote0")!.Count, "and its queue is freed");
        long dirty = v.GetDirtyCount("remote0");
        Assert.IsTrue(dirty > 0, "the dirty map records what the remote missed");
        // Changes to names while released go to the dirty map too.
        await v.RenameAsync("d1/renamed", "d1/renamed-while-down", ct);
        await v.DeleteFileAsync("d1/f3", ct);

        long sentBefore = link.BytesSent;
        link.Down = false; // back: the dirty map is resynchronised, nobody intervenes
        Assert.IsTrue(await v.DrainAsync(Drain), ReplicationTests.Describe(v));
        Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("remote0"));
        Assert.AreEqual(0, v.GetDirtyCount("remote0"));
        TreeAssert.Equal(fx.FacetPath("local0"), await fx.RemoteTreeAsync("remote0"), $"{kind} after the resync");
        long sent = link.BytesSent - sentBefore;
        TestContext.WriteLine($"{kind}: {dirty} dirty blocks resynchronised with {sent} bytes");
        Assert.IsTrue(sent <= dirty * v.BlockSize * 2L, $"resync sent {sent} bytes for {dirty} dirty blocks: it copies what changed, not the volume");
    }
}
