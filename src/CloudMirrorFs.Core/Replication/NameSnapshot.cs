using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Replication;

/// <summary>
/// The volume's tree of names at the queue position where a resync reattached a remote's cursor: what the remote must
/// hold for the queue's later records to apply in order. The resync reconciles the remote with this tree, not with the
/// local facet's tree of the moment (which already has the renames, creates and deletes queued since: replayed on top
/// of it, a rename moved a newer file over an older one), and copies each dirty block to where this tree puts its
/// file, not to where the file is by now.
/// </summary>
internal sealed class NameSnapshot
{
    private readonly Dictionary<long, string> _paths = [];
    private readonly Dictionary<string, List<(string Name, NodeKind Kind, long Id)>> _children = new(StringComparer.Ordinal);

    /// <summary>A snapshot of <paramref name="names"/> (every node but the root, parents before children).</summary>
    public NameSnapshot(IEnumerable<(long Id, string Path, NodeKind Kind)> names)
    {
        _children[""] = [];
        foreach (var (id, path, kind) in names)
        {
            _paths[id] = path;
            _children[VolumePath.Parent(path)].Add((VolumePath.Name(path), kind, id));
            if (kind == NodeKind.Directory)
            {
                _children[path] = [];
            }
        }
    }

    /// <summary>Where the node was at the snapshot; null for a node made since.</summary>
    public string? PathOf(long id) => _paths.GetValueOrDefault(id);

    /// <summary>The children of directory <paramref name="path"/> at the snapshot.</summary>
    public IReadOnlyList<(string Name, NodeKind Kind, long Id)> ChildrenOf(string path)
        => _children.TryGetValue(path, out var children) ? children : [];
}
