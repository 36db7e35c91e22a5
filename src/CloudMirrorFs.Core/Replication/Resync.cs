using CloudMirrorFs.Facets;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Replication;

/// <summary>
/// Brings a NotSynchronised facet back (seed 000's synchronisation, minimal form): what the queue still held for it
/// is folded into its dirty map and its cursor moves to the tail, so new writes keep flowing to it afterwards; then
/// its tree of names is reconciled with a Synchronised local facet when the map says the names may differ; then
/// every location the map names is copied from the local facet, each bit cleared only after the facet took the
/// block. The facet is BeingSynchronised meanwhile, and Synchronised once the map is empty.
/// </summary>
internal sealed class Resync
{
    private readonly IReplicationHost _host;
    private readonly FacetSlot _slot;
    private readonly ReplicationOptions _options;
    private readonly ILogger _log;

    private readonly bool _reattach;

    /// <summary>
    /// A resync attempt. <paramref name="reattach"/> is false when an earlier attempt already folded the queue into
    /// the dirty map and reattached the cursor: what was queued since is sent after the copy, so folding it again
    /// would only grow the map.
    /// </summary>
    public Resync(IReplicationHost host, FacetSlot slot, ReplicationOptions options, ILogger log, bool reattach = true)
    {
        _host = host;
        _slot = slot;
        _options = options;
        _log = log;
        _reattach = reattach;
    }

    /// <summary>True once this attempt has folded the queue into the dirty map and reattached the cursor.</summary>
    public bool Reattached { get; private set; }

    /// <summary>Locations copied so far.</summary>
    public long Copied { get; private set; }

    /// <summary>Dirty locations found identical by hash and not sent (fast resync).</summary>
    public long Identical { get; private set; }

    /// <summary>Files the reconcile of names created, or found with another modification time than the source's.</summary>
    public HashSet<long> TimesToCarry { get; } = [];

    /// <summary>
    /// Gives the facet's file the source's modification time, once its bytes are copied (a copy into a folder sets
    /// the time of the copy; an object store, the time of the commit). A file gone from either side is skipped.
    /// </summary>
    internal async Task CarryTimeAsync(IFacet source, long fileId, CancellationToken cancellationToken)
    {
        if (_host.PathOf(fileId) is not { } path)
        {
            return;
        }
        try
        {
            if (await source.StatAsync(path, cancellationToken).ConfigureAwait(false) is not { Kind: NodeKind.File } want
                || await _slot.Facet.StatAsync(path, cancellationToken).ConfigureAwait(false) is not { Kind: NodeKind.File } have
                || have.LastWriteUtc == want.LastWriteUtc)
            {
                return;
            }
            await _slot.Facet.SetAttributesAsync(path, new AttributeChange { LastWriteUtc = want.LastWriteUtc, FileId = fileId }, cancellationToken).ConfigureAwait(false);
        }
        catch (MirrorException e) when (e.Error == MirrorError.NotFound)
        {
            // Removed meanwhile: that change reaches the facet through the queue.
        }
    }

    /// <summary>True when the facet hashes the block where it is and the hash equals the source bytes' (DRBD's csums-alg).</summary>
    private async ValueTask<bool> SameAsync(FileRef file, long offset, ReadOnlyMemory<byte> source, CancellationToken cancellationToken)
    {
        UInt128? theirs = await _slot.Facet.HashBlockAsync(file, offset, source.Length, cancellationToken).ConfigureAwait(false);
        return theirs is { } h && h == System.IO.Hashing.XxHash128.HashToUInt128(source.Span);
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        FacetSlot source = _host.SourceLocal
            ?? throw new MirrorException(MirrorError.Unavailable, $"facet '{_slot.Name}': no Synchronised local facet to resynchronise from");
        // Reachable first: a facet the queue was freed of must not start collecting records again while it is down.
        await _slot.Facet.OpenAsync(cancellationToken).ConfigureAwait(false);
        _host.CheckStoreIdentity(_slot); // a store emptied meanwhile: the pass below is a full one
        if (_slot.State != FacetState.BeingSynchronised)
        {
            _host.SetFacetState(_slot, FacetState.BeingSynchronised, "resync in progress"); // a retry keeps the reason it stalled on
        }
        if (_reattach)
        {
            _host.ReleaseAndReattach(_slot);
            Reattached = true;
        }
        bool full = _slot.Dirty.IsFull;
        if (_slot.Dirty.IsFull || _slot.Dirty.NamespaceDirty)
        {
            await ReconcileAsync(source.Facet, _slot.Dirty.IsFull, cancellationToken).ConfigureAwait(false);
            _slot.Dirty.ClearVolumeMarksLater(); // in the map's file after the facet's flush below
        }
        using TrafficClass.Scope resyncTraffic = TrafficClass.Resync(); // its share of the facet's bandwidthLimit
        List<Location> dirty = _slot.Dirty.Snapshot();
        int blockSize = _host.BlockSize;
        MirrorException? failed = null;
        var taken = new System.Collections.Concurrent.ConcurrentBag<Location>();
        await Parallel.ForEachAsync(dirty, new ParallelOptions { MaxDegreeOfParallelism = _options.Window, CancellationToken = cancellationToken },
            async (loc, ct) =>
            {
                string? path = _host.PathOf(loc.FileId);
                if (path is not null)
                {
                    byte[] buffer = new byte[blockSize];
                    var file = new FileRef(loc.FileId, path);
                    int n;
                    try
                    {
                        n = await source.Facet.ReadAsync(file, loc.Block * blockSize, buffer, ct).ConfigureAwait(false);
                    }
                    catch (MirrorException e) when (e.Error == MirrorError.NotFound)
                    {
                        n = -1; // deleted meanwhile: its unlink reaches the facet through the queue
                    }
                    if (n > 0 && !full && await SameAsync(file, loc.Block * blockSize, buffer.AsMemory(0, n), ct).ConfigureAwait(false))
                    {
                        lock (this)
                        {
                            Identical++;
                        }
                    }
                    else if (n > 0)
                    {
                        try
                        {
                            await BlockCopy.PutAsync(_slot.Facet, file, loc.Block * blockSize, buffer.AsMemory(0, n), ct).ConfigureAwait(false);
                        }
                        catch (MirrorException e) when (e.Error is MirrorError.IoError or MirrorError.Unavailable)
                        {
                            // One bad spot does not stop the pass: the other blocks are copied, this bit stays, and
                            // the attempt ends with the error so that the replicator retries it.
                            Interlocked.CompareExchange(ref failed, e, null);
                            return;
                        }
                    }
                }
                taken.Add(loc);
                lock (this)
                {
                    Copied++;
                }
            }).ConfigureAwait(false);
        foreach (long id in dirty.Select(l => l.FileId).Concat(TimesToCarry).Distinct())
        {
            // Changes queued since the reattach come after this, each with its own time, so a file ends with its last.
            await CarryTimeAsync(source.Facet, id, cancellationToken).ConfigureAwait(false);
        }
        // A bit is cleared only once the facet holds the block durably (an object store: once the commit naming it has
        // landed). Cleared before, a commit that fails or a crash would leave the block missing with nothing naming it.
        await _slot.Facet.FlushAsync(cancellationToken).ConfigureAwait(false);
        _slot.Dirty.CommitClears();
        foreach (Location loc in taken)
        {
            _slot.Dirty.Clear(loc);
        }
        if (failed is not null)
        {
            throw failed;
        }
        if (_slot.Dirty.IsEmpty)
        {
            _host.SetFacetState(_slot, FacetState.Synchronised, null);
            _log.LogInformation("facet {Facet}: resync done, {Count} location(s) checked, {Identical} identical and not sent", _slot.Name, Copied, Identical);
        }
    }

    /// <summary>
    /// Makes the facet's tree of names match the source's: missing directories, files and symbolic links created,
    /// extra ones removed, lengths set, a link whose target differs replaced. Files the facet lacked or held at
    /// another length get their blocks marked (all of them when <paramref name="full"/>).
    /// </summary>
    internal async Task ReconcileAsync(IFacet source, bool full, CancellationToken cancellationToken)
    {
        int blockSize = _host.BlockSize;
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            IReadOnlyList<NodeInfo> want = await source.ListAsync(dir, cancellationToken).ConfigureAwait(false);
            IReadOnlyList<NodeInfo> have;
            try
            {
                have = await _slot.Facet.ListAsync(dir, cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException e) when (e.Error == MirrorError.NotFound)
            {
                have = [];
            }
            var haveByName = have.ToDictionary(h => h.Name, StringComparer.Ordinal);
            var wantNames = want.Select(w => w.Name).ToHashSet(StringComparer.Ordinal);
            foreach (NodeInfo extra in have.Where(h => !wantNames.Contains(h.Name)))
            {
                await RemoveTreeAsync(VolumePath.Combine(dir, extra.Name), extra.Kind, cancellationToken).ConfigureAwait(false);
            }
            foreach (NodeInfo w in want)
            {
                string path = VolumePath.Combine(dir, w.Name);
                haveByName.TryGetValue(w.Name, out NodeInfo h);
                bool present = haveByName.ContainsKey(w.Name);
                if (present && h.Kind != w.Kind)
                {
                    await RemoveTreeAsync(path, h.Kind, cancellationToken).ConfigureAwait(false);
                    present = false;
                }
                if (w.Kind == NodeKind.Directory)
                {
                    if (!present)
                    {
                        await _slot.Facet.CreateDirectoryAsync(path, w.Mode, cancellationToken).ConfigureAwait(false);
                    }
                    pending.Push(path);
                    continue;
                }
                if (w.Kind == NodeKind.Symlink)
                {
                    await ReconcileLinkAsync(source, path, present, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                if (w.Kind != NodeKind.File)
                {
                    continue;
                }
                long? id = _host.LookupId(path);
                if (id is null)
                {
                    continue;
                }
                var file = new FileRef(id.Value, path);
                long lastBlock = w.Length == 0 ? -1 : (w.Length - 1) / blockSize;
                if (!present || h.LastWriteUtc != w.LastWriteUtc)
                {
                    TimesToCarry.Add(id.Value);
                }
                if (!present)
                {
                    await _slot.Facet.CreateFileAsync(file, w.Mode, cancellationToken).ConfigureAwait(false);
                    await _slot.Facet.SetLengthAsync(file, w.Length, cancellationToken).ConfigureAwait(false);
                    _slot.Dirty.SetRange(id.Value, 0, lastBlock);
                }
                else
                {
                    if (h.Length != w.Length)
                    {
                        await _slot.Facet.SetLengthAsync(file, w.Length, cancellationToken).ConfigureAwait(false);
                        _slot.Dirty.SetRange(id.Value, Math.Min(h.Length, w.Length) / blockSize, lastBlock);
                    }
                    if (full)
                    {
                        _slot.Dirty.SetRange(id.Value, 0, lastBlock);
                    }
                    if (h.Mode != w.Mode)
                    {
                        await _slot.Facet.SetAttributesAsync(path, new AttributeChange { Mode = w.Mode }, cancellationToken).ConfigureAwait(false);
                    }
                }
            }
        }
    }

    /// <summary>Creates a link the facet lacks, or replaces one whose target differs from the source's.</summary>
    private async Task ReconcileLinkAsync(IFacet source, string path, bool present, CancellationToken cancellationToken)
    {
        string target;
        try
        {
            target = await source.ReadLinkAsync(path, cancellationToken).ConfigureAwait(false);
        }
        catch (MirrorException e) when (e.Error is MirrorError.NotFound or MirrorError.InvalidArgument)
        {
            return; // removed or replaced meanwhile: that change reaches the facet through the queue
        }
        var link = new FileRef(_host.LookupId(path) ?? 0, path);
        if (present)
        {
            if (await _slot.Facet.ReadLinkAsync(path, cancellationToken).ConfigureAwait(false) == target)
            {
                return;
            }
            await _slot.Facet.DeleteFileAsync(link, cancellationToken).ConfigureAwait(false);
        }
        await _slot.Facet.CreateSymlinkAsync(link, target, cancellationToken).ConfigureAwait(false);
    }

    private async Task RemoveTreeAsync(string path, NodeKind kind, CancellationToken cancellationToken)
    {
        if (kind == NodeKind.Directory)
        {
            foreach (NodeInfo child in await _slot.Facet.ListAsync(path, cancellationToken).ConfigureAwait(false))
            {
                await RemoveTreeAsync(VolumePath.Combine(path, child.Name), child.Kind, cancellationToken).ConfigureAwait(false);
            }
            await _slot.Facet.DeleteDirectoryAsync(path, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await _slot.Facet.DeleteFileAsync(new FileRef(0, path), cancellationToken).ConfigureAwait(false);
        }
    }
}
