namespace CloudMirrorFs.Facets;

/// <summary>What a node in the tree is.</summary>
public enum NodeKind
{
    /// <summary>A regular file.</summary>
    File,
    /// <summary>A directory.</summary>
    Directory,
    /// <summary>A symbolic link.</summary>
    Symlink,
}
