using System.Collections.Concurrent;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Replication;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

/// <summary>
/// The storage holding the transaction queue fails (seed 000's paragraph on it): every remote that was using the
/// queue with transactions outstanding becomes NotSynchronised, what the queue still held in memory folded into its
/// dirty map (all of it marked when that cannot be read); a remote with nothing outstanding stays Synchronised and is
/// written synchronously from then on, each change acknowledged once it has it. Until the next mount.
/// </summary>
public sealed partial class MirrorVolume
{
    private readonly ConcurrentQueue<(long Seq, Transaction Change)> _syncOutbox = new();
    private readonly SemaphoreSlim _syncRemoteGate = new(1, 1);
    private volatile bool _queueFailed;
    private volatile FacetSlot[] _syncRemotes = [];
    private long _syncSeq;
    private long _syncApplied;

    /// <summary>True once the queue's storage has failed in this run.</summary>
    public bool QueueFailed => _queueFailed;

    /// <summary>
    /// An error of the queue's storage (I/O error, read-only remount, permission): the caller switches the volume to
    /// the failed-queue mode with <see cref="OnQueueStorageFailed"/> instead of failing the writer. Plain try/catch at
    /// each call site, not a delegate: the append and the intent mark are on every write.
    /// </summary>
    private static bool IsQueueStorageFailure(Exception e) => e is IOException or UnauthorizedAccessException;

    private void OnQueueStorageFailed(Exception error, bool underSequencer)
    {
        if (underSequencer)
        {
            FailQueueLocked(error);
            return;
        }
        lock (_sequencer)
        {
            FailQueueLocked(error);
        }
    }

    private void FailQueueLocked(Exception error)
    {
        if (_queueFailed)
        {
            return;
        }
        _queueFailed = true;
        var synchronous = new List<FacetSlot>();
        foreach (FacetSlot r in _remotes)
        {
            QueueCursorInfo c = _queue!.CursorInfo(r.Name);
            if (r.State == FacetState.Synchronised && c.Active && c.Count == 0 && r.Dirty.IsEmpty)
            {
                synchronous.Add(r);
                continue;
            }
            try
            {
                if (c.Active)
                {
                    _queue.Release(r.Name, r.Dirty);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or MirrorException)
            {
                r.Dirty.MarkFull(); // the spilled records cannot be read back: everything is resynchronised
            }
            r.Dirty.MarkNamespaceDirty();
            r.QueueActive = false;
            SetState(r, FacetState.NotSynchronised,
                $"the queue's storage failed with transactions outstanding ({error.Message}): resynchronised once the queue works again (mount again)");
        }
        // The synchronous commits continue the queue's numbering and carry a writer of their own: at the next open, a
        // store whose newest commit says so holds changes no record of this queue has (TakeRemoteAheadOfState, DetectLostQueue).
        _syncSeq = _queue!.Tail;
        Volatile.Write(ref _syncApplied, _syncSeq);
        string unqueued = UnqueuedWriter(_queue.Id);
        foreach (FacetSlot r in synchronous)
        {
            if (IFacetDecorator.Unwrap(r.Facet) is IStoreIdentity store)
            {
                store.Writer = unqueued;
            }
            else if (IFacetDecorator.Unwrap(r.Facet) is IUnqueuedMark mark)
            {
                try
                {
                    mark.MarkUnqueued(_queue.Id);
                }
                catch (MirrorException e)
                {
                    _log.LogWarning("facet {Facet}: {Message}: if the state folder's disk comes back as it is now, the next mount cannot tell that this facet is newer", r.Name, e.Message);
                }
            }
            r.QueueId = unqueued;
        }
        lock (_stateLock)
        {
            SaveStatesLocked(); // a state folder that still works records it: its queue is then older than those stores
        }
        _syncRemotes = [.. synchronous];
        _log.LogError("queue storage at {Path} failed: {Message}; {Sync} remote(s) with nothing outstanding are now written synchronously, the others are NotSynchronised",
            _options.QueuePath, error.Message, synchronous.Count);
        _ = Task.Run(StopReplicationAsync); // the replicators read the queue
    }

    /// <summary>
    /// The writer id stamped on the commits a remote gets synchronously after the queue with id
    /// <paramref name="queueId"/> failed: none of those changes is in that queue.
    /// </summary>
    internal static string UnqueuedWriter(string queueId) => queueId + UnqueuedSuffix;

    /// <summary>
    /// At open, once the facets have opened: a remote whose newest commit was written synchronously after this
    /// volume's queue failed (<see cref="UnqueuedWriter"/>), while the saved state still names the queue itself, got
    /// changes this state folder never recorded. The folder is as it was when its disk failed (the disk came back: a
    /// cable re-seated, a controller reset), and so, in the default layout, is the local facet beside it: taken as
    /// Synchronised, it would serve old bytes, and the crash recovery and the queue's replay would then put them over
    /// the remote's newer ones. That remote becomes the reference instead: it serves, the table of names is taken from
    /// its tree, the local facets are rebuilt from it and the other remotes resynchronised in full; the queue's
    /// records for it, all older than its image, are dropped (<see cref="DetectLostQueue"/>). Of several such remotes,
    /// the one whose image covers the most. Returns it, or null.
    /// </summary>
    private FacetSlot? TakeRemoteAheadOfState()
    {
        FacetSlot? ahead = _slots
            .Where(s => !s.IsLocal && !s.Held && s.UnqueuedThrough is null && s.QueueId is { } known && !known.EndsWith(UnqueuedSuffix, StringComparison.Ordinal)
                && WriterOf(s, known) == UnqueuedWriter(known))
            .OrderByDescending(s => IFacetDecorator.Unwrap(s.Facet) is IStoreIdentity store ? store.CommittedQueueSeq : 0)
            .FirstOrDefault();
        if (ahead is null)
        {
            return null;
        }
        string baseId = ahead.QueueId!;
        if (_slots.Any(s => s.IsLocal && IFacetDecorator.Unwrap(s.Facet) is IUnqueuedMark { MarkRead: true, UnqueuedBy: { } marked } && marked == baseId))
        {
            // A remote written synchronously dropped out while a local facet went on taking changes: that local facet
            // has changes the remotes lack, and they may have changes it lacks (written before it was marked). Neither
            // is taken over the other: the local facet serves, as the saved state says, and the remotes written after
            // the failure are held for the user to decide.
            foreach (FacetSlot s in _slots.Where(s => !s.IsLocal && !s.Held && s.QueueId == baseId && WriterOf(s, baseId) == UnqueuedWriter(baseId)))
            {
                s.Held = true;
                s.Dirty.MarkFull();
                s.Dirty.MarkNamespaceDirty();
                s.Dirty.Flush();
                s.State = FacetState.NotSynchronised;
                s.Reason = HeldReason(s);
                _log.LogError("facet {Facet}: {Reason}", s.Name, s.Reason);
            }
            return null;
        }
        string reason = $"the state folder {_options.StateDir} is older than remote facet '{ahead.Name}': the volume went on writing it synchronously after the queue at {_options.QueuePath} failed, and this disk came back as it was then";
        _log.LogError("volume {Volume}: {Reason}; '{Facet}' serves, the table of names is taken from it, and every other facet is rebuilt from it",
            _options.Name, reason, ahead.Name);
        foreach (FacetSlot slot in _slots.Where(s => s != ahead))
        {
            FullResyncAtOpen(slot, $"{reason}: full resync from '{ahead.Name}'");
        }
        ahead.State = FacetState.Synchronised;
        ahead.Reason = null;
        ahead.Dirty.ClearAll(); // it had nothing outstanding when it was made synchronous; older marks were cleared since
        ahead.Dirty.Flush();
        return ahead;
    }

    private const string UnqueuedSuffix = "+unqueued";

    /// <summary>
    /// Who wrote what a remote holds, as far as the failed-queue mode goes: an object store's newest commit's writer
    /// (null when not known); for a facet with an unqueued mark (<see cref="IUnqueuedMark"/>), the unqueued writer of the
    /// queue its mark names, or <paramref name="queueId"/> when it opened without one; null when nothing can be said.
    /// </summary>
    private static string? WriterOf(FacetSlot slot, string queueId) => IFacetDecorator.Unwrap(slot.Facet) switch
    {
        IStoreIdentity store => store.LastWriter,
        IUnqueuedMark { MarkRead: true, UnqueuedBy: { } marked } => UnqueuedWriter(marked),
        IUnqueuedMark { MarkRead: true } => queueId,
        _ => null,
    };

    // The remote taken as the reference at this open because the state folder was older than it (it had every change).
    private FacetSlot? _aheadOfState;

    /// <summary>
    /// A remote written synchronously after the queue failed has just dropped out: from here on the local facets take
    /// changes it lacks. Each serving local facet that can carry a mark (<see cref="IUnqueuedMark"/>) is marked, so
    /// that, if the state folder comes back older than this, the next open does not take that remote (whose newest
    /// commit says it was written after the failure) over the local facets: it holds it instead. A local facet whose
    /// disk is dead cannot be marked, and is not the one with the newer changes either.
    /// </summary>
    private void MarkLocalsAhead()
    {
        foreach (FacetSlot local in _readyLocals)
        {
            if (IFacetDecorator.Unwrap(local.Facet) is IUnqueuedMark mark)
            {
                try
                {
                    mark.MarkUnqueued(_queue!.Id);
                }
                catch (MirrorException e)
                {
                    _log.LogWarning("facet {Facet}: {Message}", local.Name, e.Message);
                }
            }
        }
    }

    /// <summary>Why a held facet is held, and what to do.</summary>
    private string HeldReason(FacetSlot slot)
        => $"held: it holds changes made after the state folder {_options.StateDir} failed, which this volume, started from that older state, lacks, and this volume has changes it lacks. Nothing is written to it until you decide: save its tree with {(IFacetDecorator.Unwrap(slot.Facet) is IStoreIdentity ? $"'cmfs restore --facet {slot.Name} --to DIR'" : $"'cp -a {slot.Options.Path} DIR'")}, then overwrite it with this volume with 'cmfs resync --facet {slot.Name}'";

    /// <summary>
    /// A remote that did not answer at the open answers now, and its newest commit was written synchronously after
    /// this volume's queue failed (<see cref="TakeRemoteAheadOfState"/> could not ask it then). The queue's records for
    /// it are not sent: those from before the failure are older than its image. If the saved state knew of the failure,
    /// this volume got every change the store did, so the records' locations go into its dirty map and a resync copies
    /// them from the local facet. If not, the state folder was older than the store, and this volume has served and
    /// taken writes since without the store's newer changes: each side holds changes the other lacks. The store is
    /// then held (<see cref="FacetSlot.Held"/>): nothing is written to it until the user has saved what it holds
    /// (<c>cmfs restore</c>) and asked for it to be overwritten (<c>cmfs resync</c>).
    /// </summary>
    private void CheckWrittenAfterQueueFailure(FacetSlot slot)
    {
        if (slot.IsLocal || slot.Held || _queue is null || _queueFailed || slot.UnqueuedThrough is not null
            || WriterOf(slot, _queue.Id) is not { } last)
        {
            return;
        }
        string unqueued = UnqueuedWriter(_queue.Id);
        if (last != unqueued)
        {
            if (last == _queue.Id && slot.QueueId == unqueued)
            {
                lock (_stateLock)
                {
                    slot.QueueId = _queue.Id; // no synchronous commit reached it: nothing to decide
                    SaveStatesLocked();
                }
            }
            return;
        }
        bool knew = slot.QueueId == unqueued;
        string reason;
        lock (_sequencer)
        {
            _queue.Release(slot.Name, slot.Dirty);
            slot.QueueActive = false;
            slot.Dirty.MarkNamespaceDirty();
            if (!knew)
            {
                slot.Dirty.MarkFull();
                slot.Held = true;
            }
            slot.QueueId = _queue.Id;
            slot.UnqueuedThrough = _queue.Tail;
            if (IFacetDecorator.Unwrap(slot.Facet) is IStoreIdentity store)
            {
                store.Writer = _queue.Id;
            }
            reason = knew
                ? "its newest commit was written after the queue failed: the queue's older records are not sent; what they touched is resynchronised"
                : HeldReason(slot);
            SetState(slot, FacetState.NotSynchronised, reason);
        }
        if (knew)
        {
            _log.LogWarning("facet {Facet}: {Reason}", slot.Name, reason);
        }
        else
        {
            _log.LogError("facet {Facet}: {Reason}", slot.Name, reason);
        }
    }

    /// <summary>Under the sequencer, in the failed-queue mode: records the change for every remote; returns its number (0 if none takes it now).</summary>
    private long AppendWithoutQueueLocked(Transaction t)
    {
        FacetSlot[] sync = _syncRemotes;
        foreach (FacetSlot r in _remotes.Where(r => !sync.Contains(r)))
        {
            MarkChange(r, t);
        }
        if (sync.Length == 0)
        {
            return 0;
        }
        long seq = ++_syncSeq;
        t.EnqueuedUtc = DateTime.UtcNow; // the time the remote's file and folder get (WriteTimes), as the queue stamps it
        _syncOutbox.Enqueue((seq, t));
        return seq;
    }

    /// <summary>
    /// Names a change remote <paramref name="r"/> misses in its dirty map: the blocks a write or a zeroed range touches;
    /// otherwise a namespace mark, and the whole file when the change may put other bytes under its name.
    /// </summary>
    private void MarkChange(FacetSlot r, Transaction t)
    {
        if (t.ChangesRange)
        {
            MarkMissed(r, t.FileId, t.Range.Offset, t.Range.Length);
        }
        else
        {
            r.Dirty.MarkNamespaceDirty();
            if (t.ReplacesContent)
            {
                r.Dirty.Set(Location.WholeFile(t.FileId)); // a file moved or made over another, or cut and grown back
            }
        }
    }

    /// <summary>The acknowledgement in the failed-queue mode: returns once every synchronous remote has the change numbered <paramref name="seq"/>.</summary>
    private async ValueTask ApplySynchronouslyAsync(long seq, CancellationToken cancellationToken)
    {
        await _syncRemoteGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long applied = Volatile.Read(ref _syncApplied);
            while (applied < seq && _syncOutbox.TryDequeue(out (long Seq, Transaction Change) next))
            {
                foreach (FacetSlot r in _syncRemotes)
                {
                    try
                    {
                        await Replicator.ApplyAsync(r.Facet, next.Change, cancellationToken).ConfigureAwait(false);
                        // The modification times the local facet's file and folder took, not the moment this remote got
                        // the change (a slow link), as the replicator stamps them.
                        var times = new WriteTimes();
                        times.Applied(next.Change);
                        await times.ApplyAsync(r.Facet, cancellationToken).ConfigureAwait(false);
                        await r.Facet.CommitAsync(next.Seq, cancellationToken).ConfigureAwait(false);
                    }
                    catch (MirrorException e)
                    {
                        // It missed this change: out of the synchronous set, the change named in its dirty map.
                        lock (_sequencer)
                        {
                            _syncRemotes = [.. _syncRemotes.Where(s => s != r)];
                            MarkChange(r, next.Change);
                        }
                        SetState(r, FacetState.NotSynchronised, $"written synchronously after the queue failed, it failed too: {e.Message}");
                        MarkLocalsAhead();
                    }
                }
                applied = next.Seq;
                Volatile.Write(ref _syncApplied, applied);
            }
        }
        finally
        {
            _syncRemoteGate.Release();
        }
    }
}
