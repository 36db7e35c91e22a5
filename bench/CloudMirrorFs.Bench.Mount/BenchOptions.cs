using System.Globalization;

namespace CloudMirrorFs.Bench.Mount;

/// <summary>Command-line settings; sizes shrink with --quick.</summary>
internal sealed record BenchOptions
{
    public const string Usage = """
        usage: dotnet run -c Release --project bench/CloudMirrorFs.Bench.Mount [-- options]
          --runs N            runs per metric and target, the median is reported (default 5; 3 with --quick)
          --quick             smoke check: 3 runs and smaller sizes
          --keep              leave the temp folders (and the tmpfs) for debugging; the mounts are still stopped
          --meta-files N      files per metadata run (default 3000)
          --fsync-writes N    4 KiB write+fsync pairs per latency run (default 500)
          --phases LIST       only these phases, comma-separated, from: seq-write, rand-read, rand-write, metadata, fsync,
                              fsync-busy (default all); a partial run's targetsMet covers the phases it ran
        Needs root, /dev/fuse, gcc, fio and libfuse3-dev. Prints one JSON document on stdout, progress on stderr.
        """;

    /// <summary>Every phase, in the order the bench runs them.</summary>
    public static readonly string[] AllPhases = ["seq-write", "rand-read", "rand-write", "metadata", "fsync", "fsync-busy"];

    /// <summary>The phases that run on the disk site; the others run on the tmpfs.</summary>
    public static readonly string[] DiskPhases = ["fsync", "fsync-busy"];

    public int Runs { get; init; } = 5;

    /// <summary>The phases to run (--phases); all by default.</summary>
    public IReadOnlySet<string> Phases { get; init; } = new HashSet<string>(AllPhases);

    public bool Includes(string phase) => Phases.Contains(phase);

    public bool Quick { get; init; }

    public bool Keep { get; init; }

    /// <summary>Bytes per sequential-write run (fio --size).</summary>
    public long SeqWriteBytes { get; init; } = 512L << 20;

    /// <summary>Untimed sequential-write runs that come first on every target (JIT warm-up for cmfs).</summary>
    public int SeqWarmUpRuns { get; init; } = 2;

    /// <summary>Size of the file the random reads use.</summary>
    public long RandReadFileBytes { get; init; } = 256L << 20;

    public int RandReadSeconds { get; init; } = 5;

    public int MetaFiles { get; init; } = 3000;

    /// <summary>Files in the untimed metadata run that comes first on every target (JIT warm-up for cmfs).</summary>
    public int MetaWarmUpFiles { get; init; } = 20000;

    public int FsyncWrites { get; init; } = 500;

    /// <summary>How far the fsync-busy phase's writer goes into its file before it starts over at the beginning.</summary>
    public long BusyWriterBytes { get; init; } = 2L << 30;

    public string TmpfsSize { get; init; } = "12g";

    public static BenchOptions Parse(IReadOnlyList<string> args)
    {
        bool quick = args.Contains("--quick");
        var o = quick
            ? new BenchOptions { Quick = true, Runs = 3, SeqWriteBytes = 128L << 20, SeqWarmUpRuns = 1, RandReadFileBytes = 64L << 20, RandReadSeconds = 2, MetaFiles = 1000, MetaWarmUpFiles = 3000, FsyncWrites = 100, BusyWriterBytes = 512L << 20 }
            : new BenchOptions();
        for (int i = 0; i < args.Count; i++)
        {
            switch (args[i])
            {
                case "--quick":
                    break;
                case "--keep":
                    o = o with { Keep = true };
                    break;
                case "--runs":
                    o = o with { Runs = Positive(args, ++i, "--runs") };
                    break;
                case "--meta-files":
                    o = o with { MetaFiles = Positive(args, ++i, "--meta-files") };
                    break;
                case "--fsync-writes":
                    o = o with { FsyncWrites = Positive(args, ++i, "--fsync-writes") };
                    break;
                case "--phases":
                    o = o with { Phases = PhaseList(args, ++i) };
                    break;
                default:
                    throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        return o;
    }

    private static HashSet<string> PhaseList(IReadOnlyList<string> args, int i)
    {
        if (i >= args.Count)
        {
            throw new ArgumentException($"--phases needs a comma-separated list of: {string.Join(", ", AllPhases)}");
        }
        var phases = new HashSet<string>(args[i].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        string[] unknown = [.. phases.Where(p => !AllPhases.Contains(p))];
        if (phases.Count == 0 || unknown.Length > 0)
        {
            throw new ArgumentException($"--phases: {(unknown.Length > 0 ? $"unknown phase {string.Join(", ", unknown)}" : "no phase named")}; choose from {string.Join(", ", AllPhases)}");
        }
        return phases;
    }

    private static int Positive(IReadOnlyList<string> args, int i, string name)
    {
        if (i >= args.Count || !int.TryParse(args[i], NumberStyles.None, CultureInfo.InvariantCulture, out int value) || value < 1)
        {
            throw new ArgumentException($"{name} needs a positive whole number");
        }
        return value;
    }
}
