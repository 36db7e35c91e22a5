namespace CloudMirrorFs.Options;

/// <summary>The <c>queue</c> section of the configuration.</summary>
public sealed record QueueOptions
{
    /// <summary><c>queue.path</c>: absolute folder for segment files; null means <c>stateDir/queue</c>.</summary>
    public string? Path { get; init; }

    /// <summary>
    /// <c>queue.memoryLimit</c>: bytes of transaction data held in memory before spilling to segments (default
    /// <see cref="DefaultMemoryLimit"/>).
    /// </summary>
    public long MemoryLimit { get; init; } = DefaultMemoryLimit;

    /// <summary>The smallest default <see cref="MemoryLimit"/>, on a machine with 1 GiB of memory or less.</summary>
    public const long MinDefaultMemoryLimit = 64L << 20;

    /// <summary>
    /// The largest default <see cref="MemoryLimit"/>, from 8 GiB of memory up. A clean close writes what the queue holds
    /// in memory to its disk (and the next open reads it back), and a crash leaves that much to resynchronise: 512 MiB
    /// is a few seconds of a spinning disk, inside the mount's stop budget.
    /// </summary>
    public const long MaxDefaultMemoryLimit = 512L << 20;

    /// <summary>
    /// The default <see cref="MemoryLimit"/>: a sixteenth of the memory this process may use (the machine's, or its
    /// cgroup's limit when lower), between <see cref="MinDefaultMemoryLimit"/> and <see cref="MaxDefaultMemoryLimit"/>.
    /// A burst the remotes cannot follow stays in memory up to that size instead of being written a second time to
    /// the queue's disk (which in the default layout is the local facet's) and read back from it; the memory goes
    /// back once the burst has been sent (<see cref="Queue.TransactionQueue"/>'s arena keeps it 30 s).
    /// </summary>
    public static long DefaultMemoryLimit { get; } = DefaultMemoryLimitFor(GC.GetGCMemoryInfo().TotalAvailableMemoryBytes);

    /// <summary>The default <see cref="MemoryLimit"/> for a process that may use <paramref name="availableBytes"/> of memory.</summary>
    public static long DefaultMemoryLimitFor(long availableBytes)
        => Math.Clamp(availableBytes / 16, MinDefaultMemoryLimit, MaxDefaultMemoryLimit);

    /// <summary><c>queue.diskLimit</c>: bytes of segment files allowed on disk (default 20 GiB).</summary>
    public long DiskLimit { get; init; } = 20L << 30;

    /// <summary><c>queue.segmentSize</c>: bytes per segment file before a new one is started (default 64 MiB).</summary>
    public long SegmentSize { get; init; } = 64L << 20;
}
