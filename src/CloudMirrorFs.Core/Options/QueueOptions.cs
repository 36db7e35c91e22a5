namespace CloudMirrorFs.Options;

/// <summary>The <c>queue</c> section of the configuration.</summary>
public sealed record QueueOptions
{
    /// <summary><c>queue.path</c>: absolute folder for segment files; null means <c>stateDir/queue</c>.</summary>
    public string? Path { get; init; }

    /// <summary><c>queue.memoryLimit</c>: bytes of transaction data held in memory before spilling to segments (default 64 MiB).</summary>
    public long MemoryLimit { get; init; } = 64L << 20;

    /// <summary><c>queue.diskLimit</c>: bytes of segment files allowed on disk (default 20 GiB).</summary>
    public long DiskLimit { get; init; } = 20L << 30;

    /// <summary><c>queue.segmentSize</c>: bytes per segment file before a new one is started (default 64 MiB).</summary>
    public long SegmentSize { get; init; } = 64L << 20;
}
