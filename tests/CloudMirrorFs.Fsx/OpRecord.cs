using System.Text;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// One operation as decided before it runs: everything needed to read the log or to replay it by hand. Offset and
/// Length are -1 for operations without a byte range; Other is the second file of a swap or rename-over, else -1.
/// </summary>
internal readonly record struct OpRecord(
    long Number, OpKind Kind, int File, long Offset, long Length, long SizeBefore, long SizeAfter, int Other, string? Variant)
{
    /// <summary>The operation's name in the log and in reports.</summary>
    public static string NameOf(OpKind kind) => kind switch
    {
        OpKind.Create => "create",
        OpKind.Write => "write",
        OpKind.WriteOtherHandle => "write2",
        OpKind.Append => "append",
        OpKind.Truncate => "truncate",
        OpKind.ZeroRange => "zero-range",
        OpKind.Read => "read",
        OpKind.ReadOtherHandle => "read2",
        OpKind.Fsync => "fsync",
        OpKind.Reopen => "reopen",
        OpKind.RenameSwap => "rename-swap",
        OpKind.RenameOver => "rename-over",
        OpKind.Compare => "compare",
        OpKind.Stat => "stat",
        OpKind.Final => "final",
        _ => kind.ToString(),
    };

    /// <summary>True when the operation may have changed the bytes of its file at <paramref name="offset"/>.</summary>
    public bool Touches(int file, long offset) => Kind switch
    {
        OpKind.Write or OpKind.WriteOtherHandle or OpKind.Append => File == file && offset >= Offset && offset < Offset + Length,
        OpKind.Truncate => File == file && offset >= Math.Min(SizeBefore, SizeAfter),
        OpKind.ZeroRange => File == file && offset >= Offset && offset < Offset + Length,
        OpKind.Create or OpKind.RenameSwap or OpKind.RenameOver => File == file || Other == file,
        _ => false,
    };

    /// <summary>One line: <c>#N name fI [off=O len=L] size=S[-&gt;S2] [other=fJ] [variant]</c>.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder(96);
        sb.Append('#').Append(Number).Append(' ').Append(NameOf(Kind));
        if (File >= 0)
        {
            sb.Append(" f").Append(File);
        }
        if (Offset >= 0)
        {
            sb.Append(" off=").Append(Offset).Append(" len=").Append(Length);
        }
        if (File >= 0)
        {
            sb.Append(" size=").Append(SizeBefore);
            if (SizeAfter != SizeBefore)
            {
                sb.Append("->").Append(SizeAfter);
            }
        }
        if (Other >= 0)
        {
            sb.Append(" other=f").Append(Other);
        }
        if (Variant is not null)
        {
            sb.Append(" [").Append(Variant).Append(']');
        }
        return sb.ToString();
    }
}
