using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Volume;

/// <summary>A configured facet as the volume manager runs it: the facet, its options, its state and its dirty map.</summary>
internal sealed class FacetSlot
{
    public FacetSlot(IFacet facet, FacetOptions options, DirtyMap dirty)
    {
        Facet = facet;
        Options = options;
        Dirty = dirty;
    }

    public IFacet Facet { get; private set; }

    public FacetOptions Options { get; private set; }

    public string Name => Options.Name;

    public FacetRole Role => Options.Role;

    public DirtyMap Dirty { get; }

    public FacetState State { get; set; } = FacetState.Synchronised;

    public string? Reason { get; set; }

    /// <summary>The identity of the remote store last synchronised with (<see cref="IStoreIdentity"/>); null when unknown.</summary>
    public string? StoreIdentity { get; set; }

    /// <summary>The highest image number its store was seen to hold (<see cref="IStoreIdentity.CommittedImage"/>); null when unknown.</summary>
    public long? StoreImage { get; set; }

    /// <summary>
    /// The highest image number seen: the one recorded before, or the store's own once it opened with the identity
    /// recorded (a replaced store starts again from its own).
    /// </summary>
    public long? SeenImage()
        => IFacetDecorator.Unwrap(Facet) is IStoreIdentity { StoreIdentity: { } identity, CommittedImage: var image } && identity == StoreIdentity
            ? Math.Max(StoreImage ?? 0, image)
            : StoreImage;

    /// <summary>The id of the queue that fed this remote facet (<see cref="Queue.TransactionQueue.Id"/>); null when unknown.</summary>
    public string? QueueId { get; set; }

    /// <summary>
    /// Set while the store's newest commit was written synchronously after this volume's queue failed: the queue's
    /// records up to this position are older than its image and are never sent to it. Null otherwise.
    /// </summary>
    public long? UnqueuedThrough { get; set; }

    /// <summary>
    /// Not written to until the user decides (<c>cmfs resync</c>): the store holds changes made after this volume's
    /// state folder failed that this volume never got, and this volume has changes it lacks.
    /// </summary>
    public bool Held { get; set; }

    public bool IsLocal => Role == FacetRole.Local;

    /// <summary>True while the queue feeds this (remote) facet; changed only under the volume's sequencer lock.</summary>
    public volatile bool QueueActive;

    /// <summary>Puts a new facet (a new disk) in this slot; returns the old one, for the caller to close.</summary>
    public IFacet Swap(IFacet facet, FacetOptions options)
    {
        IFacet old = Facet;
        Facet = facet;
        Options = options;
        return old;
    }
}
