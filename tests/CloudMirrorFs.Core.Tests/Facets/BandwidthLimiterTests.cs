using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Tests.Volume;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Facets;

/// <summary>bandwidthLimit: the rate holds, each class may use it all alone, and a resync keeps its share under load.</summary>
[TestClass]
[DoNotParallelize] // rates measured against the clock: not while another test class loads the CPU
public sealed class BandwidthLimiterTests
{
    private const long Limit = 4L << 20;
    private const int Chunk = 64 * 1024;

    private static async Task<long> PumpAsync(BandwidthLimiter limiter, bool resync, TimeSpan duration)
    {
        long sent = 0;
        var sw = Stopwatch.StartNew();
        using TrafficClass.Scope? scope = resync ? TrafficClass.Resync() : null;
        while (sw.Elapsed < duration)
        {
            await limiter.AcquireAsync(Chunk, TrafficClass.IsResync, CancellationToken.None);
            sent += Chunk;
        }
        return sent;
    }

    [TestMethod]
    public async Task Replication_Alone_UsesTheWholeLimit_AndNeverMore()
    {
        var limiter = new BandwidthLimiter(Limit, 0.25);
        long sent = await PumpAsync(limiter, resync: false, TimeSpan.FromSeconds(1.5));
        double rate = sent / 1.5;
        Assert.IsTrue(rate <= Limit * 1.1, $"{rate / (1 << 20):0.00} MiB/s against a limit of 4");
        Assert.IsTrue(rate >= Limit * 0.8, $"{rate / (1 << 20):0.00} MiB/s: alone, replication may use the whole limit");
    }

    [TestMethod]
    public async Task Resync_UnderBusyReplication_KeepsItsShare()
    {
        var limiter = new BandwidthLimiter(Limit, 0.25);
        TimeSpan duration = TimeSpan.FromSeconds(2);
        Task<long>[] replication = [.. Enumerable.Range(0, 4).Select(_ => Task.Run(() => PumpAsync(limiter, resync: false, duration)))];
        Task<long> resync = Task.Run(() => PumpAsync(limiter, resync: true, duration));
        long total = (await Task.WhenAll(replication)).Sum() + await resync;
        double share = (double)await resync / total;
        Assert.IsTrue(total / duration.TotalSeconds <= Limit * 1.15, $"together {total / duration.TotalSeconds / (1 << 20):0.00} MiB/s against a limit of 4");
        Assert.IsTrue(share >= 0.2, $"the resync got {share:P0} of the link; it keeps at least its 25 % share");
    }

    [TestMethod]
    public async Task Volume_WithABandwidthLimitedRemote_DrainsNoFasterThanTheLimit()
    {
        await using var fx = new VolumeFixture(locals: 1, remotes: 1, blockSize: 64 * 1024) { Replicate = true };
        var limited = fx.Options with
        {
            Facets = [fx.Options.Facets[0], fx.Options.Facets[1] with { BandwidthLimit = 1L << 20 }],
        };
        await using MirrorVolume v = await MirrorVolume.OpenAsync(limited);
        Assert.IsInstanceOfType<RateLimitedFacet>(v.GetFacet("remote0"));
        long id = await v.CreateFileAsync("f");
        byte[] data = new byte[3 << 20];
        new Random(1).NextBytes(data);
        var sw = Stopwatch.StartNew();
        await v.WriteAsync(id, 0, data);
        Assert.IsTrue(sw.Elapsed < TimeSpan.FromSeconds(1), "the writer is acknowledged at local speed");
        Assert.IsTrue(await v.DrainAsync(TimeSpan.FromSeconds(30)));
        Assert.IsTrue(sw.Elapsed >= TimeSpan.FromSeconds(2.5), $"3 MiB at 1 MiB/s drained in {sw.Elapsed.TotalSeconds:0.0} s");
        CollectionAssert.AreEqual(data, File.ReadAllBytes(Path.Combine(fx.FacetPath("remote0"), "f")));
    }
}
