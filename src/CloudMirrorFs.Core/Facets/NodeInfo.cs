namespace CloudMirrorFs.Facets;

/// <summary>The attributes of one node, as a facet reports them.</summary>
/// <param name="Name">The last path component ("" for the root).</param>
/// <param name="Kind">File, directory or symlink.</param>
/// <param name="Length">The length in bytes (files), the UTF-8 byte length of the target (symlinks), 0 otherwise.</param>
/// <param name="Mode">The permission bits (0777 for a symlink, whose own bits mean nothing).</param>
/// <param name="LastWriteUtc">Modification time.</param>
/// <param name="LastAccessUtc">Access time.</param>
/// <param name="ChangeUtc">Status change time (creation time where the platform has no ctime).</param>
public readonly record struct NodeInfo(
    string Name,
    NodeKind Kind,
    long Length,
    UnixFileMode Mode,
    DateTime LastWriteUtc,
    DateTime LastAccessUtc,
    DateTime ChangeUtc)
{
    /// <summary>The volume-wide file id; 0 when the facet does not know it (the volume fills it in).</summary>
    public long FileId { get; init; }

    /// <summary>
    /// The space the node takes on the facet's disk, in bytes (less than <see cref="Length"/> when the file is sparse);
    /// null when the facet cannot tell (an object store, or a platform without statx).
    /// </summary>
    public long? AllocatedBytes { get; init; }
}
