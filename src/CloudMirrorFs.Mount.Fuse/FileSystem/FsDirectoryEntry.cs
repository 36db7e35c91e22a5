using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Mount.FileSystem;

/// <summary>One entry of a directory listing: its name (and as NUL-terminated UTF-8, ready for the kernel), inode and kind.</summary>
public sealed record FsDirectoryEntry(string Name, byte[] NameUtf8Z, long Inode, NodeKind Kind)
{
    /// <summary>Makes an entry, encoding the name once.</summary>
    public static FsDirectoryEntry Create(string name, long inode, NodeKind kind)
    {
        byte[] z = new byte[System.Text.Encoding.UTF8.GetByteCount(name) + 1];
        System.Text.Encoding.UTF8.GetBytes(name, z);
        return new FsDirectoryEntry(name, z, inode, kind);
    }
}
