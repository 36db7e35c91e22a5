namespace CloudMirrorFs.Queue;

/// <summary>What one transaction changes.</summary>
public enum TransactionKind : byte
{
    /// <summary>A data delta: bytes at an offset of a file.</summary>
    Write = 1,
    /// <summary>A new empty file.</summary>
    CreateFile = 2,
    /// <summary>A new directory.</summary>
    CreateDirectory = 3,
    /// <summary>A rename of a file or directory (Path to Path2).</summary>
    Rename = 4,
    /// <summary>A file removed.</summary>
    DeleteFile = 5,
    /// <summary>An empty directory removed.</summary>
    DeleteDirectory = 6,
    /// <summary>A file's length set (Length).</summary>
    SetLength = 7,
    /// <summary>Mode or times changed.</summary>
    SetAttributes = 8,
    /// <summary>A new symbolic link (Path) whose target, stored verbatim, is Path2.</summary>
    CreateSymlink = 9,
    /// <summary>
    /// The bytes of [Offset, Offset + Length) within the file's length read as zeros from now on (a hole punched, or a
    /// range zeroed); the length does not change. Carries no data.
    /// </summary>
    ZeroRange = 10,
}
