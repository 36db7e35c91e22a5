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
    private long _bufferStats;

    /// <summary>Degraded reads answered with the queue's changes laid over a remote (or from the queue alone).</summary>
    public long BufferReads => Interlocked.Read(ref _bufferReads);

    /// <summary>Attributes answered with no local facet from a remote with the queue's changes laid over (or from the queue alone).</summary>
    public long BufferStats => Interlocked.Read(ref _bufferStats);

    /// <summary>Scans of the queue made for those answers (a sequential reader reuses one while the queue stands still).</summary>
    public long BufferScans => Interlocked.Read(ref _bufferScans);

    private long _bufferScans;
    private readonly Lock _lastScanLock = new();
    private (string Remote, long FileId, long Head, long Tail, IReadOnlyList<Transaction> Pending)? _lastScan;
    private const long ScanKeptBytes = 64L << 20;

    /// <summary>
    /// The queue's changes a remote has not committed that touch one node, and every rename: the last scan again while
    /// neither the remote's head nor the queue's tail has moved (what lies between them is all a scan sees, and records
    /// never change), so a reader going through a file does not rescan the queue, maybe from disk, for every read.
    /// </summary>
    private IReadOnlyList<Transaction> PendingFor(FacetSlot remote, long fileId)
    {
        long head = _queue!.HeadOf(remote.Name), tail = _queue.Tail;
        lock (_lastScanLock)
        {
            if (_lastScan is { } last && last.Remote == remote.Name && last.FileId == fileId && last.Head == head && last.Tail == tail)
            {
                return last.Pending;
            }
        }
        // Read before the scan: a record appended or committed meanwhile only makes the key older than the list.
        IReadOnlyList<Transaction> pending = _queue.PendingFor(remote.Name, fileId);
        Interlocked.Increment(ref _bufferScans);
        if (pending.Sum(t => (long)t.Data.Length) <= ScanKeptBytes)
        {
            lock (_lastScanLock)
            {
                _lastScan = (remote.Name, fileId, head, tail, pending);
            }
        }
        return pending;
    }

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
            pending = PendingFor(remote, node.Id);
        }
        catch (MirrorException)
        {
            return null; // the queue cannot be read back: the slow path waits for a remote that has everything
        }
        Buffered buffered = Analyse(pending, node, path);
        bool created = buffered.Creation is not null;
        // The data changes to lay over; a file created since the remote's last commit is held by the queue whole.
        List<Transaction> changes = [.. buffered.Changes.Where(t => t.Kind is TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange)];
        long length;
        if (created)
        {
            length = 0;
        }
        else
        {
            if (!buffered.BaseTrusted || remote.Dirty.NamespaceDirty || remote.Dirty.IsFull)
            {
                return null;
            }
            if (await RemoteNodeAsync(remote, node, path, buffered.RemotePath, cancellationToken).ConfigureAwait(false) is not { } stat)
            {
                return null;
            }
            length = stat.Length;
        }
        foreach (Transaction t in changes)
        {
            length = t.Kind switch
            {
                TransactionKind.SetLength => t.Length,
                TransactionKind.Write => Math.Max(length, t.Offset + t.Data.Length),
                _ => length, // a zeroed range keeps the length
            };
        }
        int count = (int)Math.Clamp(length - offset, 0, buffer.Length);
        Memory<byte> target = buffer[..count];
        if (count == 0)
        {
            return 0;
        }

        if (created)
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
                int got = await remote.Facet.ReadAsync(new FileRef(node.Id, buffered.RemotePath), offset, target, cancellationToken).ConfigureAwait(false);
                target.Span[got..].Clear();
                if (buffered.RemotePath != path && await RemoteNodeAsync(remote, node, path, buffered.RemotePath, cancellationToken).ConfigureAwait(false) is null)
                {
                    return null; // the remote moved the node while it was read: what was read may be another node's
                }
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

    /// <summary>What the queue's changes not yet committed on a remote say about one node.</summary>
    /// <param name="Creation">The node's creation, when the remote has not committed it yet (the queue then holds all of it).</param>
    /// <param name="BaseTrusted">False when the remote's node may be another one (the node was deleted since: an open file unlinked).</param>
    /// <param name="RemotePath">Where the remote has the node: its path with the pending renames undone, newest first.</param>
    /// <param name="Changes">The node's writes, truncates and attribute changes after its creation, in order.</param>
    private readonly record struct Buffered(Transaction? Creation, bool BaseTrusted, string RemotePath, List<Transaction> Changes);

    private static Buffered Analyse(IReadOnlyList<Transaction> pending, FileNode node, string path)
    {
        int created = -1;
        bool baseTrusted = true;
        var renames = new List<Transaction>();
        for (int i = 0; i < pending.Count; i++)
        {
            Transaction t = pending[i];
            if (t.Kind == TransactionKind.Rename)
            {
                renames.Add(t);
            }
            else if (t.FileId == node.Id && t.Kind is TransactionKind.CreateFile or TransactionKind.CreateDirectory or TransactionKind.CreateSymlink)
            {
                created = i;
            }
            else if (t.FileId == node.Id && t.Kind is not (TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange or TransactionKind.SetAttributes))
            {
                baseTrusted = false; // deleted since (an open file unlinked): the path may name another node on the remote
            }
        }
        // The queue holds every change after the remote's head, so undoing its renames (the node's own, or a folder's
        // above it), newest first, gives the path the remote has the node at.
        string remotePath = path;
        for (int i = renames.Count - 1; i >= 0; i--)
        {
            Transaction r = renames[i];
            if (VolumePath.IsSameOrUnder(remotePath, r.Path2!))
            {
                remotePath = r.Path + remotePath[r.Path2!.Length..];
            }
        }
        List<Transaction> changes = [.. pending.Skip(created + 1).Where(t => t.FileId == node.Id
            && t.Kind is TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange or TransactionKind.SetAttributes)];
        return new Buffered(created >= 0 ? pending[created] : null, baseTrusted, remotePath, changes);
    }

    /// <summary>
    /// The remote's node at <paramref name="remotePath"/> when it is certainly <paramref name="node"/>. The remote
    /// moves on while this runs (its replicator applies the queue), so a path the queue's renames were undone to is
    /// trusted only when the remote names the node by its file id (object stores do; a directory remote does not, and
    /// is then asked only at the node's own path, with no rename pending above it).
    /// </summary>
    private static async ValueTask<NodeInfo?> RemoteNodeAsync(FacetSlot remote, FileNode node, string path, string remotePath, CancellationToken cancellationToken)
    {
        try
        {
            return await remote.Facet.StatAsync(remotePath, cancellationToken).ConfigureAwait(false) is { } stat
                && stat.Kind == node.Kind && (stat.FileId == node.Id || (stat.FileId == 0 && remotePath == path))
                ? stat : null;
        }
        catch (MirrorException)
        {
            return null; // unreachable or failing: another remote, or the slow path
        }
    }

    /// <summary>
    /// Attributes with no local facet: the remote's, with the queue's newer changes laid over (a node created since
    /// the remote's last commit comes from the queue alone); null when this remote cannot give them for certain.
    /// A directory's times are the remote's until it has the changes inside it.
    /// </summary>
    private async ValueTask<NodeInfo?> TryStatFromBufferAsync(FacetSlot remote, FileNode node, string path, IReadOnlyList<Transaction> pending,
        CancellationToken cancellationToken)
    {
        Buffered buffered = Analyse(pending, node, path);
        NodeInfo info;
        if (buffered.Creation is { } c)
        {
            long length = node.Kind == NodeKind.Symlink ? System.Text.Encoding.UTF8.GetByteCount(c.Path2 ?? "") : 0;
            UnixFileMode mode = c.Mode ?? (UnixFileMode)0b111_111_111; // a link's mode is always 0777
            info = new NodeInfo(node.Name, node.Kind, length, mode, c.EnqueuedUtc, c.EnqueuedUtc, c.EnqueuedUtc);
        }
        else
        {
            // A remote being resynchronised may lack a write to this node (its length or time would be old).
            if (!buffered.BaseTrusted || remote.Dirty.NamespaceDirty || !remote.Dirty.IsEmpty)
            {
                return null;
            }
            if (await RemoteNodeAsync(remote, node, path, buffered.RemotePath, cancellationToken).ConfigureAwait(false) is not { } stat)
            {
                return null;
            }
            info = stat;
        }
        foreach (Transaction t in buffered.Changes)
        {
            info = t.Kind switch
            {
                TransactionKind.Write => info with
                {
                    Length = Math.Max(info.Length, t.Offset + t.Data.Length), LastWriteUtc = t.EnqueuedUtc, ChangeUtc = t.EnqueuedUtc,
                },
                TransactionKind.SetLength => info with { Length = t.Length, LastWriteUtc = t.EnqueuedUtc, ChangeUtc = t.EnqueuedUtc },
                TransactionKind.ZeroRange => info with { LastWriteUtc = t.EnqueuedUtc, ChangeUtc = t.EnqueuedUtc },
                _ => info with
                {
                    Mode = t.Mode ?? info.Mode, LastWriteUtc = t.LastWriteUtc ?? info.LastWriteUtc, LastAccessUtc = t.LastAccessUtc ?? info.LastAccessUtc,
                    ChangeUtc = t.EnqueuedUtc,
                },
            };
        }
        Interlocked.Increment(ref _bufferStats);
        return info with { FileId = node.Id, Name = node.Name };
    }

    /// <summary>
    /// <see cref="StatAsync(string, CancellationToken)"/> with no local facet, for the nodes of <paramref name="nodes"/>
    /// (one scan of the queue for all of them): from the first remote that can tell for every one, else null (the
    /// caller then waits for a remote that has caught up).
    /// </summary>
    private async ValueTask<NodeInfo[]?> TryStatManyFromBufferAsync(IReadOnlyList<(FileNode Node, string Path)> nodes, CancellationToken cancellationToken)
    {
        var ids = nodes.Select(n => n.Node.Id).ToHashSet();
        foreach (FacetSlot remote in OverlayCandidates())
        {
            IReadOnlyList<Transaction> pending;
            try
            {
                pending = nodes.Count == 1
                    ? PendingFor(remote, nodes[0].Node.Id)
                    : _queue!.PendingFor(remote.Name, ids);
            }
            catch (MirrorException)
            {
                return null;
            }
            // Each node's own changes, in queue order, then every rename (their order does not matter to Analyse).
            ILookup<long, Transaction> byNode = pending.Where(t => t.Kind != TransactionKind.Rename).ToLookup(t => t.FileId);
            List<Transaction> renames = [.. pending.Where(t => t.Kind == TransactionKind.Rename)];
            var result = new NodeInfo[nodes.Count];
            bool all = true;
            for (int i = 0; i < nodes.Count && all; i++)
            {
                var (node, path) = nodes[i];
                List<Transaction> mine = [.. byNode[node.Id], .. renames];
                if (await TryStatFromBufferAsync(remote, node, path, mine, cancellationToken).ConfigureAwait(false) is { } info)
                {
                    result[i] = info;
                }
                else
                {
                    all = false;
                }
            }
            if (all)
            {
                return result;
            }
        }
        return null;
    }

    /// <summary>A link's target with no local facet: from the queue when the link is newer than the remote's commit, else the remote's.</summary>
    private async ValueTask<string?> TryReadLinkFromBufferAsync(FileNode node, string path, CancellationToken cancellationToken)
    {
        foreach (FacetSlot remote in OverlayCandidates())
        {
            IReadOnlyList<Transaction> pending;
            try
            {
                pending = PendingFor(remote, node.Id);
            }
            catch (MirrorException)
            {
                return null;
            }
            Buffered buffered = Analyse(pending, node, path);
            if (buffered.Creation is { } c)
            {
                return c.Path2;
            }
            if (!buffered.BaseTrusted || remote.Dirty.NamespaceDirty
                || await RemoteNodeAsync(remote, node, path, buffered.RemotePath, cancellationToken).ConfigureAwait(false) is null)
            {
                continue;
            }
            try
            {
                string target = await remote.Facet.ReadLinkAsync(buffered.RemotePath, cancellationToken).ConfigureAwait(false);
                if (buffered.RemotePath == path || await RemoteNodeAsync(remote, node, path, buffered.RemotePath, cancellationToken).ConfigureAwait(false) is not null)
                {
                    return target; // a link's target never changes: the same node before and after is this one's
                }
            }
            catch (MirrorException)
            {
                // unreachable or failing: another remote, or the slow path
            }
        }
        return null;
    }

    /// <summary>True when the changes alone fix every byte of [offset, offset + count).</summary>
    private static bool DecidedByChanges(List<Transaction> changes, long offset, int count)
    {
        var decided = new List<(long Start, long End)>();
        long end = offset + count;
        foreach (Transaction t in changes)
        {
            (long s, long e) = t.Kind == TransactionKind.SetLength ? (t.Length, end) : (t.Range.Offset, t.Range.Offset + t.Range.Length);
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
            if (remote.Dirty.Contains(new Location(fileId, b)) || remote.Dirty.Contains(Location.WholeFile(fileId)))
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
        long s = Math.Max(t.Range.Offset, offset);
        long e = Math.Min(t.Range.Offset + t.Range.Length, end);
        if (s >= e)
        {
            return;
        }
        if (t.Kind == TransactionKind.ZeroRange)
        {
            target.Slice((int)(s - offset), (int)(e - s)).Clear();
            return;
        }
        t.Data.Span.Slice((int)(s - t.Offset), (int)(e - s)).CopyTo(target[(int)(s - offset)..]);
    }
}
