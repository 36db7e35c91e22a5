using System.Buffers.Binary;
using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Queue;

/// <summary>
/// The on-disk layout of queue segments (docs/dev/queue-layout.md). A segment is a 24-byte header followed by
/// records; each record is an 80-byte header, the UTF-8 paths, the data, and a CRC-32C of everything before it.
/// The second path is a rename's destination or a new symbolic link's target (kind 9, added without a version
/// change: older segments hold no such record, so they read as before).
/// </summary>
internal static class SegmentFormat
{
    public const int FileHeaderSize = 24;
    public const int RecordHeaderSize = 80;
    public const int TrailerSize = 4;
    public const uint RecordMagic = 0x51464D43; // "CMFQ"
    public const int MaxRecordSize = 256 << 20;
    public static ReadOnlySpan<byte> FileMagic => "CMFSQSEG"u8;

    public static string FileName(long firstSeq) => $"seg-{firstSeq:D20}.cmq";

    public static bool TryParseFileName(string name, out long firstSeq)
    {
        firstSeq = 0;
        return name.StartsWith("seg-", StringComparison.Ordinal) && name.EndsWith(".cmq", StringComparison.Ordinal)
            && long.TryParse(name.AsSpan(4, name.Length - 8), out firstSeq);
    }

    public static void WriteFileHeader(Span<byte> header, long firstSeq)
    {
        FileMagic.CopyTo(header);
        BinaryPrimitives.WriteInt32LittleEndian(header[8..], 1);
        BinaryPrimitives.WriteInt32LittleEndian(header[12..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], firstSeq);
    }

    public static int RecordSize(Transaction t) => HeadSize(t) + t.Data.Length + TrailerSize;

    /// <summary>The bytes of a record before its data: the header and the paths.</summary>
    public static int HeadSize(Transaction t)
        => RecordHeaderSize + Encoding.UTF8.GetByteCount(t.Path) + (t.Path2 is null ? 0 : Encoding.UTF8.GetByteCount(t.Path2));

    /// <summary>
    /// Serialises <paramref name="t"/> without its data: the header and paths into <paramref name="head"/> (exactly
    /// <see cref="HeadSize"/> bytes) and the checksum into <paramref name="trailer"/>. Written as head, data, trailer,
    /// they are the record, with no copy of the data.
    /// </summary>
    public static void EncodeParts(Transaction t, Span<byte> head, Span<byte> trailer)
    {
        int pathLen = Encoding.UTF8.GetBytes(t.Path, head[RecordHeaderSize..]);
        int path2Len = t.Path2 is null ? 0 : Encoding.UTF8.GetBytes(t.Path2, head[(RecordHeaderSize + pathLen)..]);
        int total = RecordHeaderSize + pathLen + path2Len + t.Data.Length + TrailerSize;
        Span<byte> h = head[..RecordHeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(h, RecordMagic);
        BinaryPrimitives.WriteInt32LittleEndian(h[4..], total);
        BinaryPrimitives.WriteInt64LittleEndian(h[8..], t.Seq);
        h[16] = (byte)t.Kind;
        h[17] = (byte)((t.Mode.HasValue ? 1 : 0) | (t.LastWriteUtc.HasValue ? 2 : 0) | (t.LastAccessUtc.HasValue ? 4 : 0) | (t.Path2 is null ? 0 : 8));
        BinaryPrimitives.WriteUInt16LittleEndian(h[18..], checked((ushort)pathLen));
        BinaryPrimitives.WriteUInt16LittleEndian(h[20..], checked((ushort)path2Len));
        BinaryPrimitives.WriteUInt16LittleEndian(h[22..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(h[24..], t.FileId);
        BinaryPrimitives.WriteInt64LittleEndian(h[32..], t.Offset);
        BinaryPrimitives.WriteInt64LittleEndian(h[40..], t.Length);
        BinaryPrimitives.WriteInt64LittleEndian(h[48..], t.EnqueuedUtc.Ticks);
        BinaryPrimitives.WriteUInt32LittleEndian(h[56..], (uint)(t.Mode ?? 0));
        BinaryPrimitives.WriteInt64LittleEndian(h[60..], t.LastWriteUtc?.Ticks ?? 0);
        BinaryPrimitives.WriteInt64LittleEndian(h[68..], t.LastAccessUtc?.Ticks ?? 0);
        BinaryPrimitives.WriteInt32LittleEndian(h[76..], t.Data.Length);
        uint crc = Crc32C.Compute(t.Data.Span, Crc32C.Compute(head[..(RecordHeaderSize + pathLen + path2Len)]));
        BinaryPrimitives.WriteUInt32LittleEndian(trailer, crc);
    }

    /// <summary>The kind and the file id a record header names (the header only: nothing is checked).</summary>
    public static (TransactionKind Kind, long FileId) PeekKindAndFile(ReadOnlySpan<byte> header)
        => ((TransactionKind)header[16], BinaryPrimitives.ReadInt64LittleEndian(header[24..]));

    /// <summary>Reads the sequence number from a record header (checked only once the whole record is).</summary>
    public static long PeekSeq(ReadOnlySpan<byte> header) => BinaryPrimitives.ReadInt64LittleEndian(header[8..]);

    /// <summary>Reads the total length from a record header, or -1 when the header is not a record's.</summary>
    public static int PeekLength(ReadOnlySpan<byte> header)
    {
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != RecordMagic)
        {
            return -1;
        }
        int total = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
        return total is < RecordHeaderSize + TrailerSize or > MaxRecordSize ? -1 : total;
    }

    /// <summary>
    /// Checks the CRC and decodes a whole record; returns null (with a reason) when it is damaged. The data is a
    /// copy, unless <paramref name="owned"/>: then the record's buffer belongs to the transaction, and its data is a
    /// slice of it.
    /// </summary>
    public static Transaction? Decode(ReadOnlyMemory<byte> buffer, bool owned, out string? problem)
    {
        ReadOnlySpan<byte> record = buffer.Span;
        problem = null;
        int total = record.Length;
        uint stored = BinaryPrimitives.ReadUInt32LittleEndian(record[(total - TrailerSize)..]);
        if (stored != Crc32C.Compute(record[..(total - TrailerSize)]))
        {
            problem = "checksum mismatch";
            return null;
        }
        ReadOnlySpan<byte> h = record[..RecordHeaderSize];
        var kind = (TransactionKind)h[16];
        byte flags = h[17];
        int pathLen = BinaryPrimitives.ReadUInt16LittleEndian(h[18..]);
        int path2Len = BinaryPrimitives.ReadUInt16LittleEndian(h[20..]);
        int dataLen = BinaryPrimitives.ReadInt32LittleEndian(h[76..]);
        if (!Enum.IsDefined(kind) || RecordHeaderSize + pathLen + path2Len + dataLen + TrailerSize != total)
        {
            problem = "inconsistent record header";
            return null;
        }
        int p = RecordHeaderSize;
        string path = Encoding.UTF8.GetString(record.Slice(p, pathLen));
        p += pathLen;
        string? path2 = (flags & 8) != 0 ? Encoding.UTF8.GetString(record.Slice(p, path2Len)) : null;
        p += path2Len;
        ReadOnlyMemory<byte> data = owned ? buffer.Slice(p, dataLen) : dataLen == 0 ? Array.Empty<byte>() : record.Slice(p, dataLen).ToArray();
        return new Transaction
        {
            Seq = BinaryPrimitives.ReadInt64LittleEndian(h[8..]),
            Kind = kind,
            FileId = BinaryPrimitives.ReadInt64LittleEndian(h[24..]),
            Offset = BinaryPrimitives.ReadInt64LittleEndian(h[32..]),
            Length = BinaryPrimitives.ReadInt64LittleEndian(h[40..]),
            EnqueuedUtc = new DateTime(BinaryPrimitives.ReadInt64LittleEndian(h[48..]), DateTimeKind.Utc),
            Mode = (flags & 1) != 0 ? (UnixFileMode)BinaryPrimitives.ReadUInt32LittleEndian(h[56..]) : null,
            LastWriteUtc = (flags & 2) != 0 ? new DateTime(BinaryPrimitives.ReadInt64LittleEndian(h[60..]), DateTimeKind.Utc) : null,
            LastAccessUtc = (flags & 4) != 0 ? new DateTime(BinaryPrimitives.ReadInt64LittleEndian(h[68..]), DateTimeKind.Utc) : null,
            Path = path,
            Path2 = path2,
            Data = data,
            Owner = BufferOwner.Collected, // an array of its own, or a slice of the record's: the reader names the arena when it lent one
        };
    }
}
