using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests;
using CloudMirrorFs.Tests.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Cloud.Tests;

/// <summary>The engine with S3 (s3rver) and Azure Blob (Azurite) remotes: replicate, drain, restore from the cloud alone.</summary>
[TestClass]
public sealed class VolumeOnCloudTests
{
    [ClassInitialize]
    public static void RegisterStores(TestContext _) => FacetFactory.CloudStores = o => CloudStores.Create(o, (value, _) => value);

    /// <summary>A local facet and an S3 and an Azure remote; the endpoints default to the test servers themselves.</summary>
    internal static VolumeOptions Options(TempDir dir, string run, string? s3Endpoint = null, string? azureConnectionString = null) => new()
    {
        Name = "cloud",
        StateDir = Path.Combine(dir.Path, "state"),
        BlockSize = 64 * 1024,
        Facets =
        [
            new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = dir.Sub("local") },
            new FacetOptions
            {
                Name = "s3", Role = FacetRole.Remote, Kind = "s3",
                Settings = new Dictionary<string, string>
                {
                    ["bucket"] = TestServers.S3Bucket, ["prefix"] = $"{run}/", ["endpoint"] = s3Endpoint ?? TestServers.S3Endpoint,
                    ["forcePathStyle"] = "true", ["accessKeyId"] = "S3RVER", ["secretAccessKey"] = "S3RVER", ["compression"] = "brotli",
                },
            },
            new FacetOptions
            {
                Name = "azure", Role = FacetRole.Remote, Kind = "azure",
                Settings = new Dictionary<string, string> { ["container"] = $"c{run}", ["connectionString"] = azureConnectionString ?? TestServers.AzureConnectionString() },
            },
        ],
    };

    private static async Task<string> RestoreAsync(TempDir dir, FacetOptions o)
    {
        string target = Path.Combine(dir.Path, $"restored-{o.Name}-{Guid.NewGuid():N}");
        await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(o), target, null, null, default);
        return target;
    }

    /// <summary>A restore from each cloud remote alone (S3, then Azure) equals the local facet.</summary>
    private static async Task AssertEachRestoresTheLocalAsync(TempDir dir, VolumeOptions options)
    {
        foreach (FacetOptions remote in options.Facets.Skip(1))
        {
            TreeAssert.Equal(options.Facets[0].Path!, await RestoreAsync(dir, remote), remote.Name);
        }
    }

    [TestMethod]
    public async Task Drain_ToS3AndAzure_RestoreFromEachEqualsTheLocal()
    {
        using var dir = new TempDir("cloudvol");
        VolumeOptions options = Options(dir, Guid.NewGuid().ToString("N")[..12]);
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(options))
        {
            await ReplicationTests.WorkloadAsync(v, 1);
            await ReplicationTests.WorkloadAsync(v, 2);
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
        }
        await AssertEachRestoresTheLocalAsync(dir, options);
    }

    [TestMethod]
    public async Task BucketAndContainerEmptiedWhileRunning_EverythingIsSentAgain_RestoreFromEachEqualsTheLocal()
    {
        // A lifecycle rule or an operator empties the bucket prefix and the container under a running volume: the
        // next commit notices volume.json is gone and the remote is rebuilt, instead of a chain nobody can restore.
        using var dir = new TempDir("cloudvol");
        VolumeOptions options = Options(dir, Guid.NewGuid().ToString("N")[..12]);
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(options))
        {
            await ReplicationTests.WorkloadAsync(v, 1);
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
            foreach (FacetOptions o in options.Facets.Skip(1))
            {
                await using IObjectStore store = FacetFactory.CreateStore(o);
                var keys = new List<string>();
                await foreach (ObjectInfo info in store.ListAsync("", default))
                {
                    keys.Add(info.Key);
                }
                Assert.IsTrue(keys.Contains("volume.json"), $"{o.Name}: {string.Join(", ", keys)}");
                foreach (string key in keys)
                {
                    await store.DeleteAsync(key, default); // one by one, as a console or a lifecycle rule would
                }
            }
            await ReplicationTests.WorkloadAsync(v, 2);
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
        }
        await AssertEachRestoresTheLocalAsync(dir, options);
    }

    [TestMethod]
    public async Task LinkToS3DropsMidUpload_WritersGoOn_AutomaticRecovery()
    {
        using var dir = new TempDir("cloudlink");
        VolumeOptions options = Options(dir, Guid.NewGuid().ToString("N")[..12]);
        SimulatedLink? link = null;
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(options, o =>
            o.Name == "s3" ? link = new SimulatedLink(FacetFactory.Create(o, options), 4) { RoundTrip = TimeSpan.FromMilliseconds(5), ErrorRate = 0.1 }
                           : FacetFactory.Create(o, options)))
        {
            long id = await v.CreateFileAsync("stream.bin");
            var rnd = new Random(5);
            for (int i = 0; i < 60; i++)
            {
                if (i == 20)
                {
                    link!.Down = true;
                }
                if (i == 45)
                {
                    link!.Down = false;
                }
                byte[] b = new byte[40_000];
                rnd.NextBytes(b);
                await v.WriteAsync(id, i * 40_000L, b);
            }
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), ReplicationTests.Describe(v));
            Assert.AreEqual(FacetState.Synchronised, v.GetFacetState("s3"));
        }
        TreeAssert.Equal(options.Facets[0].Path!, await RestoreAsync(dir, options.Facets[1]), "s3 after outages and injected errors");
    }
}

/// <summary>The SIGKILL rounds of the engine, rerun with an S3 remote (fewer rounds: the time budget).</summary>
[TestClass]
public sealed class KillOnCloudTests
{
    [ClassInitialize]
    public static void RegisterStores(TestContext _) => FacetFactory.CloudStores = o => CloudStores.Create(o, (value, _) => value);

    [TestMethod]
    [Timeout(240_000, CooperativeCancellation = true)]
    public async Task WriterKilled_S3Remote_RestartDrainRestore_EqualsTheLocal()
    {
        for (int round = 0; round < 6; round++)
        {
            using var dir = new TempDir($"kills3-{round}");
            string state = dir.Sub("state"), local = dir.Sub("local");
            var settings = new Dictionary<string, string>
            {
                ["bucket"] = TestServers.S3Bucket, ["prefix"] = $"kill{Guid.NewGuid():N}/", ["endpoint"] = TestServers.S3Endpoint,
                ["forcePathStyle"] = "true", ["accessKeyId"] = "S3RVER", ["secretAccessKey"] = "S3RVER",
            };
            long memoryLimit = round % 2 == 0 ? 64L << 20 : 128 * 1024;
            await CrashTests.RunAndKillAsync(state, local, "", memoryLimit, Path.Combine(dir.Path, "log"), seed: 300 + round,
                killAfterMs: 300 + round * 97 % 400, replicate: true, remoteKind: "s3", remoteSettings: settings);
            VolumeOptions options = CrashTests.Options(state, local, "", memoryLimit, "s3", settings);
            await using (MirrorVolume v = await MirrorVolume.OpenAsync(options))
            {
                Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(60)), $"round {round}: {ReplicationTests.Describe(v)}");
            }
            string tree = Path.Combine(dir.Path, "restored");
            await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(options.Facets[1]), tree, null, null, default);
            TreeAssert.Equal(local, tree, $"round {round}");
        }
    }
}
