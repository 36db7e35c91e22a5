using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Volume;

/// <summary>One file or directory in the volume's table of names: a stable id, a name and a parent.</summary>
internal sealed class FileNode
{
    private SemaphoreSlim? _gate;

    /// <summary>A node; a directory compares its children's names by <paramref name="names"/>, or as its parent does (ordinal at the root).</summary>
    public FileNode(long id, string name, NodeKind kind, FileNode? parent, IEqualityComparer<string>? names = null)
    {
        Id = id;
        Name = name;
        Kind = kind;
        Parent = parent;
        if (kind == NodeKind.Directory)
        {
            Children = new Dictionary<string, FileNode>(names ?? parent?.Children?.Comparer ?? StringComparer.Ordinal);
        }
    }

    public long Id { get; }

    public string Name { get; set; }

    public NodeKind Kind { get; }

    public FileNode? Parent { get; set; }

    /// <summary>Children by name (directories only).</summary>
    public Dictionary<string, FileNode>? Children { get; }

    /// <summary>The queue sequence number of the last change to this node (0 before any): verify skips what a remote has not had yet.</summary>
    public long LastSeq { get; set; }

    /// <summary>Set once the node is removed from the table.</summary>
    public bool Deleted { get; set; }

    /// <summary>The cached path and the rename generation it was computed at.</summary>
    public string? CachedPath { get; set; }

    public long CachedGeneration { get; set; } = -1;

    /// <summary>Serialises writes (and truncates) of this file so every facet and the queue see them in the same order.</summary>
    public SemaphoreSlim Gate
    {
        get
        {
            if (_gate is null)
            {
                Interlocked.CompareExchange(ref _gate, new SemaphoreSlim(1, 1), null);
            }
            return _gate;
        }
    }
}
