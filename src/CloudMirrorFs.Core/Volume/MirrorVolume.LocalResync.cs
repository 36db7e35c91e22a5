using CloudMirrorFs.Facets;
using CloudMirrorFs.Replication;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume
{
    /// <summary>Blocks copied under one hold of a file's gate: bounds how long a writer of that file can wait.</summary>
    private const int ResyncChunkBlocks = 16;

    private readonly Dictionary<string, Task> _localResyncs = [];
    private readonly CancellationTokenSource _backgroundStop = new();
    private volatile FacetSlot[] _syncingLocals = [];
    private bool _backgroundWork;

    /// <summary>Blocks read ahead of the write in a local resync (the seed's Figure 7 buffers).</summary>
    internal int ResyncDepth { get; init; } = 8;

    /// <summary>Locations copied by the current or last resync of each local facet (status).</summary>
    private readonly Dictionary<string, (long Done, long Total)> _localProgress = [];

    /// <summary>
    /// Resynchronises NotSynchronised local facets from a Synchronised one, in the background, retrying with
    /// capped backoff while the facet keeps failing (a disk still missing).
    /// </summary>
    private void StartLocalResyncs()
    {
        foreach (FacetSlot s in _slots.Where(s => s.IsLocal && s.State != FacetState.Synchronised))
        {
            StartLocalResync(s);
        }
    }

    private void StartLocalResync(FacetSlot slot)
    {
        lock (_localResyncs)
        {
            if (_backgroundStop.IsCancellationRequested || (_localResyncs.TryGetValue(slot.Name, out Task? running) && !running.IsCompleted))
            {
                return;
            }
            _localResyncs[slot.Name] = Task.Run(() => LocalResyncLoopAsync(slot, _backgroundStop.Token));
        }
    }

    /// <summary>
    /// True when the facet is Synchronised, and the loop is then taken out of the running ones, in one step with
    /// <see cref="StartLocalResync"/>'s look: a resync requested just as the last one ends finds either this loop still
    /// going (it sees the new state and goes on) or none (it starts one), never a loop about to end.
    /// </summary>
    private bool FinishedLocalResync(FacetSlot slot)
    {
        lock (_localResyncs)
        {
            if (slot.State != FacetState.Synchronised)
            {
                return false;
            }
            LocalResyncEndingForTests?.Invoke(slot);
            _localResyncs.Remove(slot.Name);
            return true;
        }
    }

    /// <summary>Tests: called as a local resync loop, having seen its facet Synchronised, is about to end.</summary>
    internal Action<FacetSlot>? LocalResyncEndingForTests { get; set; }

    private async Task StopLocalResyncsAsync()
    {
        await _backgroundStop.CancelAsync().ConfigureAwait(false);
        Task[] running;
        lock (_localResyncs)
        {
            running = [.. _localResyncs.Values];
        }
        try
        {
            await Task.WhenAll(running).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task LocalResyncLoopAsync(FacetSlot slot, CancellationToken cancellationToken)
    {
        TimeSpan delay = TimeSpan.FromSeconds(1);
        while (!cancellationToken.IsCancellationRequested && !FinishedLocalResync(slot))
        {
            bool opened = false;
            try
            {
                await slot.Facet.OpenAsync(cancellationToken).ConfigureAwait(false);
                opened = true;
                await ResyncLocalAsync(slot, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromSeconds(1);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (MirrorException e)
            {
                slot.Dirty.MarkNamespaceDirty();
                // The cause goes into the state's reason ('cmfs status' shows why it is not back, a disk not mounted
                // say), logged once: a cause that lasts (a disk left unplugged) is retried every minute in silence.
                string reason = $"resync failed: {e.Message}; retrying";
                if (slot.Reason != reason)
                {
                    SetState(slot, FacetState.NotSynchronised, reason);
                }
                _log.LogDebug("facet {Facet}: resync failed ({Message}); retrying in {Delay} s", slot.Name, e.Message, delay.TotalSeconds);
                try
                {
                    await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                // A facet that cannot even be opened (its disk not mounted, say) is looked at again every few seconds,
                // which costs a look at the folder, so a disk mounted again is back at once; a resync that failed
                // further on waits up to a minute, since each try starts with a walk of the tree.
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(opened ? 60 : 5).Ticks));
            }
        }
    }

    /// <summary>
    /// One resync of a local facet. Names first, under the namespace gate, after which the facet takes every
    /// namespace change; then the blocks its dirty map names (every block after a full request or a lost disk),
    /// copied chunk by chunk under each file's gate with the reads pipelined ahead of the writes. The dirty map is
    /// the record of progress: a write that arrives meanwhile goes to the facet at once where its blocks are already
    /// copied (clean), and is left to the copy where they are not (marked). Synchronised once the map is empty.
    /// </summary>
    private async Task ResyncLocalAsync(FacetSlot slot, CancellationToken cancellationToken)
    {
        var times = new Resync(this, slot, new ReplicationOptions(), _log);
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            FacetSlot source = await ResyncSourceAsync(slot, cancellationToken).ConfigureAwait(false);
            if (slot.Dirty.IsFull || slot.Dirty.NamespaceDirty)
            {
                // Marks cleared first: one set meanwhile (a truncate does not take this gate) survives for the next round.
                // In the map's file only once the facet is flushed (CommitCopiedAsync): names made by the reconcile
                // and lost to a power cut must find the marks still there.
                bool full = slot.Dirty.IsFull;
                slot.Dirty.ClearVolumeMarksLater();
                try
                {
                    await times.ReconcileAsync(source.Facet, full, cancellationToken).ConfigureAwait(false);
                }
                catch
                {
                    if (full)
                    {
                        slot.Dirty.MarkFull();
                    }
                    slot.Dirty.MarkNamespaceDirty();
                    throw;
                }
            }
            SetState(slot, FacetState.BeingSynchronised, "resync in progress");
        }
        finally
        {
            _namespaceGate.Release();
        }
        long copied = 0;
        using TrafficClass.Scope resyncTraffic = TrafficClass.Resync(); // its share of the facet's bandwidthLimit
        while (true)
        {
            List<Location> dirty = slot.Dirty.Snapshot();
            if (dirty.Count == 0)
            {
                break;
            }
            lock (_localProgress)
            {
                _localProgress[slot.Name] = (copied, copied + dirty.Count);
            }
            long unflushed = 0;
            foreach (List<Location> chunk in Chunks(dirty))
            {
                times.TimesToCarry.Add(chunk[0].FileId);
                long n = await CopyChunkAsync(slot, chunk, cancellationToken).ConfigureAwait(false);
                copied += n;
                unflushed += n;
                if (unflushed * BlockSize >= ClearsCommittedEvery)
                {
                    await CommitCopiedAsync(slot, cancellationToken).ConfigureAwait(false);
                    unflushed = 0;
                }
                lock (_localProgress)
                {
                    _localProgress[slot.Name] = (copied, copied + slot.Dirty.Count);
                }
            }
        }
        await CarryTimesAsync(slot, times, cancellationToken).ConfigureAwait(false);
        await CommitCopiedAsync(slot, cancellationToken).ConfigureAwait(false);
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            lock (_stateLock)
            {
                // Under the lock a state change takes: a resync requested meanwhile marks the map before it sets its state.
                if (slot.State == FacetState.BeingSynchronised && slot.Dirty.IsEmpty)
                {
                    SetState(slot, FacetState.Synchronised, null);
                    _log.LogInformation("facet {Facet}: resync done, {Count} block(s) copied", slot.Name, copied);
                }
            }
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    /// <summary>
    /// The copied files' modification times, from the source: without it a rebuilt disk showed every file as changed
    /// at the rebuild (make rebuilt everything, a backup sent everything again). Per file under the namespace gate
    /// (no <c>utimens</c> meanwhile) and the file's gate (no write meanwhile), so a newer time is never set back.
    /// </summary>
    private async Task CarryTimesAsync(FacetSlot slot, Resync times, CancellationToken cancellationToken)
    {
        foreach (var (path, listed) in times.FolderTimes)
        {
            // No name is made or removed in it meanwhile, so the source's time now is the one.
            if (!await CarryUnderGatesAsync(slot, null, source => times.CarryFolderTimeAsync(source, path, listed, cancellationToken), cancellationToken).ConfigureAwait(false))
            {
                return;
            }
        }
        times.FolderTimes.Clear();
        foreach (long id in times.TimesToCarry)
        {
            if (_files.Get(id) is { Deleted: false, Kind: NodeKind.File } node
                && !await CarryUnderGatesAsync(slot, node, source => times.CarryTimeAsync(source, id, cancellationToken), cancellationToken).ConfigureAwait(false))
            {
                return;
            }
        }
    }

    /// <summary>
    /// Runs <paramref name="carry"/> with the rebuild's source under the namespace gate, and <paramref name="file"/>'s
    /// gate when given; false, without running it, once the facet is no longer being rebuilt.
    /// </summary>
    private async Task<bool> CarryUnderGatesAsync(FacetSlot slot, FileNode? file, Func<IFacet, Task> carry, CancellationToken cancellationToken)
    {
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (file is not null)
            {
                await file.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            try
            {
                if (slot.State != FacetState.BeingSynchronised)
                {
                    return false;
                }
                FacetSlot source = await ResyncSourceAsync(slot, cancellationToken).ConfigureAwait(false);
                await carry(source.Facet).ConfigureAwait(false);
                return true;
            }
            finally
            {
                file?.Gate.Release();
            }
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    /// <summary>
    /// Where a local facet is rebuilt from: a Synchronised local facet, or — when none can serve (a lost disk) — the
    /// remote that holds the whole volume, once it has committed everything queued.
    /// </summary>
    private async ValueTask<FacetSlot> ResyncSourceAsync(FacetSlot slot, CancellationToken cancellationToken)
    {
        if (_readyLocals.FirstOrDefault() is { } local)
        {
            return local;
        }
        if (CanDegrade())
        {
            return await CaughtUpRemoteAsync(cancellationToken).ConfigureAwait(false);
        }
        throw NoLocal($"resync of local facet '{slot.Name}'");
    }

    /// <summary>Bytes a local resync copies between two flushes of the facet (and writes of the dirty map's clears).</summary>
    private const long ClearsCommittedEvery = 64L << 20;

    /// <summary>
    /// Flushes the facet being rebuilt, then writes the dirty-map clears of what was copied into it: a clear must not
    /// reach the disk before the block it is about, or a power cut in between leaves the block missing there with
    /// nothing naming it, and the facet is later called Synchronised without it.
    /// </summary>
    private async Task CommitCopiedAsync(FacetSlot slot, CancellationToken cancellationToken)
    {
        await slot.Facet.FlushAsync(cancellationToken).ConfigureAwait(false);
        slot.Dirty.CommitClears();
    }

    /// <summary>Copies one run of blocks of one file under its gate; returns how many were copied.</summary>
    private async Task<long> CopyChunkAsync(FacetSlot slot, List<Location> chunk, CancellationToken cancellationToken)
    {
        FileNode? node = _files.Get(chunk[0].FileId);
        if (node is null || node.Deleted || node.Kind != NodeKind.File)
        {
            foreach (Location l in chunk)
            {
                slot.Dirty.Clear(l); // gone: its removal reached the facet as a namespace change
            }
            return 0;
        }
        await node.Gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (slot.State != FacetState.BeingSynchronised)
            {
                throw new MirrorException(MirrorError.Unavailable, $"facet '{slot.Name}' left the resync");
            }
            FacetSlot source = await ResyncSourceAsync(slot, cancellationToken).ConfigureAwait(false);
            var file = new FileRef(node.Id, _files.PathOf(node));
            int blockSize = BlockSize;
            await PipelinedCopy.RunAsync(chunk, blockSize, ResyncDepth,
                async (loc, buffer, ct) =>
                {
                    try
                    {
                        return await source.Facet.ReadAsync(file, loc.Block * blockSize, buffer, ct).ConfigureAwait(false);
                    }
                    catch (MirrorException e) when (e.Error is MirrorError.IoError or MirrorError.Unavailable)
                    {
                        FailLocal(source, e);
                        throw;
                    }
                },
                (loc, bytes, ct) => BlockCopy.PutAsync(slot.Facet, file, loc.Block * blockSize, bytes, ct),
                cancellationToken).ConfigureAwait(false);
            foreach (Location l in chunk)
            {
                slot.Dirty.ClearLater(l); // in the map's file once the facet is flushed (CommitCopiedAsync)
            }
            return chunk.Count;
        }
        finally
        {
            node.Gate.Release();
        }
    }

    private static IEnumerable<List<Location>> Chunks(List<Location> sorted)
    {
        var chunk = new List<Location>(ResyncChunkBlocks);
        foreach (Location l in sorted)
        {
            if (chunk.Count > 0 && (chunk[0].FileId != l.FileId || chunk.Count == ResyncChunkBlocks))
            {
                yield return chunk;
                chunk = new List<Location>(ResyncChunkBlocks);
            }
            chunk.Add(l);
        }
        if (chunk.Count > 0)
        {
            yield return chunk;
        }
    }

    /// <summary>
    /// Under the file's gate, before a write: the local facets being resynchronised that take the write now (every
    /// block of its range already copied); the others get the range marked, for the copy to bring.
    /// </summary>
    private FacetSlot[]? RouteToSyncingLocals(long fileId, long offset, long length)
    {
        FacetSlot[] syncing = _syncingLocals;
        List<FacetSlot>? take = null;
        if (syncing.Length > 0)
        {
            long first = offset / BlockSize;
            long last = length == 0 ? first : (offset + length - 1) / BlockSize;
            foreach (FacetSlot s in syncing)
            {
                bool clean = true;
                for (long b = first; b <= last && clean; b++)
                {
                    clean = !s.Dirty.Contains(new Location(fileId, b));
                }
                if (clean)
                {
                    (take ??= []).Add(s);
                }
                else
                {
                    s.Dirty.SetRange(fileId, first, last);
                }
            }
        }
        foreach (FacetSlot s in _idleLocals)
        {
            if (s.State != FacetState.BeingSynchronised)
            {
                MarkMissed(s, fileId, offset, length);
            }
        }
        return take?.ToArray();
    }

    /// <summary>Applies a data change to the resyncing local facets that take it; one that fails goes back to NotSynchronised.</summary>
    private async ValueTask ApplyToSyncingAsync(FacetSlot[]? targets, FileNode node, Func<IFacet, FileRef, CancellationToken, ValueTask> change,
        long offset, long length, CancellationToken cancellationToken)
    {
        if (targets is null)
        {
            return;
        }
        var file = new FileRef(node.Id, _files.PathOf(node));
        foreach (FacetSlot s in targets)
        {
            try
            {
                await change(s.Facet, file, cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException e)
            {
                MarkMissed(s, node.Id, offset, length);
                FailLocal(s, e);
            }
        }
    }

    /// <summary>Resync progress of a local facet as a fraction, or null when none has run.</summary>
    private double? LocalResyncProgress(string facetName)
    {
        lock (_localProgress)
        {
            return _localProgress.TryGetValue(facetName, out var p) && p.Total > 0 ? (double)p.Done / p.Total : null;
        }
    }
}
