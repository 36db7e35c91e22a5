using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;
using CloudMirrorFs.Replication;
using Microsoft.Extensions.Logging;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume : IReplicationHost
{
    private readonly Dictionary<string, Replicator> _replicators = [];

    TransactionQueue IReplicationHost.Queue => _queue!;

    FacetSlot? IReplicationHost.SourceLocal => _readyLocals.FirstOrDefault();

    void IReplicationHost.SetFacetState(FacetSlot slot, FacetState state, string? reason)
    {
        if (_queueFailed)
        {
            return; // a replicator winding down after the queue failed: the failure decided its facet's state
        }
        SetState(slot, state, reason);
    }

    bool IReplicationHost.TrySetSynchronised(FacetSlot slot)
    {
        BeforeSynchronised?.Invoke(slot);
        lock (_stateLock)
        {
            // A release marks the map and lets the cursor go before it sets NotSynchronised under this lock, and a
            // resync request marks the map before it does: either is seen here, or comes after and has the last word.
            if (_queueFailed || !slot.Dirty.IsEmpty || !_queue!.IsActive(slot.Name))
            {
                return false;
            }
            SetState(slot, FacetState.Synchronised, null);
            return true;
        }
    }

    /// <summary>Tests: runs just before a replicator asks for its facet to be made Synchronised.</summary>
    internal Action<FacetSlot>? BeforeSynchronised { get; set; }

    void IReplicationHost.CheckStoreIdentity(FacetSlot slot)
    {
        if (StoreLost(slot) is { } reason)
        {
            SetState(slot, FacetState.NotSynchronised, reason);
        }
        CheckWrittenAfterQueueFailure(slot);
    }

    /// <summary>
    /// After a remote facet opened: records its store's identity and image number. When the identity is not the one
    /// recorded before (the store was emptied or replaced outside cmfs), or the newest image is older than one seen
    /// before (commits deleted or damaged), what the facet held is not all there any more: it is marked for a full
    /// resync and the reason is returned, for the caller to move it to NotSynchronised.
    /// </summary>
    private string? StoreLost(FacetSlot slot)
    {
        if (slot.IsLocal || IFacetDecorator.Unwrap(slot.Facet) is not IStoreIdentity { StoreIdentity: { } identity } store)
        {
            return null;
        }
        string? known;
        string reason;
        lock (_stateLock)
        {
            known = slot.StoreIdentity;
            if (known == identity)
            {
                if (slot.StoreImage is not { } seen || store.CommittedImage >= seen)
                {
                    return null;
                }
                reason = $"its newest image is commit {store.CommittedImage}, but commit {seen} was seen before: later commits were deleted or damaged outside cmfs; full resync";
                slot.StoreImage = store.CommittedImage; // from here on, this store's own numbering
            }
            else
            {
                slot.StoreIdentity = identity;
                slot.StoreImage = null;
                if (known is null)
                {
                    SaveStatesLocked(); // first seen (a new facet, or a state file from an older build)
                    return null;
                }
                reason = "its store was emptied or replaced outside cmfs: full resync";
                _log.LogError("facet {Facet}: its store is not the one it was synchronised with (set up {Known} then, {Identity} now)", slot.Name, known, identity);
            }
        }
        _log.LogError("facet {Facet}: {Reason}; everything is sent again", slot.Name, reason);
        MarkAllDirty(slot);
        return reason;
    }

    /// <summary>Every block and every name of the facet is to be compared again (a full resync), durably.</summary>
    private static void MarkAllDirty(FacetSlot slot)
    {
        slot.Dirty.MarkFull();
        slot.Dirty.MarkNamespaceDirty();
        slot.Dirty.Flush();
    }

    async ValueTask<NameSnapshot> IReplicationHost.ReleaseAndReattachAsync(FacetSlot slot, CancellationToken cancellationToken)
    {
        // Under the namespace gate too: a create adds its name to the table before its record is appended, so without
        // it the snapshot could hold a name whose creation the queue sends after the reattach.
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            List<(long Id, string Path, NodeKind Kind)> names;
            lock (_sequencer)
            {
                if (_queueFailed)
                {
                    throw new MirrorException(MirrorError.Unavailable, $"facet '{slot.Name}': the queue's storage failed; resynchronised at the next mount");
                }
                _queue!.Release(slot.Name, slot.Dirty);
                _queue.Reattach(slot.Name);
                slot.QueueActive = true;
                names = _files.Names();
            }
            return new NameSnapshot(names);
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    IReadOnlyList<(long Id, string Path)> IReplicationHost.AllFiles() => [.. _files.Files().Select(n => (n.Id, _files.PathOf(n)))];

    long? IReplicationHost.LookupId(string path) => _files.Lookup(path)?.Id;

    void IReplicationHost.OnCommitted(FacetSlot slot)
    {
        if (slot.UnqueuedThrough is not null && !_queueFailed)
        {
            // A change the queue fed has landed: what the facet holds is this queue's again (an object store's newest
            // commit says so itself). Saved at once, so that the queue's storage failing again in this run finds the
            // facet like any other: its older records were skipped durably at the open.
            if (IFacetDecorator.Unwrap(slot.Facet) is IUnqueuedMark { UnqueuedBy: not null } mark)
            {
                mark.ClearUnqueued();
            }
            lock (_stateLock)
            {
                slot.UnqueuedThrough = null;
                SaveStatesLocked();
            }
        }
        NotifyCommitted();
    }

    private void StartReplication(ReplicationOptions options)
    {
        if (_queue is null)
        {
            return;
        }
        foreach (FacetSlot slot in _slots.Where(s => !s.IsLocal))
        {
            var r = new Replicator(this, slot, options, _log);
            _replicators[slot.Name] = r;
            r.Start();
        }
    }

    private void SignalReplicators()
    {
        foreach (Replicator r in _replicators.Values)
        {
            r.Signal();
        }
    }

    private async ValueTask StopReplicationAsync()
    {
        foreach (Replicator r in _replicators.Values)
        {
            await r.DisposeAsync().ConfigureAwait(false);
        }
        _replicators.Clear();
    }

    /// <summary>
    /// Waits until everything acknowledged before the call is committed on every remote facet (a dirty-map resync
    /// included). Returns false when <paramref name="timeout"/> passes first.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        if (_queue is null)
        {
            return true;
        }
        long target = _queue.Tail;
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_queueFailed)
            {
                // Synchronous remotes hold everything acknowledged; the others wait for the next mount.
                return _slots.Where(s => !s.IsLocal).All(s => _syncRemotes.Contains(s) && s.State == FacetState.Synchronised);
            }
            bool done = _slots.Where(s => !s.IsLocal).All(s =>
            {
                QueueCursorInfo c = _queue.CursorInfo(s.Name);
                return s.State == FacetState.Synchronised && c.Active && c.Head >= target && s.Dirty.IsEmpty;
            });
            if (done)
            {
                return true;
            }
            if (DateTime.UtcNow >= deadline)
            {
                return false;
            }
            SignalReplicators();
            await Task.Delay(TimeSpan.FromMilliseconds(20), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Asks for a facet to be resynchronised (after its disk was replaced, say): it becomes NotSynchronised and its
    /// dirty map is marked for a namespace reconciliation, and with <paramref name="full"/> for every block.
    /// </summary>
    public void RequestResync(string facetName, bool full)
    {
        FacetSlot slot = Slot(facetName);
        if (full)
        {
            slot.Dirty.MarkFull();
        }
        slot.Dirty.MarkNamespaceDirty();
        string reason = slot.Held ? "resync requested: this volume overwrites what it held" : full ? "full resync requested" : "resync requested";
        slot.Held = false; // the user's decision: a held facet was marked full when it was held
        SetState(slot, FacetState.NotSynchronised, reason);
        if (slot.IsLocal && _backgroundWork)
        {
            StartLocalResync(slot);
        }
        SignalReplicators();
    }
}
