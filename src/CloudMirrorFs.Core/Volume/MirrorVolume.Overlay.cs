using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;

namespace CloudMirrorFs.Volume;

/// <summary>
/// Reads with no local facet (seed 000, "read from the buffer"): the bytes a remote facet holds, with the newer changes
/// the queue still holds for it laid over them in order. Any remote the queue feeds will do; where its dirty map says
/// it lacks a block (a resync under way), only a block the queue decides whole is served.
/// A read the queue decides entirely (a file created and written since the remote last committed) needs no remote
/// at all, so it is served while the link is down.
/// </summary>
public sealed partial class MirrorVolume
{
    private long _bufferReads;

    /// <summary>Degraded reads answered with the queue's changes laid over a remote (or from the queue alone).</summary>
    public long BufferReads => Interlocked.Read(ref _bufferReads);

    /// <summary>Remotes the queue feeds, the ones holding the most first.</summary>
    private IEnumerable<FacetSlot> OverlayCandidates()
    {
        if (_queue is null || _queueFailed)
        {
            return [];
        }
        // Any remote the queue feeds will do: for it, the queue and its dirty map together name everything it lacks
        // (a NotSynchronised one here is a resync interrupted and about to be retried).
        return _remotes
            .Where(r => _queue.IsActive(r.Name))
            .OrderBy(r => r.State switch { FacetState.Synchronised => 0, FacetState.Offline => 1, FacetState.BeingSynchronised => 2, _ => 3 })
            .ThenBy(r => r.Dirty.Count);
    }

    /// <summary>
    /// Reads <paramref name="buffer"/> at <paramref name="offset"/> from <paramref name="remote"/> with the queue's newer
    /// changes laid over; null when this remote cannot give bytes that are certainly the volume's.
    /// </summary>
    private async ValueTask<int?> TryReadFromBufferAsync(FacetSlot remote, FileNode node, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        string path = _files.PathOf(node);
        IReadOnlyList<Transaction> pending;
        try
        {
            // The changes first, then the remote: whatever the remote commits in between is in both, and laying a
            // change over a state that already has it changes nothing.
            pending = _queue!.Pending(remote.Name, t => t.FileId == node.Id || t.Kind == TransactionKind.Rename);
        }
        catch (MirrorException)
        {
            return null; // the queue cannot be read back: the slow path waits for a remote that has everything
        }
        int created = -1;
        bool baseTrusted = true;
        for (int i = 0; i < pending.Count; i++)
        {
            Transaction t = pending[i];
            if (t.Kind == TransactionKind.Rename)
            {
                // The remote knows the file (or a folder above it) under an older name: its bytes at this path are not the file's.
                if (t.FileId == node.Id || VolumePath.IsSameOrUnder(path, t.Path2!) || VolumePath.IsSameOrUnder(path, t.Path))
                {
                    baseTrusted = false;
                }
            }
            else if (t.FileId == node.Id && t.Kind == TransactionKind.CreateFile)
            {
                created = i;
            }
            else if (t.FileId == node.Id && t.Kind is not (TransactionKind.Write or TransactionKind.SetLength or TransactionKind.SetAttributes))
            {
                baseTrusted = false; // deleted since (an open file unlinked): the path may name another file on the remote
            }
        }
        // The data changes to lay over; a file created since the remote's last commit is held by the queue whole.
        List<Transaction> changes = [.. pending.Skip(created + 1).Where(t => t.FileId == node.Id && t.Kind is TransactionKind.Write or TransactionKind.SetLength)];
        long length;
        if (created >= 0)
        {
            length = 0;
        }
        else
        {
            if (!baseTrusted || remote.Dirty.NamespaceDirty || remote.Dirty.IsFull)
            {
                return null;
            }
            try
            {
                NodeInfo? info = await remote.Facet.StatAsync(path, cancellationToken).ConfigureAwait(false);
                if (info is not { Kind: NodeKind.File } stat)
                {
                    return null;
                }
                length = stat.Length;
            }
            catch (MirrorException)
            {
                return null; // unreachable or failing: another remote, or the slow path
            }
        }
        foreach (Transaction t in changes)
        {
            length = t.Kind == TransactionKind.SetLength ? t.Length : Math.Max(length, t.Offset + t.Data.Length);
        }
        int count = (int)Math.Clamp(length - offset, 0, buffer.Length);
        Memory<byte> target = buffer[..count];
        if (count == 0)
        {
            return 0;
        }

        if (created >= 0)
        {
            target.Span.Clear();
        }
        else if (!DecidedByChanges(changes, offset, count))
        {
            if (TouchesDirty(remote, node.Id, offset, count))
            {
                return null; // the remote lacks some of these blocks and the queue does not hold them
            }
            try
            {
                int got = await remote.Facet.ReadAsync(new FileRef(node.Id, path), offset, target, cancellationToken).ConfigureAwait(false);
                target.Span[got..].Clear();
            }
            catch (MirrorException)
            {
                return null;
            }
        }
        foreach (Transaction t in changes)
        {
            LayOver(t, offset, target.Span);
        }
        Interlocked.Increment(ref _bufferReads);
        return count;
    }

    /// <summary>True when the changes alone fix every byte of [offset, offset + count).</summary>
    private static bool DecidedByChanges(List<Transaction> changes, long offset, int count)
    {
        var decided = new List<(long Start, long End)>();
        long end = offset + count;
        foreach (Transaction t in changes)
        {
            (long s, long e) = t.Kind == TransactionKind.SetLength ? (t.Length, end) : (t.Offset, t.Offset + t.Data.Length);
            s = Math.Max(s, offset);
            e = Math.Min(e, end);
            if (s < e)
            {
                decided.Add((s, e));
            }
        }
        long reached = offset;
        foreach (var (s, e) in decided.OrderBy(d => d.Start))
        {
            if (s > reached)
            {
                return false;
            }
            reached = Math.Max(reached, e);
        }
        return reached >= end;
    }

    private bool TouchesDirty(FacetSlot remote, long fileId, long offset, int count)
    {
        if (remote.Dirty.IsEmpty)
        {
            return false;
        }
        for (long b = offset / BlockSize; b <= (offset + count - 1) / BlockSize; b++)
        {
            if (remote.Dirty.Contains(new Location(fileId, b)))
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Applies one queued change to the bytes of [offset, offset + target.Length).</summary>
    private static void LayOver(Transaction t, long offset, Span<byte> target)
    {
        long end = offset + target.Length;
        if (t.Kind == TransactionKind.SetLength)
        {
            if (t.Length < end)
            {
                target[(int)(Math.Max(t.Length, offset) - offset)..].Clear();
            }
            return;
        }
        long s = Math.Max(t.Offset, offset);
        long e = Math.Min(t.Offset + t.Data.Length, end);
        if (s < e)
        {
            t.Data.Span.Slice((int)(s - t.Offset), (int)(e - s)).CopyTo(target[(int)(s - offset)..]);
        }
    }
}
