namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet with no commits to stamp (a directory facet, edited in place) that carries a mark of its own saying it was
/// written synchronously after a volume's queue failed. An object store's commits say it themselves
/// (<see cref="IStoreIdentity.LastWriter"/>). At the next open, a facet so marked holds changes that no record of that
/// queue has, and the volume does not take an older state folder, nor the queue's older records, over it.
/// </summary>
public interface IUnqueuedMark
{
    /// <summary>True once an open has looked for the mark (false while the facet has not opened).</summary>
    bool MarkRead { get; }

    /// <summary>The id of the queue named in the mark the facet carried at its last open; null when it carried none.</summary>
    string? UnqueuedBy { get; }

    /// <summary>Sets the mark, before the first change written synchronously after the queue <paramref name="queueId"/> failed.</summary>
    void MarkUnqueued(string queueId);

    /// <summary>Removes the mark, once a change fed by the queue again has landed.</summary>
    void ClearUnqueued();
}
