namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet kept in a folder, which knows the file system the folder was on. The volume records it and hands it back
/// before the next open: a folder whose disk is not mounted (now on the parent's file system) is refused as
/// unavailable, not taken for an emptied one and rebuilt on the system disk.
/// </summary>
public interface IFolderHome
{
    /// <summary>
    /// The mount point of the file system the folder was on at its last good open (set before an open to what was
    /// recorded; the open checks it, then sets the one it found); null when unknown.
    /// </summary>
    string? FileSystem { get; set; }
}
