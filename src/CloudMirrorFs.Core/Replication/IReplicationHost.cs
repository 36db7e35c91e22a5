using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Volume;

namespace CloudMirrorFs.Replication;

/// <summary>What a replicator and a resync need from the volume manager.</summary>
internal interface IReplicationHost
{
    TransactionQueue Queue { get; }

    int BlockSize { get; }

    /// <summary>A Synchronised local facet to copy from, or null when none is available.</summary>
    FacetSlot? SourceLocal { get; }

    void SetFacetState(FacetSlot slot, FacetState state, string? reason);

    /// <summary>
    /// Makes the facet Synchronised if it misses nothing: its dirty map is empty and its queue cursor active, looked at
    /// under the lock every state change takes. False otherwise (a release of its cursor, or a resync asked for, got
    /// in since the caller last looked): the state they set stands, and the caller goes back to a resync.
    /// </summary>
    bool TrySetSynchronised(FacetSlot slot);

    /// <summary>After the facet opened: when its store is not the one synchronised before, marks a full resync and makes it NotSynchronised.</summary>
    void CheckStoreIdentity(FacetSlot slot);

    /// <summary>
    /// Releases the facet's cursor into its dirty map and reattaches it at the tail, atomically with respect to writers
    /// and to changes of names; returns the tree of names at that queue position.
    /// </summary>
    ValueTask<NameSnapshot> ReleaseAndReattachAsync(FacetSlot slot, CancellationToken cancellationToken);

    /// <summary>The current path of a file id, or null when the file is gone.</summary>
    string? PathOf(long fileId);

    /// <summary>Every file: id and current path.</summary>
    IReadOnlyList<(long Id, string Path)> AllFiles();

    /// <summary>The id of a path, or null.</summary>
    long? LookupId(string path);

    /// <summary>Called after a commit (drain waiters look at the heads).</summary>
    void OnCommitted(FacetSlot slot);
}
