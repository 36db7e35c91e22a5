namespace CloudMirrorFs.Volume;

/// <summary>What <c>cmfs status</c> shows for a volume.</summary>
public sealed record VolumeStatus
{
    /// <summary>The volume's name.</summary>
    public required string Name { get; init; }
    /// <summary>The canonical state folder (the volume's identity).</summary>
    public required string StateDir { get; init; }
    /// <summary>Bytes per block.</summary>
    public required int BlockSize { get; init; }
    /// <summary>Transaction data held in memory.</summary>
    public long QueueMemoryBytes { get; init; }
    /// <summary>Bytes of segment files on disk.</summary>
    public long QueueDiskBytes { get; init; }
    /// <summary><c>queue.memoryLimit</c> in effect (the machine's default when the configuration names none).</summary>
    public long QueueMemoryLimit { get; init; }
    /// <summary><c>queue.diskLimit</c> in effect.</summary>
    public long QueueDiskLimit { get; init; }
    /// <summary>One entry per configured facet, in configuration order.</summary>
    public required IReadOnlyList<FacetStatus> Facets { get; init; }
}
