using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Objects;
using CloudMirrorFs.Options;
using CloudMirrorFs.Volume;

// Engine I benchmark: the cost of the queue and dirty map on the write path, and memory under a large backlog.
// Prints one JSON object. Usage: dotnet run -c Release --project bench/CloudMirrorFs.Bench [-- --dir DIR] [--quick]
//   --phase backlog --dir DIR --bytes N --memory-limit N   (internal: run in a child process for a clean peak RSS)
//   --phase crc   (only the CRC-32C rates: serial against three lanes)
//   --phase remote-read   (only 4 KiB sequential reads served by an object-store facet)
//   --phase remote-tree [--dirs N] [--per-dir N]   (only what a large tree costs an object-store facet: commits, listings, renames)
//   --phase degraded-read [--backlog-mib N]   (what finding one file's queued changes costs with a spilled backlog)
//   --phase read-back [--backlog-mib N]   (a replicator's reading of a spilled backlog: rate, collections, page faults)
string? dirArg = Arg("--dir");
bool quick = args.Contains("--quick");
string root = dirArg ?? Path.Combine(Path.GetTempPath(), "cmfs-bench-" + Environment.ProcessId);
Directory.CreateDirectory(root);

if (Arg("--phase") == "crc")
{
    Console.WriteLine(Crc().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    return 0;
}

if (Arg("--phase") == "remote-read")
{
    Console.WriteLine((await RemoteRead(root)).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    Directory.Delete(root, recursive: true);
    return 0;
}

if (Arg("--phase") == "remote-tree")
{
    Console.WriteLine((await RemoteTree(root, int.Parse(Arg("--dirs") ?? "20000"), int.Parse(Arg("--per-dir") ?? "10"))).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    Directory.Delete(root, recursive: true);
    return 0;
}

if (Arg("--phase") == "degraded-read")
{
    Console.WriteLine(DegradedRead(root, int.Parse(Arg("--backlog-mib") ?? "1024")).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    Directory.Delete(root, recursive: true);
    return 0;
}

if (Arg("--phase") == "read-back")
{
    Console.WriteLine(ReadBack(root, int.Parse(Arg("--backlog-mib") ?? "1024")).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    Directory.Delete(root, recursive: true);
    return 0;
}

if (Arg("--phase") == "backlog")
{
    Console.WriteLine(JsonSerializer.Serialize(await Backlog(root, long.Parse(Arg("--bytes")!), long.Parse(Arg("--memory-limit")!))));
    return 0;
}

try
{
    int latencyWrites = quick ? 5_000 : 40_000;
    long throughputBytes = quick ? 128L << 20 : 512L << 20;
    long backlogBytes = quick ? 256L << 20 : 2L << 30;
    var result = new JsonObject
    {
        ["benchmark"] = "engine-write-path",
        ["machine"] = new JsonObject { ["cores"] = Environment.ProcessorCount, ["os"] = Environment.OSVersion.ToString() },
    };
    var sizes = new JsonArray();
    foreach (int blockSize in new[] { 64 * 1024, 256 * 1024, 1024 * 1024 })
    {
        var localOnly = await Latency(root, "local-only", blockSize, withRemote: false, latencyWrites);
        var withQueue = await Latency(root, "with-remote", blockSize, withRemote: true, latencyWrites);
        double tLocal = await Throughput(root, blockSize, withRemote: false, throughputBytes);
        double tQueue = await Throughput(root, blockSize, withRemote: true, throughputBytes);
        sizes.Add(new JsonObject
        {
            ["blockSize"] = blockSize,
            ["write4KiB"] = new JsonObject
            {
                ["localOnly"] = new JsonObject { ["p50us"] = localOnly.P50, ["p99us"] = localOnly.P99 },
                ["withRemoteQueued"] = new JsonObject { ["p50us"] = withQueue.P50, ["p99us"] = withQueue.P99 },
                ["p50Ratio"] = Math.Round(withQueue.P50 / localOnly.P50, 3),
                ["targetP50Ratio"] = 1.1,
            },
            ["write1MiB"] = new JsonObject
            {
                ["localOnlyMBps"] = Math.Round(tLocal, 1),
                ["withRemoteQueuedMBps"] = Math.Round(tQueue, 1),
                ["ratio"] = Math.Round(tQueue / tLocal, 3),
                ["targetRatio"] = 0.9,
            },
        });
    }
    result["blockSizes"] = sizes;
    result["crc32c"] = Crc();

    // Peak memory with a large backlog, in a child process so the peak is this phase's alone.
    long memoryLimit = 64L << 20;
    var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
    if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet")
    {
        psi.ArgumentList.Add(typeof(Program).Assembly.Location);
    }
    foreach (string a in new[] { "--phase", "backlog", "--dir", Path.Combine(root, "backlog"), "--bytes", backlogBytes.ToString(), "--memory-limit", memoryLimit.ToString() })
    {
        psi.ArgumentList.Add(a);
    }
    using var child = Process.Start(psi)!;
    string output = await child.StandardOutput.ReadToEndAsync();
    await child.WaitForExitAsync();
    result["backlog"] = JsonNode.Parse(output);
    Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    return 0;
}
finally
{
    if (dirArg is null)
    {
        Directory.Delete(root, recursive: true);
    }
}

// The checksum every spilled queue record pays twice (written, then read back): the interleaved lanes against the
// serial definition, over a 1 MiB record, median of 15 rounds of 64 MiB each.
static JsonObject Crc()
{
    byte[] data = new byte[1 << 20];
    new Random(1).NextBytes(data);
    double Rate(Func<byte[], uint> crc)
    {
        var rates = new List<double>();
        uint sink = 0;
        for (int round = 0; round < 16; round++)
        {
            var sw = Stopwatch.StartNew();
            for (int i = 0; i < 64; i++)
            {
                sink ^= crc(data);
            }
            if (round > 0)
            {
                rates.Add(64.0 * data.Length / 1e6 / sw.Elapsed.TotalSeconds); // the first round warms the JIT
            }
        }
        GC.KeepAlive(sink);
        rates.Sort();
        return rates[rates.Count / 2];
    }
    double serial = Rate(d => CloudMirrorFs.Storage.Crc32C.ComputeSerial(d));
    double lanes = Rate(d => CloudMirrorFs.Storage.Crc32C.Compute(d));
    return new JsonObject
    {
        ["serialMBps"] = Math.Round(serial),
        ["threeLanesMBps"] = Math.Round(lanes),
        ["speedup"] = Math.Round(lanes / serial, 2),
        ["usPerMiBThreeLanes"] = Math.Round(1.048576e6 / lanes / 1e0, 1),
    };
}

// Reads served by an object-store facet (the path of a drive whose local disk is gone): 4 KiB sequential reads of a
// committed 64 MiB file in a folder store, objects in the facet's cache after the first pass; median of 5 passes.
static async Task<JsonObject> RemoteRead(string root)
{
    const int blockSize = 256 * 1024;
    const long size = 64L << 20;
    var store = new CloudMirrorFs.Objects.FolderObjectStore(Path.Combine(root, "remote-read"));
    await using var facet = new CloudMirrorFs.Objects.ObjectStoreFacet("remote", "folder", store, blockSize, "bench");
    await facet.OpenAsync(default);
    var file = new FileRef(1, "f");
    await facet.CreateFileAsync(file, (UnixFileMode)0b110_100_100, default);
    byte[] chunk = new byte[1 << 20];
    new Random(1).NextBytes(chunk);
    for (long at = 0; at < size; at += chunk.Length)
    {
        await facet.WriteAsync(file, at, chunk, default);
    }
    await facet.CommitAsync(1, default);
    byte[] buffer = new byte[4096];
    var rates = new List<double>();
    long gen0 = 0;
    for (int pass = 0; pass < 6; pass++)
    {
        int before = GC.CollectionCount(0);
        var sw = Stopwatch.StartNew();
        for (long at = 0; at < size; at += buffer.Length)
        {
            await facet.ReadAsync(file, at, buffer, default);
        }
        if (pass > 0)
        {
            rates.Add(size / 4096 / sw.Elapsed.TotalSeconds);
            gen0 += GC.CollectionCount(0) - before;
        }
    }
    rates.Sort();
    return new JsonObject { ["reads4KiBPerSecond"] = Math.Round(rates[rates.Count / 2]), ["gen0CollectionsPer64MiB"] = Math.Round(gen0 / 5.0, 1) };
}

// "nothing draining yet": the queue and dirty map are on, no replicator consumes them.
// An object-store facet holding a large tree (folder store): what one commit of a 4 KiB write costs, what listing
// every folder costs (a resync's namespace pass does it), 2,000 folder renames, and 2,000 mkdir+rmdir.
static async Task<JsonObject> RemoteTree(string root, int dirs, int perDir)
{
    await using var facet = new ObjectStoreFacet("remote", "folder", new FolderObjectStore(Path.Combine(root, "store")), 256 * 1024, "bench");
    await facet.OpenAsync(default);
    long seq = 1, id = 1;
    for (int d = 0; d < dirs; d++)
    {
        await facet.CreateDirectoryAsync($"d{d}", (UnixFileMode)0b111_101_101, default);
        for (int f = 0; f < perDir; f++)
        {
            await facet.CreateFileAsync(new FileRef(id++, $"d{d}/f{f}"), (UnixFileMode)0b110_100_100, default);
        }
    }
    await facet.CommitAsync(seq++, default);
    const int commits = 500;
    byte[] small = new byte[4096];
    var sw = Stopwatch.StartNew();
    for (int i = 0; i < commits; i++)
    {
        await facet.WriteAsync(new FileRef(1 + (i % perDir), $"d0/f{i % perDir}"), 0, small, default);
        await facet.CommitAsync(seq++, default);
    }
    double commitMs = sw.Elapsed.TotalMilliseconds / commits;
    sw.Restart();
    long listed = 0;
    for (int d = 0; d < dirs; d++)
    {
        listed += (await facet.ListAsync($"d{d}", default)).Count;
    }
    double listMs = sw.Elapsed.TotalMilliseconds;
    int renames = Math.Min(dirs, 2000);
    sw.Restart();
    for (int d = 0; d < renames; d++)
    {
        await facet.RenameAsync($"d{d}", $"e{d}", default);
    }
    double renameMs = sw.Elapsed.TotalMilliseconds;
    sw.Restart();
    for (int d = 0; d < 2000; d++)
    {
        await facet.CreateDirectoryAsync($"x{d}", (UnixFileMode)0b111_101_101, default);
        await facet.DeleteDirectoryAsync($"x{d}", default);
    }
    double rmdirMs = sw.Elapsed.TotalMilliseconds;
    return new JsonObject
    {
        ["benchmark"] = "remote-tree",
        ["files"] = dirs * perDir,
        ["folders"] = dirs,
        ["commitOf4KiBWriteMs"] = Math.Round(commitMs, 2),
        ["listEveryFolderMs"] = Math.Round(listMs),
        ["namesListed"] = listed,
        [$"rename{renames}FoldersMs"] = Math.Round(renameMs),
        ["mkdirRmdir2000Ms"] = Math.Round(rmdirMs),
    };
}

// A degraded read (no local facet) lays the queue's changes for its file over a remote: with a backlog of 1 MiB writes
// to one file, spilled past the 64 MiB the queue keeps in memory, what finding another file's changes costs: a scan of
// everything held (as every first read did before) against the queue's index (PendingFor).
static JsonObject DegradedRead(string root, int backlogMiB)
{
    using var q = CloudMirrorFs.Queue.TransactionQueue.Open(Path.Combine(root, "queue"), new QueueOptions { MemoryLimit = 64L << 20, DiskLimit = 64L << 30 }, 256 * 1024, ["remote"]);
    byte[] chunk = new byte[1 << 20];
    new Random(1).NextBytes(chunk);
    for (int i = 0; i < backlogMiB; i++)
    {
        q.TryAppend(new CloudMirrorFs.Queue.Transaction { Kind = CloudMirrorFs.Queue.TransactionKind.Write, FileId = 1, Path = "big", Offset = (long)i << 20, Data = chunk }, out _);
        if (i % 64 == 0)
        {
            q.TryAppend(new CloudMirrorFs.Queue.Transaction { Kind = CloudMirrorFs.Queue.TransactionKind.Write, FileId = 2 + (i / 64), Path = $"small{i / 64}", Offset = 0, Data = chunk.AsMemory(0, 4096) }, out _);
        }
    }
    double scanMs = 0, indexMs = 0;
    const int files = 8;
    for (long f = 2; f < 2 + files; f++)
    {
        long id = f;
        var sw = Stopwatch.StartNew();
        int a = CountByReadingEverything(q, t => t.FileId == id || t.Kind == CloudMirrorFs.Queue.TransactionKind.Rename);
        scanMs += sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        int b = q.PendingFor("remote", id).Count;
        indexMs += sw.Elapsed.TotalMilliseconds;
        if (a != b)
        {
            throw new InvalidOperationException($"file {id}: the scan found {a} records, the index {b}");
        }
    }
    var timer = Stopwatch.StartNew();
    int untouched = q.PendingFor("remote", 100_000).Count;
    double untouchedMs = timer.Elapsed.TotalMilliseconds;
    // A listing of a folder holding the 16 small files and 100 the backlog does not touch: one query for all children.
    var children = Enumerable.Range(2, 16).Select(i => (long)i).Concat(Enumerable.Range(100_000, 100).Select(i => (long)i)).ToHashSet();
    timer.Restart();
    int listedByScan = CountByReadingEverything(q, t => children.Contains(t.FileId) || t.Kind == CloudMirrorFs.Queue.TransactionKind.Rename);
    double listScanMs = timer.Elapsed.TotalMilliseconds;
    timer.Restart();
    int listedByIndex = q.PendingFor("remote", children).Count;
    double listIndexMs = timer.Elapsed.TotalMilliseconds;
    if (listedByScan != listedByIndex)
    {
        throw new InvalidOperationException($"the listing: the scan found {listedByScan} records, the index {listedByIndex}");
    }
    return new JsonObject
    {
        ["benchmark"] = "degraded-read",
        ["backlogMiB"] = backlogMiB,
        ["scanOfEverythingMsPerFile"] = Math.Round(scanMs / files, 2),
        ["indexMsPerFile"] = Math.Round(indexMs / files, 2),
        ["untouchedFileMs"] = Math.Round(untouchedMs, 3),
        ["listingOf116ChildrenScanMs"] = Math.Round(listScanMs, 2),
        ["listingOf116ChildrenIndexMs"] = Math.Round(listIndexMs, 2),
        ["recordsFound"] = untouched,
    };
}

// A spilled backlog of 1 MiB writes read back in a replicator's batches (4,096 records, a quarter of the queue's
// memory), each batch disposed once read, as a replicator does once its commit has landed. Three passes over the same
// backlog (the first is counted too: it is the one a catch-up pays); the page cache holds the segments throughout.
static JsonObject ReadBack(string root, int backlogMiB)
{
    const long memoryLimit = 64L << 20;
    var queueOptions = new QueueOptions { MemoryLimit = memoryLimit, DiskLimit = 64L << 30 };
    var q = CloudMirrorFs.Queue.TransactionQueue.Open(Path.Combine(root, "queue"), queueOptions, 256 * 1024, ["remote"]);
    byte[] chunk = new byte[1 << 20];
    new Random(1).NextBytes(chunk);
    for (int i = 0; i < backlogMiB; i++)
    {
        q.TryAppend(new CloudMirrorFs.Queue.Transaction { Kind = CloudMirrorFs.Queue.TransactionKind.Write, FileId = 1, Path = "big", Offset = (long)i << 20, Data = chunk }, out _);
    }
    var passes = new JsonArray();
    for (int pass = 0; pass < 3; pass++)
    {
        int gen2 = GC.CollectionCount(2);
        long faults = MinorFaults();
        TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
        var sw = Stopwatch.StartNew();
        long bytes = 0;
        for (long after = 0; ;)
        {
            using CloudMirrorFs.Queue.QueueBatch batch = q.Read("remote", after, 4096, memoryLimit / 4);
            if (batch.Count == 0)
            {
                break;
            }
            foreach (CloudMirrorFs.Queue.Transaction t in batch)
            {
                bytes += t.Data.Length;
            }
            after = batch[^1].Seq;
        }
        double seconds = sw.Elapsed.TotalSeconds;
        passes.Add(new JsonObject
        {
            ["MBps"] = Math.Round(bytes / seconds / 1e6),
            ["cpuSeconds"] = Math.Round((Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds, 3),
            ["gen2Collections"] = GC.CollectionCount(2) - gen2,
            ["minorFaults"] = MinorFaults() - faults,
        });
    }
    // Reopening the queue reads every segment once (records checked and indexed, their data not kept): what a restart
    // with this backlog waits for before the drive mounts.
    q.Dispose();
    int gen2Open = GC.CollectionCount(2);
    long faultsOpen = MinorFaults();
    var opening = Stopwatch.StartNew();
    q = CloudMirrorFs.Queue.TransactionQueue.Open(Path.Combine(root, "queue"), queueOptions, 256 * 1024, ["remote"]);
    double openSeconds = opening.Elapsed.TotalSeconds;
    var reopen = new JsonObject
    {
        ["seconds"] = Math.Round(openSeconds, 3),
        ["gen2Collections"] = GC.CollectionCount(2) - gen2Open,
        ["minorFaults"] = MinorFaults() - faultsOpen,
        ["recordsKept"] = q.CursorInfo("remote").Count,
    };
    q.Dispose();
    using var self = Process.GetCurrentProcess();
    return new JsonObject { ["benchmark"] = "read-back", ["backlogMiB"] = backlogMiB, ["passes"] = passes, ["reopen"] = reopen, ["peakRssMiB"] = self.PeakWorkingSet64 >> 20 };

    static long MinorFaults() => long.Parse(File.ReadAllText("/proc/self/stat").Split(')')[1].Split(' ', StringSplitOptions.RemoveEmptyEntries)[7]);
}

// What every first degraded read did before the index: read back every record held (in batches, as a replicator
// reads) and keep the ones that match.
static int CountByReadingEverything(CloudMirrorFs.Queue.TransactionQueue q, Func<CloudMirrorFs.Queue.Transaction, bool> match)
{
    int count = 0;
    for (long after = 0; ;)
    {
        using CloudMirrorFs.Queue.QueueBatch batch = q.Read("remote", after, 1024, 64L << 20);
        if (batch.Count == 0)
        {
            return count;
        }
        count += batch.Count(match);
        after = batch[^1].Seq;
    }
}

static VolumeRuntimeOptions NoDrain() => new() { Replicate = false };

string? Arg(string name)
{
    int i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
}

static VolumeOptions Options(string dir, int blockSize, bool withRemote, long memoryLimit)
{
    if (Directory.Exists(dir))
    {
        Directory.Delete(dir, recursive: true);
    }
    var facets = new List<FacetOptions> { new() { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = Path.Combine(dir, "local") } };
    if (withRemote)
    {
        facets.Add(new FacetOptions { Name = "remote", Role = FacetRole.Remote, Kind = "directory", Path = Path.Combine(dir, "remote") });
    }
    return new VolumeOptions
    {
        Name = "bench",
        StateDir = Path.Combine(dir, "state"),
        BlockSize = blockSize,
        Queue = new QueueOptions { MemoryLimit = memoryLimit, DiskLimit = 64L << 30 },
        Facets = facets,
    };
}

static async Task<(double P50, double P99)> Latency(string root, string name, int blockSize, bool withRemote, int writes)
{
    string dir = Path.Combine(root, $"lat-{name}-{blockSize}");
    await using (MirrorVolume v = await MirrorVolume.OpenAsync(Options(dir, blockSize, withRemote, 1L << 30), runtime: NoDrain()))
    {
        long id = await v.CreateFileAsync("lat.bin");
        const long fileSize = 64L << 20;
        await v.SetLengthAsync(id, fileSize);
        byte[] buf = new byte[4096];
        new Random(1).NextBytes(buf);
        var rnd = new Random(2);
        var samples = new double[writes];
        for (int i = 0; i < writes + 2000; i++)
        {
            long offset = rnd.NextInt64(0, fileSize / 4096) * 4096;
            long t0 = Stopwatch.GetTimestamp();
            await v.WriteAsync(id, offset, buf);
            double us = Stopwatch.GetElapsedTime(t0).TotalMicroseconds;
            if (i >= 2000)
            {
                samples[i - 2000] = us; // the first 2000 warm the JIT and the caches
            }
        }
        Array.Sort(samples);
        return (Math.Round(samples[writes / 2], 2), Math.Round(samples[writes * 99 / 100], 2));
    }
}

static async Task<double> Throughput(string root, int blockSize, bool withRemote, long bytes)
{
    string dir = Path.Combine(root, $"tp-{withRemote}-{blockSize}");
    await using (MirrorVolume v = await MirrorVolume.OpenAsync(Options(dir, blockSize, withRemote, bytes + (64L << 20)), runtime: NoDrain()))
    {
        long id = await v.CreateFileAsync("tp.bin");
        byte[] buf = new byte[1 << 20];
        new Random(3).NextBytes(buf);
        long t0 = Stopwatch.GetTimestamp();
        for (long off = 0; off < bytes; off += buf.Length)
        {
            await v.WriteAsync(id, off, buf);
        }
        return bytes / 1e6 / Stopwatch.GetElapsedTime(t0).TotalSeconds;
    }
}

static async Task<JsonObject> Backlog(string dir, long bytes, long memoryLimit)
{
    long baseline;
    using (var p = Process.GetCurrentProcess())
    {
        baseline = p.WorkingSet64;
    }
    await using MirrorVolume v = await MirrorVolume.OpenAsync(Options(dir, 256 * 1024, withRemote: true, memoryLimit), runtime: NoDrain());
    long id = await v.CreateFileAsync("backlog.bin");
    byte[] buf = new byte[1 << 20];
    new Random(4).NextBytes(buf);
    long t0 = Stopwatch.GetTimestamp();
    for (long off = 0; off < bytes; off += buf.Length)
    {
        await v.WriteAsync(id, off, buf);
    }
    double seconds = Stopwatch.GetElapsedTime(t0).TotalSeconds;
    VolumeStatus s = v.GetStatus();
    using var proc = Process.GetCurrentProcess();
    proc.Refresh();
    return new JsonObject
    {
        ["backlogBytes"] = bytes,
        ["queueMemoryLimit"] = memoryLimit,
        ["queueMemoryBytes"] = s.QueueMemoryBytes,
        ["queueDiskBytes"] = s.QueueDiskBytes,
        ["queuedEntries"] = s.Facets.Single(f => f.Name == "remote").QueuedEntries,
        ["baselineRssBytes"] = baseline,
        ["peakRssBytes"] = proc.PeakWorkingSet64,
        ["peakOverBaselineBytes"] = proc.PeakWorkingSet64 - baseline,
        ["gcHeapBytes"] = GC.GetTotalMemory(forceFullCollection: true),
        ["writeMBps"] = Math.Round(bytes / 1e6 / seconds, 1),
    };
}
