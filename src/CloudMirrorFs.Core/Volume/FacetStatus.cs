using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Volume;

/// <summary>What <c>cmfs status</c> shows for one facet.</summary>
public sealed record FacetStatus
{
    /// <summary>The facet's configured name.</summary>
    public required string Name { get; init; }
    /// <summary>The facet kind (directory, folder, s3, azure).</summary>
    public required string Kind { get; init; }
    /// <summary>Local or remote.</summary>
    public required FacetRole Role { get; init; }
    /// <summary>The current state.</summary>
    public required FacetState State { get; init; }
    /// <summary>Queue entries this facet has not yet committed (remote facets).</summary>
    public long QueuedEntries { get; init; }
    /// <summary>Bytes of data in those entries.</summary>
    public long QueuedBytes { get; init; }
    /// <summary>Age of the oldest entry not yet committed on this facet; null when none is waiting.</summary>
    public TimeSpan? OldestUnreplicatedAge { get; init; }
    /// <summary>Locations the facet's dirty map names (what a resync must copy); -1 when a full resync is needed.</summary>
    public long DirtyLocations { get; init; }
    /// <summary>Resync progress from 0 to 1 while BeingSynchronised; null otherwise.</summary>
    public double? ResyncProgress { get; init; }
    /// <summary>True while nothing is written to the facet until the user asks for a resync (<see cref="FacetSlot.Held"/>).</summary>
    public bool Held { get; init; }
    /// <summary>Why the facet is not Synchronised, when known.</summary>
    public string? Reason { get; init; }
}
