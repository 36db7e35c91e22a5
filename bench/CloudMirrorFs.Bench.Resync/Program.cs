using System.Diagnostics;
using System.Text.Json;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Replication;
using CloudMirrorFs.Volume;

// Resync benchmark (issue 6), one run, JSON on stdout, progress on stderr:
//  1. full resync of a volume over a 20 ms RTT SimulatedLink, pipelined (a window of blocks in flight) against
//     the same copy one block at a time (window 1);
//  2. fast resync after changing 1 % of the blocks (and rewriting another 2 % with identical bytes, which only
//     the hash comparison can tell apart): bytes sent over the link divided by bytes changed.
// Usage: dotnet run -c Release --project bench/CloudMirrorFs.Bench.Resync [-- --size-mib 1024 --window 16]

int sizeMib = 1024;
int window = 16;
for (int i = 0; i < args.Length - 1; i++)
{
    if (args[i] == "--size-mib")
    {
        sizeMib = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
    }
    else if (args[i] == "--window")
    {
        window = int.Parse(args[i + 1], System.Globalization.CultureInfo.InvariantCulture);
    }
}
if (args.Contains("--quick"))
{
    sizeMib = 128;
}
const int blockSize = 256 * 1024;
TimeSpan rtt = TimeSpan.FromMilliseconds(20);
string root = Path.Combine("/var/tmp", "cmfs-bench-resync-" + Environment.ProcessId);
Directory.CreateDirectory(root);
try
{
    int blocks = sizeMib * 1024 * 1024 / blockSize;
    int files = 16;
    int blocksPerFile = blocks / files;
    VolumeOptions options = new()
    {
        Name = "bench",
        StateDir = Path.Combine(root, "state"),
        BlockSize = blockSize,
        Queue = new QueueOptions { MemoryLimit = 64L << 20, DiskLimit = 64L << 30 },
        Facets =
        [
            new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(root, "local") },
            new FacetOptions { Name = "remote", Role = FacetRole.Remote, Kind = "directory", Path = Path.Combine(root, "remote") },
        ],
    };
    SimulatedLink? link = null;
    IFacet Factory(FacetOptions o)
    {
        IFacet f = FacetFactory.Create(o, options);
        return o.Role == FacetRole.Remote ? link = new SimulatedLink(f) { RoundTrip = rtt } : f;
    }

    // The data, written with no replication running.
    Console.Error.WriteLine($"writing {sizeMib} MiB in {files} files");
    await using (MirrorVolume v = await MirrorVolume.OpenAsync(options, runtime: new VolumeRuntimeOptions { Replicate = false }))
    {
        byte[] buffer = new byte[blockSize];
        var rng = new Random(1);
        for (int f = 0; f < files; f++)
        {
            long id = await v.CreateFileAsync($"f{f}");
            for (int b = 0; b < blocksPerFile; b++)
            {
                rng.NextBytes(buffer);
                await v.WriteAsync(id, (long)b * blockSize, buffer);
            }
        }
    }

    async Task<double> FullResyncAsync(int w)
    {
        Directory.Delete(Path.Combine(root, "remote"), recursive: true);
        Directory.CreateDirectory(Path.Combine(root, "remote"));
        await using MirrorVolume v = await MirrorVolume.OpenAsync(options, Factory, runtime: new VolumeRuntimeOptions
        {
            Replication = new ReplicationOptions { Window = w },
        });
        var sw = Stopwatch.StartNew();
        v.RequestResync("remote", full: true);
        if (!await v.DrainAsync(TimeSpan.FromMinutes(30)))
        {
            throw new InvalidOperationException("the full resync did not finish in 30 minutes");
        }
        return sw.Elapsed.TotalSeconds;
    }

    Console.Error.WriteLine($"full resync, {window} blocks in flight");
    double pipelined = await FullResyncAsync(window);
    Console.Error.WriteLine($"  {pipelined:0.0} s; full resync, one block at a time");
    double serial = await FullResyncAsync(1);
    Console.Error.WriteLine($"  {serial:0.0} s");

    // Fast resync: the remote is current; the link drops; 1 % of blocks change, 2 % are rewritten unchanged.
    long bytesChanged = 0, bytesSent;
    long dirtyBlocks;
    await using (MirrorVolume v = await MirrorVolume.OpenAsync(options, Factory, runtime: new VolumeRuntimeOptions { Replication = new ReplicationOptions { Window = window } }))
    {
        if (!await v.DrainAsync(TimeSpan.FromMinutes(5)))
        {
            throw new InvalidOperationException("the remote did not catch up before the fast-resync phase");
        }
        link!.Down = true;
        var rng = new Random(2);
        int changed = Math.Max(1, blocks / 100);
        int same = Math.Max(1, blocks / 50);
        var picked = Enumerable.Range(0, blocks).OrderBy(_ => rng.Next()).Take(changed + same).ToArray();
        byte[] buffer = new byte[blockSize];
        for (int i = 0; i < picked.Length; i++)
        {
            int f = picked[i] / blocksPerFile, b = picked[i] % blocksPerFile;
            long id = v.LookupId($"f{f}")!.Value;
            if (i < changed)
            {
                rng.NextBytes(buffer);
                bytesChanged += blockSize;
            }
            else
            {
                await v.ReadAsync(id, (long)b * blockSize, buffer);
            }
            await v.WriteAsync(id, (long)b * blockSize, buffer);
        }
        dirtyBlocks = picked.Length;
        v.RequestResync("remote", full: false);
        long before = link.BytesSent;
        link.Down = false;
        if (!await v.DrainAsync(TimeSpan.FromMinutes(10)))
        {
            throw new InvalidOperationException("the fast resync did not finish in 10 minutes");
        }
        bytesSent = link.BytesSent - before;
    }

    var result = new
    {
        benchmark = "resync",
        settings = new { sizeMib, blockSize, files, roundTripMs = rtt.TotalMilliseconds, window, link = "SimulatedLink, no bandwidth cap" },
        fullResync = new
        {
            pipelinedSeconds = Math.Round(pipelined, 2),
            oneAtATimeSeconds = Math.Round(serial, 2),
            speedup = Math.Round(serial / pipelined, 2),
            pipelinedMBps = Math.Round(sizeMib * 1.048576 / pipelined, 1),
            target = ">= 1.8",
            met = serial / pipelined >= 1.8,
        },
        fastResync = new
        {
            blocksChanged = bytesChanged / blockSize,
            blocksDirty = dirtyBlocks,
            bytesChanged,
            bytesSent,
            ratio = Math.Round((double)bytesSent / bytesChanged, 3),
            target = "<= 1.1",
            met = (double)bytesSent / bytesChanged <= 1.1,
        },
    };
    Console.WriteLine(JsonSerializer.Serialize(result, new JsonSerializerOptions { WriteIndented = true }));
}
finally
{
    Directory.Delete(root, recursive: true);
}
