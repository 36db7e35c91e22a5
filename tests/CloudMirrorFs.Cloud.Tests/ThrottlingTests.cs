using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;
using CloudMirrorFs.Tests;
using CloudMirrorFs.Tests.Replication;
using CloudMirrorFs.Tests.Support;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Cloud.Tests;

/// <summary>
/// Throttling and server errors from the real SDKs against the real servers, injected at the HTTP level by a proxy:
/// each is a clear "busy or failing; retrying" (Unavailable) from the store, and under replication none blocks a
/// writer or loses a queued change.
/// </summary>
[TestClass]
public sealed class ThrottlingTests
{
    [ClassInitialize]
    public static void RegisterStores(TestContext _) => FacetFactory.CloudStores = o => CloudStores.Create(o, (value, _) => value);

    private static int _seq;

    /// <summary>Answers the next PUT (only) with the error.</summary>
    private static Func<string, string, (int, string)?> NextPut(int status, string code)
    {
        int fired = 0;
        return (method, _) => method == "PUT" && Interlocked.Exchange(ref fired, 1) == 0 ? (status, code) : null;
    }

    [TestMethod]
    [DataRow(503, "SlowDown")]
    [DataRow(429, "TooManyRequests")]
    [DataRow(500, "InternalError")]
    public async Task S3_ThrottledPut_IsUnavailableNamingTheStatus_ThenTheNextPutLands(int status, string code)
    {
        await using var proxy = new ThrottlingProxy(TestServers.S3Port) { Inject = NextPut(status, code) };
        await using S3ObjectStore store = S3ObjectStoreTests.Create(port: proxy.Port);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.PutAsync("k", new byte[] { 1, 2, 3 }, default));
        Assert.AreEqual(MirrorError.Unavailable, e.Error, e.Message);
        StringAssert.Contains(e.Message, status.ToString());
        StringAssert.Contains(e.Message, "retrying");
        Assert.AreEqual(1, proxy.Injected);
        await store.PutAsync("k", new byte[] { 4, 5, 6 }, default);
        CollectionAssert.AreEqual(new byte[] { 4, 5, 6 }, await store.GetAsync("k", 0, null, default));
    }

    [TestMethod]
    [DataRow(503, "ServerBusy")]
    [DataRow(500, "InternalError")]
    public async Task Azure_ThrottledPut_IsUnavailableNamingTheStatus_ThenTheNextPutLands(int status, string code)
    {
        await using var proxy = new ThrottlingProxy(TestServers.AzuritePort);
        await using AzureBlobObjectStore store = AzureBlobObjectStoreTests.Create(port: proxy.Port);
        await store.EnsureReadyAsync(true, default);
        proxy.Inject = NextPut(status, code);
        var e = await Assert.ThrowsExactlyAsync<MirrorException>(async () => await store.PutAsync("k", new byte[] { 1, 2, 3 }, default));
        Assert.AreEqual(MirrorError.Unavailable, e.Error, e.Message);
        StringAssert.Contains(e.Message, status.ToString());
        Assert.AreEqual(1, proxy.Injected);
        await store.PutAsync("k", new byte[] { 4, 5, 6 }, default);
        CollectionAssert.AreEqual(new byte[] { 4, 5, 6 }, await store.GetAsync("k", 0, null, default));
    }

    [TestMethod]
    [Timeout(180_000, CooperativeCancellation = true)]
    public async Task EveryThirdUploadThrottled_WritersNeverWait_DrainAndRestoreFromEachStoreEqualTheLocal()
    {
        using var dir = new TempDir("throttle");
        string run = $"thr{Interlocked.Increment(ref _seq)}{Guid.NewGuid():N}"[..16];
        int puts = 0;
        Func<string, string, (int, string)?> throttle(string code) => (method, _) => method == "PUT" && Interlocked.Increment(ref puts) % 3 == 0 ? (503, code) : null;
        await using var s3Proxy = new ThrottlingProxy(TestServers.S3Port);
        await using var azProxy = new ThrottlingProxy(TestServers.AzuritePort);
        VolumeOptions options = VolumeOnCloudTests.Options(dir, run, $"http://127.0.0.1:{s3Proxy.Port}",
            $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={TestServers.AzuriteKey};BlobEndpoint=http://127.0.0.1:{azProxy.Port}/devstoreaccount1;");
        var runtime = new VolumeRuntimeOptions { Replication = new CloudMirrorFs.Replication.ReplicationOptions { RetryDelay = TimeSpan.FromMilliseconds(20), MaxRetryDelay = TimeSpan.FromMilliseconds(200) } };
        await using (MirrorVolume v = await MirrorVolume.OpenAsync(options, runtime: runtime))
        {
            s3Proxy.Inject = throttle("SlowDown");
            azProxy.Inject = throttle("ServerBusy");
            long id = await v.CreateFileAsync("data.bin");
            var rnd = new Random(11);
            TimeSpan slowest = TimeSpan.Zero;
            for (int i = 0; i < 80; i++)
            {
                byte[] b = new byte[rnd.Next(1, 100_000)];
                rnd.NextBytes(b);
                var sw = Stopwatch.StartNew();
                await v.WriteAsync(id, rnd.Next(0, 2_000_000), b);
                slowest = sw.Elapsed > slowest ? sw.Elapsed : slowest;
                if (i % 20 == 0)
                {
                    await ReplicationTests.WorkloadAsync(v, 100 + i, files: 3);
                }
            }
            Assert.IsTrue(slowest < TimeSpan.FromSeconds(1), $"a write waited {slowest.TotalMilliseconds:F0} ms: throttling reached a writer");
            Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(120)), ReplicationTests.Describe(v));
            Assert.IsTrue(s3Proxy.Injected >= 5 && azProxy.Injected >= 5, $"throttled: s3 {s3Proxy.Injected}, azure {azProxy.Injected}");
        }
        s3Proxy.Inject = null;
        azProxy.Inject = null;
        foreach (FacetOptions remote in options.Facets.Skip(1))
        {
            string target = Path.Combine(dir.Path, "restored-" + remote.Name);
            await RemoteRestore.RestoreAsync(FacetFactory.CreateStore(remote), target, null, null, default);
            TreeAssert.Equal(options.Facets[0].Path!, target, remote.Name);
        }
    }
}
