using System.Diagnostics;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Tests.Volume;

/// <summary>A real writer process killed with SIGKILL in the middle of heavy writes, then the volume reopened.</summary>
[TestClass]
public sealed class CrashTests
{
    private const int BlockSize = 64 * 1024;

    public const int BlockSizeForTests = BlockSize;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [Timeout(240_000, CooperativeCancellation = true)]
    public async Task WriterKilled_Twenty_Rounds_QueueAndDirtyMapCoverEveryAcknowledgedOperation()
    {
        int roundsWithLostLocations = 0, roundsWithSpilledRecords = 0;
        long totalOps = 0;
        for (int round = 0; round < 20; round++)
        {
            using var dir = new TempDir($"crash{round}");
            string state = dir.Sub("state"), local = dir.Sub("local"), remote = dir.Sub("remote");
            string log = Path.Combine(dir.Path, "acked.log");
            // Alternate between a queue that holds everything in memory and one that spills almost at once.
            long memoryLimit = round % 2 == 0 ? 64L << 20 : 256 * 1024;
            await RunAndKillAsync(state, local, remote, memoryLimit, log, seed: 1000 + round, killAfterMs: 150 + (round * 37 % 400));

            var options = Options(state, local, remote, memoryLimit);
            await using MirrorVolume volume = await MirrorVolume.OpenAsync(options, runtime: new VolumeRuntimeOptions { Replicate = false });
            var (dirty, full, ns) = volume.GetDirtyMap("remote");
            var dirtySet = dirty.ToHashSet();
            var queued = new List<Transaction>();
            for (long after = 0; ;)
            {
                IReadOnlyList<Transaction> batch = volume.ReadQueue("remote", after, 1000, 64 << 20);
                if (batch.Count == 0)
                {
                    break;
                }
                queued.AddRange(batch);
                after = batch[^1].Seq;
            }
            var queuedBlocks = new HashSet<Location>();
            foreach (Transaction t in queued.Where(t => t.ChangesRange))
            {
                var (first, last) = t.Blocks(BlockSize);
                for (long b = first; b <= last; b++)
                {
                    queuedBlocks.Add(new Location(t.FileId, b));
                }
            }
            var queuedNamespace = queued.Where(t => !t.ChangesRange).Select(t => (t.Kind, t.FileId)).ToHashSet();
            if (dirtySet.Count > 0)
            {
                roundsWithLostLocations++;
                Assert.AreEqual(FacetState.NotSynchronised, volume.GetFacetState("remote"), "a remote with lost locations is NotSynchronised");
            }
            if (queued.Any(t => t.Kind == TransactionKind.Write))
            {
                roundsWithSpilledRecords++;
            }

            string[] lines = File.ReadAllLines(log);
            Assert.IsTrue(lines.Length > 20, $"round {round}: the writer acknowledged only {lines.Length} operations before the kill");
            totalOps += lines.Length;
            var deleted = lines.Where(l => l.StartsWith('D')).Select(l => long.Parse(l.Split(' ')[1])).ToHashSet();
            var missing = new HashSet<long>();
            for (int li = 0; li < lines.Length; li++)
            {
                string line = lines[li];
                string[] p = line.Split(' ');
                switch (p[0])
                {
                    case "Z":
                        long zid = long.Parse(p[1]), zoffset = long.Parse(p[2]), zlength = long.Parse(p[3]);
                        for (long b = zoffset / BlockSize; b <= (zoffset + zlength - 1) / BlockSize; b++)
                        {
                            var loc = new Location(zid, b);
                            Assert.IsTrue(full || queuedBlocks.Contains(loc) || dirtySet.Contains(loc),
                                $"round {round}: acknowledged zeroing '{line}': {loc} is neither queued nor in the dirty map");
                        }
                        break;
                    case "W":
                        long id = long.Parse(p[1]), offset = long.Parse(p[2]);
                        int length = int.Parse(p[3]), seed = int.Parse(p[4]);
                        for (long b = offset / BlockSize; b <= (offset + length - 1) / BlockSize; b++)
                        {
                            var loc = new Location(id, b);
                            Assert.IsTrue(full || queuedBlocks.Contains(loc) || dirtySet.Contains(loc),
                                $"round {round}: acknowledged write '{line}': {loc} is neither queued nor in the dirty map");
                        }
                        if (!deleted.Contains(id) && volume.PathOf(id) is null)
                        {
                            // Only the one operation in flight at the kill (a delete or rename not yet acknowledged) may do this.
                            missing.Add(id);
                            Assert.IsTrue(missing.Count <= 1, $"round {round}: files {string.Join(", ", missing)} vanished without an acknowledged delete");
                        }
                        else if (!deleted.Contains(id))
                        {
                            byte[] actual = new byte[length];
                            int n = await volume.ReadAsync(id, offset, actual);
                            Assert.AreEqual(length, n, $"round {round}: '{line}' short on the local facet");
                            // The ranges zeroed after this write read as zeros; one still in flight at the kill, either way.
                            byte[] expected = Pattern(seed, length);
                            foreach (string later in lines.Skip(li + 1).Where(l => l.StartsWith('z') || l.StartsWith('Z')))
                            {
                                string[] z = later.Split(' ');
                                long from = Math.Max(offset, long.Parse(z[2])), to = Math.Min(offset + length, long.Parse(z[2]) + long.Parse(z[3]));
                                if (long.Parse(z[1]) != id || from >= to)
                                {
                                    continue;
                                }
                                bool acknowledged = z[0] == "Z" || lines.Contains("Z" + later[1..]);
                                for (long i = from; i < to; i++)
                                {
                                    if (acknowledged || actual[i - offset] == 0)
                                    {
                                        expected[i - offset] = 0;
                                    }
                                }
                            }
                            CollectionAssert.AreEqual(expected, actual, $"round {round}: '{line}' bytes differ on the local facet");
                        }
                        break;
                    case "C" or "R" or "D":
                        TransactionKind kind = p[0] switch { "C" => TransactionKind.CreateFile, "R" => TransactionKind.Rename, _ => TransactionKind.DeleteFile };
                        Assert.IsTrue(ns || full || queuedNamespace.Contains((kind, long.Parse(p[1]))),
                            $"round {round}: acknowledged '{line}' is neither queued nor covered by a namespace mark");
                        break;
                }
            }
        }
        TestContext.WriteLine($"{totalOps} acknowledged operations checked; {roundsWithLostLocations} rounds recovered through the dirty map, {roundsWithSpilledRecords} through queue records");
        Assert.IsTrue(roundsWithLostLocations >= 5, "the in-memory queue path (intent map) was exercised");
        Assert.IsTrue(roundsWithSpilledRecords >= 5, "the spilled queue path was exercised");
    }

    public static VolumeOptions Options(string state, string local, string remote, long memoryLimit, string remoteKind = "directory",
        IReadOnlyDictionary<string, string>? remoteSettings = null) => new()
    {
        Name = "crash",
        StateDir = state,
        BlockSize = BlockSize,
        Queue = new QueueOptions { MemoryLimit = memoryLimit, SegmentSize = 4 << 20 },
        Facets =
        [
            new FacetOptions { Name = "local", Role = FacetRole.Local, Kind = "directory", Path = local },
            new FacetOptions { Name = "remote", Role = FacetRole.Remote, Kind = remoteKind, Path = remote, Settings = remoteSettings ?? new Dictionary<string, string>() },
        ],
    };

    public static byte[] Pattern(int seed, int length)
    {
        byte[] b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    public static async Task RunAndKillAsync(string state, string local, string remote, long memoryLimit, string log, int seed, int killAfterMs, bool replicate = false, string remoteKind = "directory", string mode = "mixed",
        IReadOnlyDictionary<string, string>? remoteSettings = null)
    {
        string writer = Path.Combine(AppContext.BaseDirectory, "CloudMirrorFs.TestWriter.dll");
        Assert.IsTrue(File.Exists(writer), $"the crash writer is missing at {writer}; build tests/CloudMirrorFs.TestWriter");
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (string a in new[] { writer, state, local, remote, memoryLimit.ToString(), log, seed.ToString() })
        {
            psi.ArgumentList.Add(a);
        }
        psi.ArgumentList.Add(replicate ? "replicate" : "no-replicate");
        psi.ArgumentList.Add(remoteKind);
        psi.ArgumentList.Add(mode);
        foreach (var (key, value) in remoteSettings ?? new Dictionary<string, string>())
        {
            psi.Environment[$"CMFS_TEST_REMOTE_{key}"] = value;
        }
        using var process = Process.Start(psi)!;
        Task<string> stderr = process.StandardError.ReadToEndAsync();
        string? ready = await process.StandardOutput.ReadLineAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.AreEqual("ready", ready, $"the writer did not start: {(process.HasExited ? await stderr : "")}");
        // The kill comes at a varying moment after the writer is under way (its first operations acknowledged), so
        // that a slow start on a loaded machine does not make the round meaningless.
        var started = Stopwatch.StartNew();
        while (AcknowledgedLines(log) <= 20 && !process.HasExited && started.Elapsed < TimeSpan.FromSeconds(60))
        {
            await Task.Delay(10);
        }
        await Task.Delay(killAfterMs);
        Assert.IsFalse(process.HasExited, $"the writer stopped before the kill: {(process.HasExited ? await stderr : "")}");
        process.Kill(); // SIGKILL on Unix
        await process.WaitForExitAsync();
    }

    private static int AcknowledgedLines(string log)
    {
        if (!File.Exists(log))
        {
            return 0;
        }
        using var stream = new FileStream(log, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd().Count(c => c == '\n');
    }
}
