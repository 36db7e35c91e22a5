using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Queue;

/// <summary>
/// One change, in queue order: a data delta or a namespace change. Paths are the ones in force when the change was
/// made, so a facet that applies transactions in order always finds them.
/// </summary>
public sealed class Transaction
{
    /// <summary>The position in the queue: dense, increasing, starting at 1.</summary>
    public long Seq { get; internal set; }

    /// <summary>What changed.</summary>
    public TransactionKind Kind { get; init; }

    /// <summary>The file (or directory) id.</summary>
    public long FileId { get; init; }

    /// <summary>The volume-relative path.</summary>
    public string Path { get; internal set; } = "";

    /// <summary>The destination of a rename; the target of a new symbolic link (CreateSymlink).</summary>
    public string? Path2 { get; init; }

    /// <summary>Write: the file offset of <see cref="Data"/>; ZeroRange: where the zeroed range starts.</summary>
    public long Offset { get; init; }

    /// <summary>SetLength: the new length; ZeroRange: the zeroed range's length.</summary>
    public long Length { get; init; }

    /// <summary>CreateFile, CreateDirectory, SetAttributes: the mode; null when unchanged.</summary>
    public UnixFileMode? Mode { get; init; }

    /// <summary>SetAttributes: the new modification time; null when unchanged.</summary>
    public DateTime? LastWriteUtc { get; init; }

    /// <summary>SetAttributes: the new access time; null when unchanged.</summary>
    public DateTime? LastAccessUtc { get; init; }

    /// <summary>Write: the bytes (the queue replaces the caller's buffer with its own copy when it keeps the record).</summary>
    public ReadOnlyMemory<byte> Data { get; internal set; }

    /// <summary>
    /// Who owns <see cref="Data"/> while the queue holds the record, so that a facet may keep it
    /// (<see cref="IFacet.WriteKeepingAsync"/>): the queue's slab, or the collector for a buffer of the record's own.
    /// Null when it is not the queue's to lend (the caller's buffer, or a record the queue has let go).
    /// </summary>
    internal IBufferOwner? Owner { get; set; }

    /// <summary>When the change was queued.</summary>
    public DateTime EnqueuedUtc { get; internal set; }

    /// <summary>Bytes of payload this transaction holds.</summary>
    public long DataLength => Data.Length;

    /// <summary>
    /// True for the changes after which the bytes under a file's name may differ from a remote's though no range of them
    /// was written: a file renamed (maybe over another), made (maybe where another was), its length set (cut short and
    /// grown back). A remote that misses one has the whole file compared (<see cref="Location.WholeFile"/>).
    /// </summary>
    internal bool ReplacesContent => Kind is TransactionKind.Rename or TransactionKind.CreateFile or TransactionKind.SetLength;

    /// <summary>True for the kinds that change bytes in place at a range of a file (a write, a zeroed range).</summary>
    public bool ChangesRange => Kind is TransactionKind.Write or TransactionKind.ZeroRange;

    /// <summary>The range of bytes a write or a zeroed range changes: its start and length (0 for other kinds).</summary>
    public (long Offset, long Length) Range => Kind switch
    {
        TransactionKind.Write => (Offset, Data.Length),
        TransactionKind.ZeroRange => (Offset, Length),
        _ => (0, 0),
    };

    /// <summary>The first and last block a write or a zeroed range touches, for a block size.</summary>
    public (long First, long Last) Blocks(int blockSize)
        => Range is (long offset, > 0 and var length)
            ? (offset / blockSize, (offset + length - 1) / blockSize)
            : (0, -1);

    /// <summary>A copy whose data no longer lives in the queue's memory, so that it outlives the entry's release.</summary>
    internal Transaction Detached() => With(Data.ToArray(), owner: null);

    /// <summary>
    /// A copy for a reader that shares the bytes and takes a hold of its own on them (<paramref name="owner"/>, the
    /// entry's owner, retained here): the caller gives it back with <see cref="IBufferOwner.Release"/>.
    /// </summary>
    internal Transaction Lent(IBufferOwner owner)
    {
        owner.Retain();
        return With(Data, owner);
    }

    private Transaction With(ReadOnlyMemory<byte> data, IBufferOwner? owner) => new()
    {
        Seq = Seq,
        Kind = Kind,
        FileId = FileId,
        Path = Path,
        Path2 = Path2,
        Offset = Offset,
        Length = Length,
        Mode = Mode,
        LastWriteUtc = LastWriteUtc,
        LastAccessUtc = LastAccessUtc,
        Data = data,
        Owner = owner,
        EnqueuedUtc = EnqueuedUtc,
    };

    /// <inheritdoc />
    public override string ToString() => Kind switch
    {
        TransactionKind.Write => $"#{Seq} write {Path} [{Offset}, +{Data.Length})",
        TransactionKind.Rename => $"#{Seq} rename {Path} -> {Path2}",
        TransactionKind.CreateSymlink => $"#{Seq} symlink {Path} -> {Path2}",
        TransactionKind.SetLength => $"#{Seq} setlength {Path} {Length}",
        TransactionKind.ZeroRange => $"#{Seq} zero {Path} [{Offset}, +{Length})",
        _ => $"#{Seq} {Kind} {Path}",
    };
}
