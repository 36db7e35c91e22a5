namespace CloudMirrorFs.Fsx;

/// <summary>The operations the exerciser applies, each to the same file in both trees.</summary>
internal enum OpKind
{
    /// <summary>The files created empty before the first operation (op #0).</summary>
    Create,

    /// <summary>A positional write through the kept handle, inside the file, past EOF (a hole) or anywhere.</summary>
    Write,

    /// <summary>The same, through a second handle opened and closed for this write only.</summary>
    WriteOtherHandle,

    /// <summary>A write at the current end of file.</summary>
    Append,

    /// <summary>A size change (grow, shrink, to 0), through the kept handle or a second one.</summary>
    Truncate,

    /// <summary>
    /// fallocate of a range: a hole punched (PUNCH_HOLE | KEEP_SIZE) or zeros (ZERO_RANGE, with KEEP_SIZE or growing
    /// the file to the range's end), inside the file or past its end.
    /// </summary>
    ZeroRange,

    /// <summary>A positional read (pread or scatter preadv) through the kept handle, compared with the reference.</summary>
    Read,

    /// <summary>A positional read through a second, independently opened handle, compared with the reference.</summary>
    ReadOtherHandle,

    /// <summary>An fsync of the file under test, through the kept handle or a FileStream.Flush(true) on a second one.</summary>
    Fsync,

    /// <summary>Close the kept handles and open them again.</summary>
    Reopen,

    /// <summary>A rename to a temporary name and back, or a swap of two files through a temporary name.</summary>
    RenameSwap,

    /// <summary>A rename of one file over another, then the first recreated empty.</summary>
    RenameOver,

    /// <summary>The lengths (fstat and stat) and whole content compared.</summary>
    Compare,

    /// <summary>The lengths (fstat of the kept handle and stat by path) compared.</summary>
    Stat,

    /// <summary>The check after the last operation: every file closed, then compared through fresh handles.</summary>
    Final,
}
