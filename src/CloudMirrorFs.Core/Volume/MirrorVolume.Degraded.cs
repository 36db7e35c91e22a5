using System.Diagnostics;
using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Volume;

/// <summary>
/// Degraded service (seed 000, Figure 4 and the first row of its failure table): with no working local facet, every
/// change still goes through the queue, in order, but is acknowledged only once a remote facet has committed it, and
/// reads are served by that remote once it has caught up. The local facets' dirty maps record everything they miss.
/// </summary>
public sealed partial class MirrorVolume
{
    private TaskCompletionSource _committed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>True when no local facet serves and a remote facet holds the whole volume (queue included).</summary>
    public bool IsDegraded => _readyLocals.Length == 0 && CanDegrade();

    /// <summary>
    /// A remote facet that holds every acknowledged change or has it queued: Synchronised, or Offline with nothing
    /// missed. Once the queue's storage has failed, a remote still written synchronously: each change was acknowledged
    /// only once it had it (the default layout keeps the queue on the local facet's disk, so one dead disk takes both).
    /// </summary>
    private FacetSlot? DegradedRemote()
    {
        if (_queueFailed)
        {
            return _syncRemotes.FirstOrDefault(r => r.State == FacetState.Synchronised);
        }
        if (_queue is null || !_replicators.Any())
        {
            return null;
        }
        // A reachable one first: an Offline one is waited on only when no other will do.
        return _remotes.Where(r => r.State is FacetState.Synchronised or FacetState.Offline && r.Dirty.IsEmpty && _queue.IsActive(r.Name))
            .OrderBy(r => r.State == FacetState.Offline)
            .FirstOrDefault();
    }

    private bool CanDegrade() => DegradedRemote() is not null;

    /// <summary>In degraded service, waits until a remote has committed <paramref name="seq"/>; otherwise returns at once.</summary>
    private async ValueTask CompleteDegradedAsync(long seq, CancellationToken cancellationToken)
    {
        if (_queueFailed && seq != 0)
        {
            await ApplySynchronouslyAsync(seq, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (_readyLocals.Length > 0 || seq == 0)
        {
            return;
        }
        await WaitCommittedAsync(seq, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Waits until a remote has committed <paramref name="seq"/>. A remote that is reachable but behind is waited for
    /// as long as it takes; one that stays unreachable for <c>volume.degradedTimeout</c> fails the operation, so that
    /// a program with no disk and no link gets an error instead of a hang.
    /// </summary>
    private async ValueTask<FacetSlot> WaitCommittedAsync(long seq, CancellationToken cancellationToken)
    {
        long? unreachableSince = null;
        while (true)
        {
            TaskCompletionSource signal = Volatile.Read(ref _committed);
            FacetSlot? remote = DegradedRemote() ?? throw new MirrorException(MirrorError.Unavailable,
                $"volume '{_options.Name}': no local facet works and no remote facet holds the whole volume; see 'cmfs status'");
            if (_queue!.HeadOf(remote.Name) >= seq && remote.State == FacetState.Synchronised)
            {
                return remote;
            }
            if (remote.State != FacetState.Offline)
            {
                unreachableSince = null;
            }
            else if (unreachableSince is null)
            {
                unreachableSince = Stopwatch.GetTimestamp();
            }
            else if (Stopwatch.GetElapsedTime(unreachableSince.Value) >= _options.DegradedTimeout)
            {
                throw new MirrorException(MirrorError.Unavailable,
                    $"volume '{_options.Name}': no local facet works and remote facet '{remote.Name}' has been unreachable for {_options.DegradedTimeout.TotalSeconds:0.#} s ({remote.Reason ?? "offline"}); what was written is kept in the queue for it. Restore the link or a local disk; see 'cmfs status'");
            }
            SignalReplicators();
            await signal.Task.WaitAsync(TimeSpan.FromMilliseconds(100), cancellationToken).ContinueWith(static _ => { }, TaskScheduler.Default).ConfigureAwait(false);
        }
    }

    /// <summary>A remote facet that has committed everything queued so far (with the queue failed: every change made so far).</summary>
    private async ValueTask<FacetSlot> CaughtUpRemoteAsync(CancellationToken cancellationToken)
    {
        if (!_queueFailed)
        {
            return await WaitCommittedAsync(_queue!.Tail, cancellationToken).ConfigureAwait(false);
        }
        await ApplySynchronouslyAsync(Interlocked.Read(ref _syncSeq), cancellationToken).ConfigureAwait(false);
        return DegradedRemote() ?? throw new MirrorException(MirrorError.Unavailable,
            $"volume '{_options.Name}': no local facet works, the queue's storage failed and no remote facet holds the whole volume; see 'cmfs status'");
    }

    /// <summary>
    /// A read with no local facet: from a remote with the queue laid over it, else from a remote once it has caught
    /// up; <paramref name="whenNone"/> (or "no local facet") when no remote can give the volume's bytes.
    /// </summary>
    private async ValueTask<int> DegradedReadAsync(FileNode node, long offset, Memory<byte> buffer, CancellationToken cancellationToken,
        MirrorException? whenNone = null)
    {
        foreach (FacetSlot candidate in OverlayCandidates())
        {
            if (await TryReadFromBufferAsync(candidate, node, offset, buffer, cancellationToken).ConfigureAwait(false) is { } n)
            {
                return n;
            }
        }
        if (!CanDegrade())
        {
            throw whenNone ?? NoLocal($"read of {_files.PathOf(node)}");
        }
        FacetSlot remote = await CaughtUpRemoteAsync(cancellationToken).ConfigureAwait(false);
        return await remote.Facet.ReadAsync(new FileRef(node.Id, _files.PathOf(node)), offset, buffer, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// The volume's bytes at <paramref name="offset"/> from a remote without waiting for one to catch up: with the
    /// queue laid over, or from a remote written synchronously once the queue failed. Null when none can give them now.
    /// </summary>
    private async ValueTask<int?> ReadFromRemoteAtOnceAsync(FileNode node, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            if (_queueFailed)
            {
                return DegradedRemote() is { } remote
                    ? await remote.Facet.ReadAsync(new FileRef(node.Id, _files.PathOf(node)), offset, buffer, cancellationToken).ConfigureAwait(false)
                    : null;
            }
            foreach (FacetSlot candidate in OverlayCandidates())
            {
                if (await TryReadFromBufferAsync(candidate, node, offset, buffer, cancellationToken).ConfigureAwait(false) is { } n)
                {
                    return n;
                }
            }
        }
        catch (MirrorException e) when (e.Error is MirrorError.IoError or MirrorError.Unavailable or MirrorError.NotFound)
        {
            // The remote is unreachable or lacks the file: no bytes from it now.
        }
        return null;
    }

    private void MarkMissedOnLocals(long fileId, long offset, long length)
    {
        foreach (FacetSlot s in _slots.Where(s => s.IsLocal))
        {
            MarkMissed(s, fileId, offset, length);
        }
    }

    private void MarkNamespaceOnLocals()
    {
        foreach (FacetSlot s in _slots.Where(s => s.IsLocal))
        {
            MarkNamespaceDirty(s);
        }
    }

    /// <summary>A local facet's namespace mark; one its map cannot take is kept in memory while a remote serves in its place.</summary>
    private void MarkNamespaceDirty(FacetSlot slot)
    {
        try
        {
            slot.Dirty.MarkNamespaceDirty();
        }
        catch (Exception e) when ((e is IOException or UnauthorizedAccessException) && StateLostRemoteServes)
        {
            // Marked in memory all the same; see StateLostRemoteServes.
        }
    }

    private void NotifyCommitted()
    {
        TaskCompletionSource old = Interlocked.Exchange(ref _committed, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        old.TrySetResult();
    }
}
