namespace CloudMirrorFs.Storage;

/// <summary>
/// What is at a path, telling "nothing is there" from "the disk did not answer". <see cref="File.Exists"/> and
/// <see cref="Directory.Exists"/> answer false for both, so a disk that stops answering would look empty: a facet
/// folder to create again, a remote that lost its commits.
/// </summary>
public static class PathProbe
{
    /// <summary>
    /// The attributes of the node at <paramref name="path"/> (a link to a directory counts as a directory), or null when
    /// nothing is there; any other failure throws the device's own error.
    /// </summary>
    public static FileAttributes? Attributes(string path)
    {
        FileAttributes attributes = new FileInfo(path).Attributes; // -1 for "not found" only; other errors throw
        return (int)attributes == -1 ? null : attributes;
    }

    /// <summary>True when a directory (or a link to one) is at <paramref name="path"/>; false when nothing or something else is.</summary>
    public static bool IsDirectory(string path) => Attributes(path) is { } a && (a & FileAttributes.Directory) != 0;
}
