using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Mount.FileSystem;

/// <summary>The attributes of one node as a mount reports them (stat on Linux, FSP_FUSE_STAT on Windows).</summary>
public readonly record struct FsAttributes(
    long Inode,
    NodeKind Kind,
    long Size,
    UnixFileMode Permissions,
    int Links,
    uint Uid,
    uint Gid,
    DateTime LastAccessUtc,
    DateTime LastWriteUtc,
    DateTime ChangeUtc)
{
    /// <summary>The S_IFMT bits of this node's kind (the same values on Linux and in WinFsp's FUSE layer).</summary>
    public uint TypeBits => TypeBitsOf(Kind);

    /// <summary>The S_IFMT bits of a kind of node: what a directory entry without attributes carries.</summary>
    public static uint TypeBitsOf(NodeKind kind) => kind switch
    {
        NodeKind.Directory => 0x4000, // S_IFDIR
        NodeKind.Symlink => 0xA000, // S_IFLNK
        _ => 0x8000, // S_IFREG
    };

    /// <summary>st_mode: kind and permission bits.</summary>
    public uint Mode => TypeBits | ((uint)Permissions & 0xFFF);

    /// <summary>The space the node takes on the local facet's disk, when the facet can tell (null: counted from the size).</summary>
    public long? AllocatedBytes { get; init; }

    /// <summary>
    /// 512-byte blocks, as st_blocks counts them: the space the local facet's file takes, so that du(1) sees a sparse
    /// file's holes as free, as on the disk below; the size rounded up where that is not known.
    /// </summary>
    public long Blocks512 => ((AllocatedBytes ?? Size) + 511) / 512;
}
