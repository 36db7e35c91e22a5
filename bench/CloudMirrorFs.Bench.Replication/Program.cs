using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Volume;

// Engine II benchmark: writer latency with an asynchronous remote behind a slow link (up and down) against a
// local-only volume and a synchronous mirror over the same link; and drain throughput of a backlog over a long link.
// Usage: dotnet run -c Release --project bench/CloudMirrorFs.Bench.Replication [-- --quick]
bool quick = args.Contains("--quick");
string root = Path.Combine(Path.GetTempPath(), "cmfs-bench-repl-" + Environment.ProcessId);
Directory.CreateDirectory(root);
try
{
    int writes = quick ? 2_000 : 10_000;
    var linkRtt = TimeSpan.FromMilliseconds(50);
    long linkBandwidth = 10_000_000;
    var localOnly = await Latency("local-only", remote: null, syncMirror: false);
    var asyncUp = await Latency("async-link-up", remote: f => new SimulatedLink(f, 1) { RoundTrip = linkRtt, BandwidthBytesPerSecond = linkBandwidth }, syncMirror: false);
    var asyncDown = await Latency("async-link-down", remote: f => new SimulatedLink(f, 1) { RoundTrip = linkRtt, BandwidthBytesPerSecond = linkBandwidth, Down = true }, syncMirror: false);
    var sync = await Latency("sync-mirror", remote: f => new SimulatedLink(f, 1) { RoundTrip = linkRtt, BandwidthBytesPerSecond = linkBandwidth }, syncMirror: true, count: quick ? 50 : 200);

    long backlog = quick ? 128L << 20 : 1L << 30;
    var drain = await DrainThroughput(backlog, TimeSpan.FromMilliseconds(100), 20_000_000);

    var result = new JsonObject
    {
        ["benchmark"] = "replication",
        ["write4KiB"] = new JsonObject
        {
            ["localOnly"] = Json(localOnly),
            ["asyncRemoteLinkUp"] = Json(asyncUp),
            ["asyncRemoteLinkDown"] = Json(asyncDown),
            ["synchronousMirror"] = Json(sync),
            ["linkUpP50Ratio"] = Math.Round(asyncUp.P50 / localOnly.P50, 3),
            ["linkDownP50Ratio"] = Math.Round(asyncDown.P50 / localOnly.P50, 3),
            ["syncOverAsyncP50"] = Math.Round(sync.P50 / asyncUp.P50, 1),
            ["targets"] = "async <= 1.1x local-only in both link cases; sync mirror >= 10x slower",
            ["link"] = $"RTT {linkRtt.TotalMilliseconds} ms, {linkBandwidth / 1e6} MB/s",
        },
        ["drain"] = drain,
    };
    Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    return 0;

    JsonObject Json((double P50, double P99) x) => new() { ["p50us"] = x.P50, ["p99us"] = x.P99 };

    async Task<(double P50, double P99)> Latency(string name, Func<IFacet, IFacet>? remote, bool syncMirror, int? count = null)
    {
        int n = count ?? writes;
        string dir = Path.Combine(root, name);
        var facets = new List<FacetOptions> { new() { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(dir, "local") } };
        if (remote is not null)
        {
            facets.Add(new FacetOptions { Name = "far", Role = syncMirror ? FacetRole.Local : FacetRole.Remote, Kind = "directory", Path = Path.Combine(dir, "far") });
        }
        var options = new VolumeOptions { Name = name, StateDir = Path.Combine(dir, "state"), Facets = facets };
        await using MirrorVolume v = await MirrorVolume.OpenAsync(options, o => o.Name == "far" ? remote!(FacetFactory.Create(o, options)) : FacetFactory.Create(o, options));
        long id = await v.CreateFileAsync("lat.bin");
        await v.SetLengthAsync(id, 64L << 20);
        byte[] buf = new byte[4096];
        var rnd = new Random(2);
        int warm = Math.Min(1000, n / 5);
        var samples = new double[n];
        for (int i = 0; i < n + warm; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            await v.WriteAsync(id, rnd.NextInt64(0, (64L << 20) / 4096) * 4096, buf);
            if (i >= warm)
            {
                samples[i - warm] = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            }
        }
        Array.Sort(samples);
        return (Math.Round(samples[n / 2], 2), Math.Round(samples[n * 99 / 100], 2));
    }

    async Task<JsonObject> DrainThroughput(long bytes, TimeSpan rtt, long bandwidth)
    {
        string dir = Path.Combine(root, "drain");
        SimulatedLink? link = null;
        var options = new VolumeOptions
        {
            Name = "drain",
            StateDir = Path.Combine(dir, "state"),
            Queue = new QueueOptions { MemoryLimit = 64L << 20, DiskLimit = 8L << 30 },
            Facets =
            [
                new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(dir, "local") },
                new FacetOptions { Name = "far", Role = FacetRole.Remote, Kind = "directory", Path = Path.Combine(dir, "far") },
            ],
        };
        await using MirrorVolume v = await MirrorVolume.OpenAsync(options, o =>
            o.Name == "far" ? link = new SimulatedLink(FacetFactory.Create(o, options), 3) { RoundTrip = rtt, BandwidthBytesPerSecond = bandwidth, Down = true } : FacetFactory.Create(o, options));
        long id = await v.CreateFileAsync("backlog.bin");
        byte[] buf = new byte[1 << 20];
        new Random(4).NextBytes(buf);
        for (long off = 0; off < bytes; off += buf.Length)
        {
            await v.WriteAsync(id, off, buf);
        }
        long sentBefore = link!.BytesSent;
        var sw = Stopwatch.StartNew();
        link.Down = false;
        bool drained = await v.DrainAsync(TimeSpan.FromMinutes(10));
        double seconds = sw.Elapsed.TotalSeconds;
        double mbps = (link.BytesSent - sentBefore) / 1e6 / seconds;
        return new JsonObject
        {
            ["backlogBytes"] = bytes,
            ["rttMs"] = rtt.TotalMilliseconds,
            ["capMBps"] = bandwidth / 1e6,
            ["drained"] = drained,
            ["seconds"] = Math.Round(seconds, 2),
            ["throughputMBps"] = Math.Round(mbps, 2),
            ["fractionOfCap"] = Math.Round(mbps / (bandwidth / 1e6), 3),
            ["target"] = 0.9,
        };
    }
}
finally
{
    Directory.Delete(root, recursive: true);
}
