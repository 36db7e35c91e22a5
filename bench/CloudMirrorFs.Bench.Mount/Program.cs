using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Encodings.Web;
using System.Text.Json.Nodes;
using CloudMirrorFs.Bench.Mount;

// Mount benchmark: our drive (cmfs mount) against a plain folder (raw) and libfuse's passthrough_ll example
// (passthrough), all three side by side on one file system: a tmpfs for throughput and metadata, /var/tmp on disk for
// fsync latency. Each metric is the median of --runs runs, the target order rotated every run.
// Prints one JSON document on stdout, progress on stderr. Needs root (see README.md).
// Usage: dotnet run -c Release --project bench/CloudMirrorFs.Bench.Mount [-- --runs N] [--quick] [--keep]
if (args.Contains("--help") || args.Contains("-h"))
{
    Console.Error.WriteLine(BenchOptions.Usage);
    return 0;
}
BenchOptions options;
try
{
    options = BenchOptions.Parse(args);
}
catch (ArgumentException e)
{
    Console.Error.WriteLine($"cmfs-bench-mount: {e.Message}\n{BenchOptions.Usage}");
    return 2;
}

string[] targetNames = ["raw", "passthrough", "cmfs"];
string root = Path.Combine("/var/tmp", $"cmfs-bench-mount-{Environment.ProcessId}");
string cmfsDll = Path.Combine(AppContext.BaseDirectory, "cmfs.dll");
var cleanup = new Cleanup();
using var cts = new CancellationTokenSource();
CancellationToken ct = cts.Token;
var finished = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    OnSignal("Ctrl+C");
};
using PosixSignalRegistration sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
{
    c.Cancel = true;
    OnSignal("SIGTERM");
});

var result = new JsonObject
{
    ["benchmark"] = "mount",
    ["settings"] = new JsonObject
    {
        ["runs"] = options.Runs,
        ["quick"] = options.Quick,
        ["statistic"] = "median over runs",
        ["order"] = "target order rotated every run (raw, passthrough, cmfs; passthrough, cmfs, raw; cmfs, raw, passthrough; ...)",
        ["seqWriteBytes"] = options.SeqWriteBytes,
        ["randReadFileBytes"] = options.RandReadFileBytes,
        ["randReadSeconds"] = options.RandReadSeconds,
        ["metaFiles"] = options.MetaFiles,
        ["fsyncWrites"] = options.FsyncWrites,
        ["phases"] = new JsonArray([.. BenchOptions.AllPhases.Where(options.Includes).Select(p => (JsonNode?)p)]),
        ["tmpfs"] = $"mount -t tmpfs -o size={options.TmpfsSize} tmpfs <root>/tmpfs",
    },
    ["machine"] = Machine(),
};
var sites = new List<Site>();
int exitCode = 0;
try
{
    Prerequisites.Check(cmfsDll);
    if (Directory.Exists(root))
    {
        throw new BenchFailureException($"{root} already exists");
    }
    _ = Directory.CreateDirectory(root);
    _ = cleanup.Add($"delete {root}", () => DeleteRoot());
    Log.Info($"working in {root}; compiling passthrough_ll and metaops");
    Toolchain tools = await Toolchain.BuildAsync(Path.Combine(root, "bin"), cmfsDll, ct);
    result["versions"] = tools.Versions;

    var seq = new MetricSeries("MB/s", 1);
    var rand = new MetricSeries("IOPS", 0);
    var randWrite = new MetricSeries("IOPS", 0);
    var meta = new MetricSeries("files/s", 1);
    var fsyncP50 = new MetricSeries("us", 1);
    var fsyncP99 = new MetricSeries("us", 1);
    var busyP50 = new MetricSeries("us", 1);
    var busyP99 = new MetricSeries("us", 1);
    var metrics = new JsonObject();
    result["metrics"] = metrics;

    // Throughput and metadata: everything on a tmpfs of our own (the disk's timings vary 2x from run to run).
    if (options.Phases.Any(p => !BenchOptions.DiskPhases.Contains(p)))
    {
        Site ram = await Site.CreateAsync(Path.Combine(root, "tmpfs"), tmpfs: true, options, tools, cleanup, ct);
        sites.Add(ram);
        try
        {
            if (options.Includes("seq-write"))
            {
                var phase = new PhaseRunner("seq-write", ram, options.Runs);
                async Task<double> SeqWriteAsync(BenchTarget t)
                {
                    string file = Path.Combine(t.WorkPath, "seq.bin");
                    JsonElement job = await Fio.RunAsync(Fio.SeqWriteArgs(file, options.SeqWriteBytes), TimeSpan.FromMinutes(10), ct);
                    await Io.RunAsync($"delete {file}", () => File.Delete(file), TimeSpan.FromSeconds(60), ct);
                    return Fio.WriteMBps(job);
                }
                var seqWarmUp = new JsonObject();
                foreach (BenchTarget t in ram.Targets)
                {
                    // Untimed, on every target alike, as for metadata: a fresh daemon's JIT compiles and tiers up the write
                    // and replication paths over the first few hundred MiB, on the same two cores. The rates are kept.
                    var rates = new JsonArray();
                    seqWarmUp[t.Name] = rates;
                    for (int r = 0; r < options.SeqWarmUpRuns; r++)
                    {
                        await phase.OnceAsync(t, $"warm-up {r + 1}/{options.SeqWarmUpRuns}", async t =>
                        {
                            double mbps = await SeqWriteAsync(t);
                            rates.Add(Math.Round(mbps, 1));
                            return $"{mbps:0.0} MB/s (not counted)";
                        }, ct);
                    }
                }
                await phase.RunAsync(async t =>
                {
                    double mbps = await SeqWriteAsync(t);
                    seq.Add(t.Name, mbps);
                    return $"{mbps:0.0} MB/s";
                }, ct);
                metrics["seqWrite1MiB"] = Metric(seq, phase, ram, new JsonObject
                {
                    ["fio"] = "fio " + string.Join(' ', Fio.SeqWriteArgs("<target>/seq.bin", options.SeqWriteBytes)),
                    ["value"] = "jobs[0].write.bw_bytes / 1e6",
                    ["between runs"] = "file removed",
                    ["warmUp"] = new JsonObject { ["runs"] = options.SeqWarmUpRuns, ["note"] = "untimed runs per target first", ["mbPerSecond"] = seqWarmUp },
                });
            }

            // The random phases share one file per target, laid out once (by the first of them that runs).
            bool randomPhases = options.Includes("rand-read") || options.Includes("rand-write");
            if (randomPhases)
            {
                var layout = new PhaseRunner(options.Includes("rand-read") ? "rand-read" : "rand-write", ram, options.Runs);
                foreach (BenchTarget t in ram.Targets)
                {
                    await layout.OnceAsync(t, "layout", async t =>
                    {
                        _ = await Fio.RunAsync(Fio.LayoutArgs(RandFile(t), options.RandReadFileBytes), TimeSpan.FromMinutes(10), ct);
                        return $"{options.RandReadFileBytes >> 20} MiB laid out";
                    }, ct);
                }
            }
            if (options.Includes("rand-read"))
            {
                var phase = new PhaseRunner("rand-read", ram, options.Runs);
                await phase.RunAsync(async t =>
                {
                    string file = RandFile(t);
                    // Read the whole file once so the page cache holds it, then the timed random reads.
                    _ = await Shell.CheckAsync("dd", [$"if={file}", "of=/dev/null", "bs=1M", "status=none"], TimeSpan.FromMinutes(5), ct);
                    int seconds = options.RandReadSeconds;
                    JsonElement job = await Fio.RunAsync(Fio.RandReadArgs(file, options.RandReadFileBytes, seconds), TimeSpan.FromSeconds(seconds + 120), ct);
                    double iops = Fio.ReadIops(job);
                    rand.Add(t.Name, iops);
                    return $"{iops:0} IOPS";
                }, ct);
                metrics["randRead4KiBWarm"] = Metric(rand, phase, ram, new JsonObject
                {
                    ["layout"] = "once per target: fio " + string.Join(' ', Fio.LayoutArgs("<target>/rand.bin", options.RandReadFileBytes)),
                    ["warm"] = "before every run: dd if=<target>/rand.bin of=/dev/null bs=1M",
                    ["fio"] = "fio " + string.Join(' ', Fio.RandReadArgs("<target>/rand.bin", options.RandReadFileBytes, options.RandReadSeconds)),
                    ["value"] = "jobs[0].read.iops",
                    ["note"] = "--invalidate=0 keeps fio from dropping the warmed page cache (fadvise DONTNEED) before the job",
                });
            }
            if (options.Includes("rand-write"))
            {
                var phase = new PhaseRunner("rand-write", ram, options.Runs);
                await phase.RunAsync(async t =>
                {
                    int seconds = options.RandReadSeconds;
                    JsonElement job = await Fio.RunAsync(Fio.RandWriteArgs(RandFile(t), options.RandReadFileBytes, seconds), TimeSpan.FromSeconds(seconds + 120), ct);
                    double iops = Fio.WriteIops(job);
                    randWrite.Add(t.Name, iops);
                    return $"{iops:0} IOPS";
                }, ct);
                metrics["randWrite4KiB"] = Metric(randWrite, phase, ram, new JsonObject
                {
                    ["fio"] = "fio " + string.Join(' ', Fio.RandWriteArgs("<target>/rand.bin", options.RandReadFileBytes, options.RandReadSeconds)),
                    ["value"] = "jobs[0].write.iops",
                    ["note"] = "no target; cmfsDrainSeconds is how long the folder remote took to catch up after each run",
                });
            }
            if (randomPhases)
            {
                var cleanupPhase = new PhaseRunner("rand", ram, options.Runs);
                foreach (BenchTarget t in ram.Targets)
                {
                    await cleanupPhase.OnceAsync(t, "remove", async t =>
                    {
                        await Io.RunAsync($"delete {RandFile(t)}", () => File.Delete(RandFile(t)), TimeSpan.FromSeconds(60), ct);
                        return "file removed";
                    }, ct);
                }
            }
            if (options.Includes("metadata"))
            {
                var phase = new PhaseRunner("metadata", ram, options.Runs);
                var warmUp = new JsonObject();
                foreach (BenchTarget t in ram.Targets)
                {
                    string dir = Path.Combine(t.WorkPath, "meta");
                    await Io.RunAsync($"mkdir {dir}", () => Directory.CreateDirectory(dir), TimeSpan.FromSeconds(30), ct);
                    // Untimed, on every target alike: the daemon's JIT is still tiering up the create/unlink paths for the
                    // first ten thousand files or so, and a drive runs for days. Its rate is kept in the output, not hidden.
                    await phase.OnceAsync(t, "warm-up", async t =>
                    {
                        double fps = await MetaOps.MetaAsync(tools.MetaOpsBinary, dir, options.MetaWarmUpFiles, ct);
                        warmUp[t.Name] = Math.Round(fps, 1);
                        return $"{fps:0} files/s ({options.MetaWarmUpFiles} files, not counted)";
                    }, ct);
                }
                await phase.RunAsync(async t =>
                {
                    double fps = await MetaOps.MetaAsync(tools.MetaOpsBinary, Path.Combine(t.WorkPath, "meta"), options.MetaFiles, ct);
                    meta.Add(t.Name, fps);
                    return $"{fps:0} files/s";
                }, ct);
                metrics["metadata"] = Metric(meta, phase, ram, new JsonObject
                {
                    ["helper"] = $"metaops meta <target>/meta {options.MetaFiles}",
                    ["warmUp"] = new JsonObject { ["files"] = options.MetaWarmUpFiles, ["note"] = "one untimed run per target first", ["filesPerSecond"] = warmUp },
                    ["loop"] = "open(O_CREAT|O_WRONLY) + write 4 KiB + close + stat + unlink, timed as a whole with clock_gettime(CLOCK_MONOTONIC)",
                });
            }
        }
        finally
        {
            Log.Info("tmpfs phases done: stopping the mounts and unmounting the tmpfs");
            await ram.DisposeAsync();
        }
    }

    if (BenchOptions.DiskPhases.Any(options.Includes))
    {
        // fsync latency: everything on disk, under /var/tmp.
        Site disk = await Site.CreateAsync(Path.Combine(root, "disk"), tmpfs: false, options, tools, cleanup, ct);
        sites.Add(disk);
        try
        {
            if (options.Includes("fsync"))
            {
                var phase = new PhaseRunner("fsync", disk, options.Runs);
                await phase.RunAsync(async t =>
                {
                    var (p50, p99, mean, max) = await MetaOps.FsyncAsync(tools.MetaOpsBinary, Path.Combine(t.WorkPath, "fsync.bin"), options.FsyncWrites, ct);
                    fsyncP50.Add(t.Name, p50);
                    fsyncP99.Add(t.Name, p99);
                    return $"p50 {p50:0.0} us, p99 {p99:0.0} us, mean {mean:0.0} us, max {max:0.0} us";
                }, ct);
                metrics["fsync4KiB"] = Latency(fsyncP50, fsyncP99, phase, disk,
                    "pwrite 4 KiB at offset i * 4 KiB + fsync on a new file, each pair timed; file removed after the run");
            }
            if (options.Includes("fsync-busy"))
            {
                // The same loop while another file takes a stream of large writes, none fsync'd: what a database's
                // commit costs beside a copy. Each target's fsync should wait for its own file only.
                var phase = new PhaseRunner("fsync-busy", disk, options.Runs);
                await phase.RunAsync(async t =>
                {
                    using var writer = new BusyWriter(Path.Combine(t.WorkPath, "busy.bin"), options.BusyWriterBytes);
                    await writer.StartedAsync(ct);
                    var (p50, p99, mean, max) = await MetaOps.FsyncAsync(tools.MetaOpsBinary, Path.Combine(t.WorkPath, "fsync.bin"), options.FsyncWrites, ct);
                    long written = await writer.StopAsync();
                    busyP50.Add(t.Name, p50);
                    busyP99.Add(t.Name, p99);
                    return $"p50 {p50:0.0} us, p99 {p99:0.0} us, mean {mean:0.0} us, max {max:0.0} us; the writer wrote {written >> 20} MiB meanwhile";
                }, ct);
                metrics["fsync4KiBBesideAWriter"] = Latency(busyP50, busyP99, phase, disk,
                    "as fsync4KiB, while a thread of the bench writes <target>/busy.bin in 1 MiB writes, never fsync'd, "
                    + $"starting over at offset 0 after {options.BusyWriterBytes >> 20} MiB; the loop starts once 64 MiB are written");
            }
        }
        finally
        {
            Log.Info("disk phase done: stopping the mounts");
            await disk.DisposeAsync();
        }
    }

    // Ratios of the phases that ran (--phases may leave some out).
    var ratios = new JsonObject();
    var otherRatios = new JsonObject();
    if (options.Includes("seq-write"))
    {
        ratios["seqWriteCmfsOverPassthrough"] = Ratio(seq.Median("cmfs"), seq.Median("passthrough"), atLeast: true, 1.0);
        otherRatios["seqWriteCmfsOverRaw"] = Round(seq.Median("cmfs") / seq.Median("raw"));
        otherRatios["seqWritePassthroughOverRaw"] = Round(seq.Median("passthrough") / seq.Median("raw"));
    }
    if (options.Includes("fsync"))
    {
        ratios["fsyncP50CmfsOverPassthrough"] = Ratio(fsyncP50.Median("cmfs"), fsyncP50.Median("passthrough"), atLeast: false, 1.3);
        otherRatios["fsyncP50CmfsOverRaw"] = Round(fsyncP50.Median("cmfs") / fsyncP50.Median("raw"));
        otherRatios["fsyncP99CmfsOverPassthrough"] = Round(fsyncP99.Median("cmfs") / fsyncP99.Median("passthrough"));
    }
    if (options.Includes("fsync-busy"))
    {
        otherRatios["fsyncBesideAWriterP50CmfsOverPassthrough"] = Round(busyP50.Median("cmfs") / busyP50.Median("passthrough"));
        otherRatios["fsyncBesideAWriterP99CmfsOverPassthrough"] = Round(busyP99.Median("cmfs") / busyP99.Median("passthrough"));
        otherRatios["fsyncBesideAWriterP50CmfsOverRaw"] = Round(busyP50.Median("cmfs") / busyP50.Median("raw"));
    }
    if (options.Includes("metadata"))
    {
        ratios["metadataCmfsOverPassthrough"] = Ratio(meta.Median("cmfs"), meta.Median("passthrough"), atLeast: true, 0.8);
        otherRatios["metadataCmfsOverRaw"] = Round(meta.Median("cmfs") / meta.Median("raw"));
        otherRatios["metadataPassthroughOverRaw"] = Round(meta.Median("passthrough") / meta.Median("raw"));
    }
    if (options.Includes("rand-read"))
    {
        ratios["randReadCmfsOverRaw"] = Ratio(rand.Median("cmfs"), rand.Median("raw"), atLeast: true, 0.9);
        otherRatios["randReadCmfsOverPassthrough"] = Round(rand.Median("cmfs") / rand.Median("passthrough"));
        otherRatios["randReadPassthroughOverRaw"] = Round(rand.Median("passthrough") / rand.Median("raw"));
    }
    if (options.Includes("rand-write"))
    {
        otherRatios["randWriteCmfsOverPassthrough"] = Round(randWrite.Median("cmfs") / randWrite.Median("passthrough"));
    }
    result["ratios"] = ratios;
    result["otherRatios"] = otherRatios;
    var targetsMet = new JsonObject();
    (string Phase, string Ratio)[] targets =
    [
        ("seqWrite", "seqWriteCmfsOverPassthrough"),
        ("fsyncP50", "fsyncP50CmfsOverPassthrough"),
        ("metadata", "metadataCmfsOverPassthrough"),
        ("randRead", "randReadCmfsOverRaw"),
    ];
    foreach (var (phase, key) in targets)
    {
        if (ratios[key] is { } r)
        {
            targetsMet[phase] = r["met"]!.GetValue<bool>();
        }
    }
    targetsMet["all"] = ratios.All(r => r.Value!["met"]!.GetValue<bool>());
    result["targetsMet"] = targetsMet;
}
catch (OperationCanceledException) when (ct.IsCancellationRequested)
{
    exitCode = 130;
    result["error"] = "interrupted";
}
catch (BenchFailureException e)
{
    exitCode = 1;
    result["error"] = e.Message;
    Log.Info("FAILED: " + e.Message);
}
finally
{
    await cleanup.RunAllAsync();
    _ = finished.TrySetResult();
}

var siteJson = new JsonObject();
var problems = new JsonArray();
foreach (Site s in sites)
{
    siteJson[s.Kind] = s.Describe();
    foreach (BenchTarget t in s.Targets)
    {
        foreach (string p in t.Problems)
        {
            problems.Add($"{s.Kind}/{t.Name}: {p}");
        }
    }
}
result["sites"] = siteJson;
result["problems"] = problems;
if (problems.Count > 0)
{
    Log.Info($"{problems.Count} problem(s) seen; see \"problems\" in the JSON");
}
Console.WriteLine(result.ToJsonString(new JsonSerializerOptions { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
return exitCode;

string RandFile(BenchTarget t) => Path.Combine(t.WorkPath, "rand.bin");

JsonObject Latency(MetricSeries p50, MetricSeries p99, PhaseRunner phase, Site site, string loop) => new()
{
    ["site"] = site.Kind,
    ["unit"] = "us",
    ["helper"] = $"metaops fsync <target>/fsync.bin {options.FsyncWrites}",
    ["loop"] = loop,
    ["p50"] = p50.ToJson(targetNames),
    ["p99"] = p99.ToJson(targetNames),
    ["order"] = phase.Orders.DeepClone(),
    ["cmfsDrainSeconds"] = phase.CmfsDrainSeconds.DeepClone(),
    ["daemonCpuSeconds"] = phase.DaemonCpuSeconds.DeepClone(),
};

JsonObject Metric(MetricSeries series, PhaseRunner phase, Site site, JsonObject how)
{
    JsonObject m = series.ToJson(targetNames);
    m["site"] = site.Kind;
    m["how"] = how;
    m["order"] = phase.Orders.DeepClone();
    m["cmfsDrainSeconds"] = phase.CmfsDrainSeconds.DeepClone();
    m["daemonCpuSeconds"] = phase.DaemonCpuSeconds.DeepClone();
    return m;
}

JsonObject Ratio(double cmfs, double baseline, bool atLeast, double target)
{
    double value = cmfs / baseline;
    return new JsonObject
    {
        ["value"] = Round(value),
        ["target"] = (atLeast ? ">= " : "<= ") + target.ToString("0.0#", System.Globalization.CultureInfo.InvariantCulture),
        ["met"] = !double.IsNaN(value) && (atLeast ? value >= target : value <= target),
    };
}

double? Round(double value) => double.IsFinite(value) ? Math.Round(value, 3) : null;

async Task DeleteRoot()
{
    if (options.Keep)
    {
        Log.Info($"--keep: leaving {root}");
        return;
    }
    List<string> mounted = Mounts.Under(root);
    if (mounted.Count > 0)
    {
        Log.Info($"not deleting {root}: still mounted: {string.Join(", ", mounted)}");
        return;
    }
    await Task.Run(() => Directory.Delete(root, recursive: true));
}

void OnSignal(string name)
{
    if (cts.IsCancellationRequested)
    {
        return;
    }
    Log.Info($"{name}: stopping and cleaning up");
    cts.Cancel();
    _ = Task.Run(async () =>
    {
        if (await Task.WhenAny(finished.Task, Task.Delay(TimeSpan.FromSeconds(60))) != finished.Task)
        {
            Log.Info("the bench did not wind down within 60 s of the signal; cleaning up from the signal handler");
            await cleanup.RunAllAsync();
            Environment.Exit(130);
        }
    });
}

static JsonObject Machine()
{
    string? cpu = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim();
    string? mem = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
    long memKiB = mem is null ? 0 : long.Parse(mem.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture);
    return new JsonObject
    {
        ["cores"] = Environment.ProcessorCount,
        ["cpu"] = cpu,
        ["memoryGiB"] = Math.Round(memKiB / 1048576.0, 1),
        ["os"] = RuntimeInformation.OSDescription,
    };
}
