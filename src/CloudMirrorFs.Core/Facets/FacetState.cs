namespace CloudMirrorFs.Facets;

/// <summary>The states of seed 000 (synchronised, not synchronised, being synchronised), plus Offline.</summary>
public enum FacetState
{
    /// <summary>
    /// Holds every acknowledged operation, or the queue holds the ones it lacks (a remote facet with a backlog is
    /// still Synchronised: the queue covers it).
    /// </summary>
    Synchronised,
    /// <summary>Missed operations that the queue does not hold; the facet's dirty map names the locations, or a full resync is needed.</summary>
    NotSynchronised,
    /// <summary>A resync is copying the missed locations; new writes keep flowing to it.</summary>
    BeingSynchronised,
    /// <summary>Unreachable or failed; it receives nothing until it is brought back and resynchronised.</summary>
    Offline,
}
