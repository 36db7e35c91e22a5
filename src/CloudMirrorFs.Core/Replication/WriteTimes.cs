using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;

namespace CloudMirrorFs.Replication;

/// <summary>
/// The modification times a batch's data changes leave on a remote. A file changed by a write, a truncate or a zeroed
/// range gets, once those changes are applied, the time the last of them was queued: the moment the local facet's
/// file took it, to within the clock's tick. Without it a remote's file carried the time the replicator wrote it
/// (minutes or days later after an outage), and so did everything restored or rebuilt from it. Applied before any
/// change that moves or removes paths or sets times itself, and at the end of the batch, so a path is always current
/// and an explicit <c>utimens</c> later in the batch wins. A folder whose names a batch changed (a child made, removed
/// or renamed in or out) gets the time of the last such change likewise.
/// </summary>
internal sealed class WriteTimes
{
    private readonly Dictionary<long, (string Path, DateTime Time)> _pending = [];
    private readonly Dictionary<string, DateTime> _folders = new(StringComparer.Ordinal);

    /// <summary>A data change of <paramref name="t"/>'s file was applied (or is in flight).</summary>
    public void Changed(Transaction t) => _pending[t.FileId] = (t.Path, t.EnqueuedUtc);

    /// <summary>A change of names was applied: the folders it made, removed or renamed a child in.</summary>
    public void NamesChanged(Transaction t)
    {
        if (t.Kind is TransactionKind.CreateFile or TransactionKind.CreateDirectory or TransactionKind.CreateSymlink
            or TransactionKind.DeleteFile or TransactionKind.DeleteDirectory or TransactionKind.Rename)
        {
            _folders[VolumePath.Parent(t.Path)] = t.EnqueuedUtc;
        }
        if (t.Kind == TransactionKind.Rename && t.Path2 is { } to)
        {
            _folders[VolumePath.Parent(to)] = t.EnqueuedUtc;
        }
        if (t.Kind == TransactionKind.CreateDirectory)
        {
            _folders[t.Path] = t.EnqueuedUtc; // made now on the facet: its time is when it was made on the local one
        }
    }

    /// <summary>
    /// A change other than a write was applied (a write is counted with <see cref="Changed"/> as it starts): the
    /// folders whose names it changed, the file whose length or bytes it changed, or the file it deleted.
    /// </summary>
    public void Applied(Transaction t)
    {
        NamesChanged(t);
        if (t.Kind is TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange)
        {
            Changed(t);
        }
        else if (t.Kind == TransactionKind.DeleteFile)
        {
            Deleted(t.FileId);
        }
    }

    /// <summary>The file is deleted: its time goes nowhere.</summary>
    public void Deleted(long fileId) => _pending.Remove(fileId);

    /// <summary>True when the change must find every pending time applied first (it renames, removes a folder or sets times).</summary>
    public static bool AppliedBefore(TransactionKind kind)
        => kind is not (TransactionKind.Write or TransactionKind.SetLength or TransactionKind.ZeroRange or TransactionKind.DeleteFile
            or TransactionKind.CreateFile or TransactionKind.CreateDirectory or TransactionKind.CreateSymlink);

    /// <summary>Sets every pending time on <paramref name="facet"/>; a file gone there meanwhile is skipped.</summary>
    public async ValueTask ApplyAsync(IFacet facet, CancellationToken cancellationToken)
    {
        foreach (var (id, (path, time)) in _pending)
        {
            try
            {
                await facet.SetAttributesAsync(path, new AttributeChange { LastWriteUtc = time, FileId = id }, cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException e) when (e.Error == MirrorError.NotFound)
            {
                // Removed by a later change of this batch's queue: nothing to stamp.
            }
        }
        _pending.Clear();
        foreach (var (path, time) in _folders)
        {
            try
            {
                await facet.SetAttributesAsync(path, new AttributeChange { LastWriteUtc = time }, cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException e) when (e.Error == MirrorError.NotFound)
            {
                // Removed by a later change of this batch's queue.
            }
        }
        _folders.Clear();
    }
}
