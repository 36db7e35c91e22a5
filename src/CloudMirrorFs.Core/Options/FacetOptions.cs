using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Options;

/// <summary>One entry of the <c>facets</c> list.</summary>
public sealed record FacetOptions
{
    /// <summary><c>name</c>: unique within the volume; letters, digits, '-', '_' and '.'.</summary>
    public required string Name { get; init; }

    /// <summary><c>role</c>: local or remote.</summary>
    public required FacetRole Role { get; init; }

    /// <summary><c>kind</c>: directory, folder, s3 or azure.</summary>
    public required string Kind { get; init; }

    /// <summary><c>path</c>: absolute folder, for the directory and folder kinds.</summary>
    public string? Path { get; init; }

    /// <summary><c>overflow</c>: what happens when the queue is full (remote facets).</summary>
    public OverflowPolicy Overflow { get; init; } = OverflowPolicy.Unsync;

    /// <summary><c>overflowTimeout</c>: how long a writer waits for queue space under the block policy.</summary>
    public TimeSpan OverflowTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary><c>bandwidthLimit</c>: bytes per second sent to this facet; null means unlimited.</summary>
    public long? BandwidthLimit { get; init; }

    /// <summary><c>resyncShare</c>: the part of <see cref="BandwidthLimit"/> a resync keeps while replication is busy (default 0.25).</summary>
    public double ResyncShare { get; init; } = 0.25;

    /// <summary>Kind-specific settings not interpreted by the engine (bucket, region, connection string...).</summary>
    public IReadOnlyDictionary<string, string> Settings { get; init; } = new Dictionary<string, string>();
}
