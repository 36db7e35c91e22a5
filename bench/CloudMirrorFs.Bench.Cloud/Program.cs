using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMirrorFs.Cloud;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;
using CloudMirrorFs.Replication;
using CloudMirrorFs.Volume;

// Cloud benchmark: an S3 remote (s3rver on 127.0.0.1) behind a simulated link capped at 20 MB/s with 100 ms RTT.
// Drain throughput of a backlog of 64 KiB random writes, objects and bytes uploaded per MiB written with and
// without write folding, and restore time. Needs the test servers: npm ci --prefix tests/emulators.
// Usage: dotnet run -c Release --project bench/CloudMirrorFs.Bench.Cloud [-- --quick]
bool quick = args.Contains("--quick");
long backlog = quick ? 64L << 20 : 500L << 20;
long fileSize = quick ? 128L << 20 : 1L << 30;
const long Cap = 20_000_000;
var rtt = TimeSpan.FromMilliseconds(100);
string root = Path.Combine(Path.GetTempPath(), "cmfs-bench-cloud-" + Environment.ProcessId);
Directory.CreateDirectory(root);
int port = FreePort();
using Process s3 = StartS3rver(Path.Combine(root, "s3"), port);
try
{
    await WaitForPortAsync(port);
    var drain = await DrainAsync(backlog, fileSize);
    var folding = await FoldingAsync();
    var result = new JsonObject
    {
        ["benchmark"] = "cloud-s3",
        ["link"] = new JsonObject { ["capMBps"] = Cap / 1e6, ["rttMs"] = rtt.TotalMilliseconds },
        ["drain"] = drain,
        ["folding"] = folding,
    };
    Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    return 0;
}
finally
{
    s3.Kill(entireProcessTree: true);
    Directory.Delete(root, recursive: true);
}

async Task<JsonObject> DrainAsync(long bytes, long size)
{
    // The remote is open and caught up, then the link drops while the backlog is written, then it comes back: the
    // drain is the catch-up after an outage.
    var link = new LinkModel(1) { RoundTrip = rtt, BandwidthBytesPerSecond = Cap };
    (VolumeOptions options, Func<FacetOptions, IFacet> factory) = Volume("drain", link, port);
    var runtime = new VolumeRuntimeOptions { Replication = new ReplicationOptions { MaxRetryDelay = TimeSpan.FromMilliseconds(200) } };
    await using MirrorVolume v = await MirrorVolume.OpenAsync(options, factory, runtime: runtime);
    long id = await v.CreateFileAsync("random.bin");
    await v.SetLengthAsync(id, size);
    if (!await v.DrainAsync(TimeSpan.FromMinutes(2)))
    {
        throw new InvalidOperationException("the remote did not catch up before the outage");
    }
    link.Down = true;
    var rnd = new Random(7);
    byte[] buf = new byte[64 * 1024];
    for (long done = 0; done < bytes; done += buf.Length)
    {
        rnd.NextBytes(buf);
        await v.WriteAsync(id, rnd.NextInt64(0, size / buf.Length) * buf.Length, buf);
    }
    long wireBefore = link.Bytes;
    var sw = Stopwatch.StartNew();
    link.Down = false;
    bool drained = await v.DrainAsync(TimeSpan.FromMinutes(30));
    double seconds = sw.Elapsed.TotalSeconds;
    long wire = link.Bytes - wireBefore;
    var facet = (ObjectStoreFacet)v.GetFacet("s3");

    string target = Path.Combine(root, "restored");
    var restoreLink = new LinkModel(2) { RoundTrip = rtt, BandwidthBytesPerSecond = Cap };
    var swr = Stopwatch.StartNew();
    RemoteRestore.Result r = await RemoteRestore.RestoreAsync(new CodecObjectStore(new SimulatedLinkStore(S3(port, "drain"), restoreLink), null, false), target, null, null, default);
    double restoreSeconds = swr.Elapsed.TotalSeconds;
    return new JsonObject
    {
        ["backlogBytes"] = bytes,
        ["writeSize"] = buf.Length,
        ["drained"] = drained,
        ["seconds"] = Math.Round(seconds, 1),
        ["wireBytes"] = wire,
        ["wireMBps"] = Math.Round(wire / 1e6 / seconds, 2),
        ["wireFractionOfCap"] = Math.Round(wire / (double)Cap / seconds, 3),
        ["writtenMBps"] = Math.Round(bytes / 1e6 / seconds, 2),
        ["objectsUploaded"] = facet.ObjectsUploaded,
        ["restore"] = new JsonObject
        {
            ["bytes"] = restoreLink.Bytes,
            ["seconds"] = Math.Round(restoreSeconds, 1),
            ["fractionOfCap"] = Math.Round(restoreLink.Bytes / (double)Cap / restoreSeconds, 3),
        },
    };
}

async Task<JsonObject> FoldingAsync()
{
    // 2 MiB written as 4 KiB sequential writes: folded (one batch, one commit) against one commit per write.
    var results = new JsonObject();
    foreach (bool fold in new[] { true, false })
    {
        var link = new LinkModel(3) { RoundTrip = TimeSpan.FromMilliseconds(5), BandwidthBytesPerSecond = Cap, Down = true };
        (VolumeOptions options, Func<FacetOptions, IFacet> factory) = Volume(fold ? "fold" : "nofold", link, port);
        var runtime = new VolumeRuntimeOptions { Replication = new ReplicationOptions { BatchRecords = fold ? 256 : 1, MaxRetryDelay = TimeSpan.FromMilliseconds(200) } };
        await using MirrorVolume v = await MirrorVolume.OpenAsync(options, factory, runtime: runtime);
        long id = await v.CreateFileAsync("seq.bin");
        byte[] buf = new byte[4096];
        const long total = 2L << 20;
        for (long off = 0; off < total; off += buf.Length)
        {
            Random.Shared.NextBytes(buf);
            await v.WriteAsync(id, off, buf);
        }
        var facet = (ObjectStoreFacet)v.GetFacet("s3");
        long objects0 = facet.ObjectsUploaded, bytes0 = facet.BytesUploaded;
        link.Down = false;
        await v.DrainAsync(TimeSpan.FromMinutes(10));
        double mib = total / (double)(1 << 20);
        results[fold ? "withFolding" : "withoutFolding"] = new JsonObject
        {
            ["objectsPerMiB"] = Math.Round((facet.ObjectsUploaded - objects0) / mib, 1),
            ["bytesUploadedPerMiB"] = Math.Round((facet.BytesUploaded - bytes0) / mib, 0),
        };
    }
    return results;
}

(VolumeOptions, Func<FacetOptions, IFacet>) Volume(string name, LinkModel link, int s3Port)
{
    string dir = Path.Combine(root, name);
    var options = new VolumeOptions
    {
        Name = name,
        StateDir = Path.Combine(dir, "state"),
        Queue = new QueueOptions { MemoryLimit = 64L << 20, DiskLimit = 8L << 30 },
        Facets =
        [
            new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(dir, "local") },
            new FacetOptions { Name = "s3", Role = FacetRole.Remote, Kind = "s3" },
        ],
    };
    return (options, o => o.Name == "s3"
        ? new ObjectStoreFacet("s3", "s3", new CodecObjectStore(new SimulatedLinkStore(S3(s3Port, name), link), null, false), options.BlockSize, name, claimFor: options.StateDir)
        : FacetFactory.Create(o, options));
}

static S3ObjectStore S3(int port, string prefix) => new(new S3StoreOptions
{
    Bucket = "bench",
    Prefix = prefix + "/",
    Endpoint = $"http://127.0.0.1:{port}",
    ForcePathStyle = true,
    AccessKeyId = "S3RVER",
    SecretAccessKey = "S3RVER",
});

static Process StartS3rver(string dir, int port)
{
    Directory.CreateDirectory(dir);
    string? bin = null;
    for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null && bin is null; d = d.Parent)
    {
        string candidate = Path.Combine(d.FullName, "tests", "emulators", "node_modules", ".bin", "s3rver");
        bin = File.Exists(candidate) ? candidate : null;
    }
    var psi = new ProcessStartInfo(bin ?? throw new InvalidOperationException("s3rver not found; run: npm ci --prefix tests/emulators"))
    {
        UseShellExecute = false,
        RedirectStandardOutput = true,
        RedirectStandardError = true,
    };
    foreach (string a in new[] { "-d", dir, "-a", "127.0.0.1", "-p", port.ToString(), "--configure-bucket", "bench", "--silent" })
    {
        psi.ArgumentList.Add(a);
    }
    Process p = Process.Start(psi)!;
    p.BeginOutputReadLine();
    p.BeginErrorReadLine();
    return p;
}

static int FreePort()
{
    var l = new TcpListener(IPAddress.Loopback, 0);
    l.Start();
    int p = ((IPEndPoint)l.LocalEndpoint).Port;
    l.Stop();
    return p;
}

static async Task WaitForPortAsync(int port)
{
    for (int i = 0; i < 300; i++)
    {
        try
        {
            using var c = new TcpClient();
            await c.ConnectAsync(IPAddress.Loopback, port);
            return;
        }
        catch (SocketException)
        {
            await Task.Delay(100);
        }
    }
    throw new InvalidOperationException("s3rver did not start");
}
