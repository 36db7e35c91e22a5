using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Queue;

/// <summary>Reads records from one segment file sequentially, stopping at the first damaged one.</summary>
internal sealed class SegmentReader : IDisposable
{
    private readonly FileStream _stream;
    private const int OwnBufferFrom = 16 * 1024;
    private readonly byte[] _buffer = new byte[OwnBufferFrom];

    private readonly DataArena? _readInto;

    /// <summary>
    /// Opens <paramref name="path"/> at <paramref name="startOffset"/>. With <paramref name="readInto"/>, a large record
    /// is read into room taken from that arena (memory already mapped, reused once released) and holds it once:
    /// whoever takes the record gives that hold back.
    /// </summary>
    public SegmentReader(string path, long startOffset, DataArena? readInto = null)
    {
        _readInto = readInto;
        Path = path;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1 << 16);
        Offset = startOffset;
        _stream.Position = startOffset;
    }

    public string Path { get; }

    /// <summary>The offset of the next record.</summary>
    public long Offset { get; private set; }

    /// <summary>Record headers read so far, of records returned and of records stepped over (tests).</summary>
    public long HeadersRead { get; private set; }

    /// <summary>The offset of the record <see cref="Next"/> returned last.</summary>
    public long RecordOffset { get; private set; }

    /// <summary>Set when reading stopped at a damaged or torn record.</summary>
    public string? Problem { get; private set; }

    /// <summary>True when the problem is an incomplete record at the end of the file.</summary>
    public bool Torn { get; private set; }

    /// <summary>
    /// Reads the next record; null at the end of the file, at <paramref name="endOffset"/>, or at a damaged record
    /// (<see cref="Problem"/> set). A record whose header names a sequence number up to <paramref name="skipThrough"/>
    /// (a reader that has them already), or a kind and file id <paramref name="wanted"/> refuses, is stepped over
    /// unread: its payload neither read nor checked, since nobody uses it.
    /// </summary>
    public Transaction? Next(long endOffset = long.MaxValue, Func<TransactionKind, long, bool>? wanted = null, long skipThrough = 0)
    {
        long length = _stream.Length;
        long end = Math.Min(length, endOffset);
        bool haveHeader = (wanted is not null || skipThrough > 0) && StepOverUnwanted(end, length, wanted, skipThrough);
        if (!haveHeader)
        {
            if (Offset >= end)
            {
                return null;
            }
            if (Offset + SegmentFormat.RecordHeaderSize > length)
            {
                Problem = $"incomplete record header ({length - Offset} bytes)";
                Torn = true;
                return null;
            }
            _stream.ReadExactly(_buffer, 0, SegmentFormat.RecordHeaderSize);
            HeadersRead++;
        }
        int total = SegmentFormat.PeekLength(_buffer);
        if (total < 0)
        {
            Problem = "bad record header";
            Torn = IsZeroTail(length);
            return null;
        }
        if (Offset + total > length)
        {
            Problem = $"incomplete record ({length - Offset} of {total} bytes)";
            Torn = true;
            return null;
        }
        // A large record is read into a buffer of its own, which the transaction keeps (its data is a slice of it:
        // no second copy); small ones share the reader's buffer and copy their few bytes out.
        // With an arena, that buffer is room in one of its slabs: a fresh array per record would cost a page fault
        // and a cleared page per 4 KiB, and a full collection every few records of a large spilled backlog.
        bool owned = total > OwnBufferFrom;
        Memory<byte> buffer = _buffer;
        IBufferOwner holder = BufferOwner.Collected;
        if (owned)
        {
            (buffer, holder) = _readInto is { } arena ? arena.Reserve(total) : (GC.AllocateUninitializedArray<byte>(total), BufferOwner.Collected);
            _buffer.AsSpan(0, SegmentFormat.RecordHeaderSize).CopyTo(buffer.Span);
        }
        Transaction? t = null;
        string? problem = null;
        try
        {
            _stream.ReadExactly(buffer.Span[SegmentFormat.RecordHeaderSize..total]);
            t = SegmentFormat.Decode(buffer[..total], owned, out problem);
        }
        finally
        {
            if (t is null)
            {
                holder.Release();
            }
        }
        if (t is null)
        {
            Problem = problem;
            return null;
        }
        t.Owner = holder;
        RecordOffset = Offset;
        Offset += total;
        return t;
    }

    /// <summary>
    /// Moves past the whole records at or before <paramref name="skipThrough"/> and those whose header
    /// <paramref name="wanted"/> refuses. Stops at a wanted one, its header read into the buffer (true); or at
    /// <paramref name="end"/>, or at anything that is not a whole record, with nothing of it read (which the caller then
    /// reports as usual).
    /// </summary>
    private bool StepOverUnwanted(long end, long length, Func<TransactionKind, long, bool>? wanted, long skipThrough)
    {
        while (Offset < end && Offset + SegmentFormat.RecordHeaderSize <= length)
        {
            _stream.ReadExactly(_buffer, 0, SegmentFormat.RecordHeaderSize);
            int total = SegmentFormat.PeekLength(_buffer);
            var (kind, fileId) = SegmentFormat.PeekKindAndFile(_buffer);
            if (total < 0 || Offset + total > length)
            {
                _stream.Seek(-SegmentFormat.RecordHeaderSize, SeekOrigin.Current); // read again, and reported, by the caller
                return false;
            }
            HeadersRead++;
            if (SegmentFormat.PeekSeq(_buffer) > skipThrough && (wanted is null || wanted(kind, fileId)))
            {
                return true;
            }
            _stream.Seek(total - SegmentFormat.RecordHeaderSize, SeekOrigin.Current);
            Offset += total;
        }
        return false;
    }

    /// <summary>A crash can leave zeros where the file system extended the file but the data never landed.</summary>
    private bool IsZeroTail(long length)
    {
        long save = _stream.Position;
        try
        {
            _stream.Position = Offset;
            var chunk = new byte[8192];
            int n;
            while ((n = _stream.Read(chunk)) > 0)
            {
                if (chunk.AsSpan(0, n).ContainsAnyExcept((byte)0))
                {
                    return false;
                }
            }
            return _stream.Position == length;
        }
        finally
        {
            _stream.Position = save;
        }
    }

    public void Dispose() => _stream.Dispose();
}
