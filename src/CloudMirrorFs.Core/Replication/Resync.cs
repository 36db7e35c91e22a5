using CloudMirrorFs.Facets;
using CloudMirrorFs.Storage;
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

    /// <summary>
    /// A resync attempt. <paramref name="attached"/> is the tree of names of an earlier attempt that already folded the
    /// queue into the dirty map and reattached the cursor: what was queued since is sent after the copy, so folding it
    /// again would only grow the map, and the facet is reconciled with that tree. Null: this attempt reattaches.
    /// </summary>
    public Resync(IReplicationHost host, FacetSlot slot, ReplicationOptions options, ILogger log, NameSnapshot? attached = null)
    {
        _host = host;
        _slot = slot;
        _options = options;
        _log = log;
        Names = attached;
    }

    /// <summary>True once this attempt has folded the queue into the dirty map and reattached the cursor.</summary>
    public bool Reattached { get; private set; }

    /// <summary>
    /// The tree of names at the reattach (<see cref="NameSnapshot"/>): what the facet is reconciled with, and where the
    /// copy puts each block. Null for a local facet's reconcile, which runs under the namespace gate and takes the
    /// source's tree as it is.
    /// </summary>
    public NameSnapshot? Names { get; private set; }

    /// <summary>Locations copied so far.</summary>
    public long Copied { get; private set; }

    /// <summary>Dirty locations found identical by hash and not sent (fast resync).</summary>
    public long Identical { get; private set; }

    /// <summary>Files the reconcile of names created, or found with another modification time than the source's.</summary>
    public HashSet<long> TimesToCarry { get; } = [];

    /// <summary>
    /// The folders the reconcile walked (the root as ""), with the source's time for each as it listed them: making
    /// and removing names in a folder sets its time to the moment of the reconcile, so each is given the source's
    /// once its names are settled (<see cref="CarryFolderTimeAsync"/>).
    /// </summary>
    public Dictionary<string, DateTime> FolderTimes { get; } = new(StringComparer.Ordinal);

    /// <summary>
    /// Gives the folder at <paramref name="path"/> (one of <see cref="FolderTimes"/>) the source's time where the
    /// facet's differs: with <paramref name="source"/>, as that facet has it now (a caller that holds the namespace
    /// gate), else <paramref name="listed"/>.
    /// </summary>
    internal Task CarryFolderTimeAsync(IFacet? source, string path, DateTime listed, CancellationToken cancellationToken)
        => CarryAsync(source, path, path, NodeKind.Directory, listed, null, cancellationToken);

    /// <summary>
    /// Gives the facet's file the source's modification time, once its bytes are copied (a copy into a folder sets
    /// the time of the copy; an object store, the time of the commit). A file gone from either side is skipped.
    /// </summary>
    internal async Task CarryTimeAsync(IFacet source, long fileId, CancellationToken cancellationToken)
    {
        // The source's name now; the facet's, the one the tree at the reattach gives it (the queue's renames come after).
        if (_host.PathOf(fileId) is not { } path || (Names is null ? path : Names.PathOf(fileId)) is not { } there)
        {
            return;
        }
        await CarryAsync(source, path, there, NodeKind.File, default, fileId, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Sets the facet's node at <paramref name="there"/> to the time the source's node at <paramref name="path"/> has
    /// now (or <paramref name="listed"/> without a source) where it differs; a node gone, or of another kind, on either
    /// side is skipped: that change reaches the facet through the queue.
    /// </summary>
    private async Task CarryAsync(IFacet? source, string path, string there, NodeKind kind, DateTime listed, long? fileId, CancellationToken cancellationToken)
    {
        try
        {
            DateTime want = listed;
            if (source is not null)
            {
                if (await source.StatAsync(path, cancellationToken).ConfigureAwait(false) is not { } now || now.Kind != kind)
                {
                    return;
                }
                want = now.LastWriteUtc;
            }
            if (await _slot.Facet.StatAsync(there, cancellationToken).ConfigureAwait(false) is { } have && have.Kind == kind && have.LastWriteUtc != want)
            {
                await _slot.Facet.SetAttributesAsync(there, new AttributeChange { LastWriteUtc = want, FileId = fileId }, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (MirrorException e) when (e.Error == MirrorError.NotFound)
        {
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
        if (_slot.Held)
        {
            return; // written after this volume's state failed: left alone until the user decides
        }
        if (_slot.State != FacetState.BeingSynchronised)
        {
            _host.SetFacetState(_slot, FacetState.BeingSynchronised, "resync in progress"); // a retry keeps the reason it stalled on
        }
        if (Names is null)
        {
            Names = await _host.ReleaseAndReattachAsync(_slot, cancellationToken).ConfigureAwait(false);
            Reattached = true;
        }
        bool full = _slot.Dirty.IsFull;
        if (full || _slot.Dirty.NamespaceDirty)
        {
            // Cleared before the reconcile (in the map's file only after the facet's flush below): a mark set meanwhile,
            // by a release folding renames the queue held, is still there for the next attempt.
            _slot.Dirty.ClearVolumeMarksLater();
            try
            {
                await ReconcileAsync(source.Facet, full, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                if (full)
                {
                    _slot.Dirty.MarkFull();
                }
                _slot.Dirty.MarkNamespaceDirty();
                throw;
            }
        }
        using TrafficClass.Scope resyncTraffic = TrafficClass.Resync(); // its share of the facet's bandwidthLimit
        // A location marked again while the copy runs (a release of the queue, with a newer write to it among the
        // records) keeps its bit: the copy may have read it before that write.
        using DirtyMap.MarkWatch remarked = _slot.Dirty.Watch();
        List<Location> dirty = _slot.Dirty.Snapshot();
        int blockSize = _host.BlockSize;
        MirrorException? failed = null;
        var taken = new System.Collections.Concurrent.ConcurrentBag<Location>();
        await Parallel.ForEachAsync(dirty, new ParallelOptions { MaxDegreeOfParallelism = _options.Window, CancellationToken = cancellationToken },
            async (loc, ct) =>
            {
                if (loc.IsWholeFile)
                {
                    _slot.Dirty.MarkNamespaceDirty(); // marked since the reconcile (a release): the next attempt's reconcile takes it
                    return;
                }
                string? path = _host.PathOf(loc.FileId);
                string? there = Names is null ? path : Names.PathOf(loc.FileId); // where the facet has it until the queue's renames arrive
                if (path is not null && there is null)
                {
                    return; // made since the reattach and marked by a release since: the next attempt reattaches and copies it
                }
                if (path is not null)
                {
                    byte[] buffer = new byte[blockSize];
                    var file = new FileRef(loc.FileId, there!);
                    int n;
                    try
                    {
                        n = await source.Facet.ReadAsync(new FileRef(loc.FileId, path), loc.Block * blockSize, buffer, ct).ConfigureAwait(false);
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
        foreach (var (path, listed) in FolderTimes)
        {
            // As listed at the reattach: the queue's changes since set their own.
            await CarryFolderTimeAsync(null, path, listed, cancellationToken).ConfigureAwait(false);
        }
        FolderTimes.Clear();
        // A bit is cleared only once the facet holds the block durably (an object store: once the commit naming it has
        // landed). Cleared before, a commit that fails or a crash would leave the block missing with nothing naming it.
        await _slot.Facet.FlushAsync(cancellationToken).ConfigureAwait(false);
        _slot.Dirty.CommitClears();
        foreach (Location loc in taken)
        {
            remarked.ClearUnlessMarked(loc);
        }
        if (failed is not null)
        {
            throw failed;
        }
        if (_slot.Dirty.IsEmpty && _host.TrySetSynchronised(_slot))
        {
            _log.LogInformation("facet {Facet}: resync done, {Count} location(s) checked, {Identical} identical and not sent", _slot.Name, Copied, Identical);
        }
    }

    /// <summary>
    /// Makes the facet's tree of names match the source's: missing directories, files and symbolic links created,
    /// extra ones removed, lengths set, a link whose target differs replaced. Files the facet lacked or held at
    /// another length get their blocks marked; all of them when <paramref name="full"/>, or when the map names the
    /// whole file (<see cref="Location.WholeFile"/>). With <see cref="Names"/>, the tree is the one at the reattach.
    /// </summary>
    internal async Task ReconcileAsync(IFacet source, bool full, CancellationToken cancellationToken)
    {
        // Files whose bytes under their name may differ with no block of them marked (a file renamed over another, made
        // where another was, cut short and grown back): every block of theirs is compared. Unmarked first, so that
        // one marked again meanwhile stays for the next attempt.
        List<long> whole = [.. _slot.Dirty.Snapshot().Where(l => l.IsWholeFile).Select(l => l.FileId)];
        foreach (long id in whole)
        {
            _slot.Dirty.ClearLater(Location.WholeFile(id));
        }
        try
        {
            await ReconcileNamesAsync(source, full, [.. whole], cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            foreach (long id in whole)
            {
                _slot.Dirty.Set(Location.WholeFile(id));
            }
            throw;
        }
    }

    private async Task ReconcileNamesAsync(IFacet source, bool full, HashSet<long> whole, CancellationToken cancellationToken)
    {
        int blockSize = _host.BlockSize;
        if (await source.StatAsync("", cancellationToken).ConfigureAwait(false) is { } root)
        {
            FolderTimes[""] = root.LastWriteUtc;
        }
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            string dir = pending.Pop();
            IReadOnlyList<NodeInfo> want = Names is null
                ? await source.ListAsync(dir, cancellationToken).ConfigureAwait(false)
                : await WantedAsync(source, dir, cancellationToken).ConfigureAwait(false);
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
                if (present && (h.Kind != w.Kind || (h.FileId != 0 && w.FileId != 0 && h.FileId != w.FileId)))
                {
                    // Another kind, or (an object store names its files) another file: removed and made again.
                    await RemoveTreeAsync(path, h.Kind, cancellationToken).ConfigureAwait(false);
                    present = false;
                }
                if (w.Kind == NodeKind.Directory)
                {
                    if (!present)
                    {
                        await _slot.Facet.CreateDirectoryAsync(path, w.Mode, cancellationToken).ConfigureAwait(false);
                    }
                    FolderTimes[path] = w.LastWriteUtc;
                    pending.Push(path);
                    continue;
                }
                if (w.Kind == NodeKind.Symlink)
                {
                    if ((Names is null ? path : _host.PathOf(w.FileId)) is { } from)
                    {
                        await ReconcileLinkAsync(source, from, new FileRef(Names is null ? _host.LookupId(path) ?? 0 : w.FileId, path), present, cancellationToken)
                            .ConfigureAwait(false);
                    }
                    continue;
                }
                if (w.Kind != NodeKind.File)
                {
                    continue;
                }
                long? id = Names is null ? _host.LookupId(path) : w.FileId;
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
                    if (full || whole.Contains(id.Value))
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

    /// <summary>
    /// The children <see cref="Names"/> gives directory <paramref name="dir"/>, each with the attributes the source has
    /// for that node now, where it is now. A node removed or replaced since comes as an empty one: the queue sends what
    /// happened to it.
    /// </summary>
    private async Task<List<NodeInfo>> WantedAsync(IFacet source, string dir, CancellationToken cancellationToken)
    {
        var want = new List<NodeInfo>();
        foreach (var (name, kind, id) in Names!.ChildrenOf(dir))
        {
            NodeInfo? now = null;
            if (_host.PathOf(id) is { } path)
            {
                try
                {
                    now = await source.StatAsync(path, cancellationToken).ConfigureAwait(false);
                }
                catch (MirrorException e) when (e.Error == MirrorError.NotFound)
                {
                }
            }
            DateTime t = DateTime.UtcNow;
            want.Add(now is { } n && n.Kind == kind
                ? n with { Name = name, FileId = id }
                : new NodeInfo(name, kind, 0, kind == NodeKind.Directory ? (UnixFileMode)0b111_101_101 : (UnixFileMode)0b110_100_100, t, t, t) { FileId = id });
        }
        return want;
    }

    /// <summary>
    /// Creates a link the facet lacks, or replaces one whose target differs from the source's; <paramref name="from"/>
    /// is where the source has it.
    /// </summary>
    private async Task ReconcileLinkAsync(IFacet source, string from, FileRef link, bool present, CancellationToken cancellationToken)
    {
        string path = link.Path;
        string target;
        try
        {
            target = await source.ReadLinkAsync(from, cancellationToken).ConfigureAwait(false);
        }
        catch (MirrorException e) when (e.Error is MirrorError.NotFound or MirrorError.InvalidArgument)
        {
            return; // removed or replaced meanwhile: that change reaches the facet through the queue
        }
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
