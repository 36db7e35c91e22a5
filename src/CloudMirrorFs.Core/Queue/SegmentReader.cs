namespace CloudMirrorFs.Queue;

/// <summary>Reads records from one segment file sequentially, stopping at the first damaged one.</summary>
internal sealed class SegmentReader : IDisposable
{
    private readonly FileStream _stream;
    private const int OwnBufferFrom = 16 * 1024;
    private readonly byte[] _buffer = new byte[OwnBufferFrom];

    public SegmentReader(string path, long startOffset)
    {
        Path = path;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 1 << 16);
        Offset = startOffset;
        _stream.Position = startOffset;
    }

    public string Path { get; }

    /// <summary>The offset of the next record.</summary>
    public long Offset { get; private set; }

    /// <summary>Set when reading stopped at a damaged or torn record.</summary>
    public string? Problem { get; private set; }

    /// <summary>True when the problem is an incomplete record at the end of the file.</summary>
    public bool Torn { get; private set; }

    /// <summary>
    /// Reads the next record; null at the end of the file, at <paramref name="endOffset"/>, or at a damaged record
    /// (<see cref="Problem"/> set). With <paramref name="wanted"/>, a record whose header names a kind and file id it
    /// refuses is stepped over unread (its payload neither read nor checked: nobody uses it).
    /// </summary>
    public Transaction? Next(long endOffset = long.MaxValue, Func<TransactionKind, long, bool>? wanted = null)
    {
        long length = _stream.Length;
        long end = Math.Min(length, endOffset);
        if (wanted is not null)
        {
            StepOverUnwanted(end, length, wanted);
        }
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
        bool owned = total > OwnBufferFrom;
        byte[] buffer = _buffer;
        if (owned)
        {
            buffer = GC.AllocateUninitializedArray<byte>(total);
            _buffer.AsSpan(0, SegmentFormat.RecordHeaderSize).CopyTo(buffer);
        }
        _stream.ReadExactly(buffer, SegmentFormat.RecordHeaderSize, total - SegmentFormat.RecordHeaderSize);
        Transaction? t = SegmentFormat.Decode(buffer.AsMemory(0, total), owned, out string? problem);
        if (t is null)
        {
            Problem = problem;
            return null;
        }
        Offset += total;
        return t;
    }

    /// <summary>
    /// Moves past the whole records whose header <paramref name="wanted"/> refuses, stopping at a wanted one, at
    /// <paramref name="end"/>, or at anything that is not a whole record (which the caller then reports as usual).
    /// </summary>
    private void StepOverUnwanted(long end, long length, Func<TransactionKind, long, bool> wanted)
    {
        while (Offset < end && Offset + SegmentFormat.RecordHeaderSize <= length)
        {
            _stream.ReadExactly(_buffer, 0, SegmentFormat.RecordHeaderSize);
            int total = SegmentFormat.PeekLength(_buffer);
            var (kind, fileId) = SegmentFormat.PeekKindAndFile(_buffer);
            if (total < 0 || Offset + total > length || wanted(kind, fileId))
            {
                _stream.Seek(-SegmentFormat.RecordHeaderSize, SeekOrigin.Current);
                return;
            }
            _stream.Seek(total - SegmentFormat.RecordHeaderSize, SeekOrigin.Current);
            Offset += total;
        }
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
