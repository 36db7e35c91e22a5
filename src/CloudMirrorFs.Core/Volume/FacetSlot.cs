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

    /// <summary>The id of the queue that fed this remote facet (<see cref="Queue.TransactionQueue.Id"/>); null when unknown.</summary>
    public string? QueueId { get; set; }

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
