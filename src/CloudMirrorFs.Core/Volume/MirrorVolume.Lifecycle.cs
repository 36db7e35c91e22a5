using CloudMirrorFs.Facets;
using CloudMirrorFs.Options;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume
{
    private static readonly TimeSpan RetiredFacetGrace = TimeSpan.FromSeconds(5);

    /// <summary>
    /// The seed's recovery column, while the volume stays in use: a local facet is pointed at a new disk
    /// (<paramref name="replacement"/>, same name) and rebuilt there by a full, pipelined resync from a Synchronised
    /// local facet (or, when none is left, from the remote that holds the whole volume). The old facet leaves service
    /// at once and is closed once the calls already on it have finished.
    /// </summary>
    public async Task ReplaceLocalFacetAsync(FacetOptions replacement, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(replacement);
        FacetSlot slot = _slots.FirstOrDefault(s => s.Name == replacement.Name)
            ?? throw new MirrorException(MirrorError.InvalidArgument, $"no facet named '{replacement.Name}' in volume '{_options.Name}'");
        if (!slot.IsLocal || replacement.Role != FacetRole.Local)
        {
            throw new MirrorException(MirrorError.NotSupported,
                $"facet '{slot.Name}': only local facets are replaced while the volume is in use; a remote facet's change takes effect at the next mount");
        }
        if (_readyLocals.All(s => s == slot) && !CanDegrade())
        {
            throw new MirrorException(MirrorError.Unavailable,
                $"facet '{slot.Name}' is the only Synchronised local facet and no remote holds the whole volume: nothing could rebuild the new disk");
        }
        IFacet fresh = (_facetFactory ?? (o => FacetFactory.Create(o, _options)))(replacement);
        await fresh.OpenAsync(cancellationToken).ConfigureAwait(false); // a bad path fails here, before anything changes
        IFacet old;
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            SetState(slot, FacetState.NotSynchronised, "replaced by a new disk: a full resync rebuilds it");
            old = slot.Swap(fresh, replacement);
            slot.Dirty.ClearAll();
            slot.Dirty.MarkFull();
            slot.Dirty.MarkNamespaceDirty();
            slot.Dirty.Flush();
            FacetStateStore.Save(_options.StateDir, _slots);
        }
        finally
        {
            _namespaceGate.Release();
        }
        _log.LogWarning("facet {Facet}: replaced by {Kind} at {Path}; rebuilding it", slot.Name, replacement.Kind, replacement.Path);
        _ = Task.Run(async () =>
        {
            await Task.Delay(RetiredFacetGrace).ConfigureAwait(false);
            await old.DisposeAsync().ConfigureAwait(false);
        });
        if (_backgroundWork)
        {
            StartLocalResync(slot);
        }
    }
}
