using System.Text.Json.Serialization;
using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Objects;

/// <summary>
/// The tree an object-store facet holds, as of one commit: every path with its kind, id, mode, times, length and,
/// for files, the object holding each block; for symbolic links, the target. Paths are volume-relative ("" is the root, never listed).
/// </summary>
internal sealed class RemoteManifest
{
    /// <summary>The commit this manifest is the image of (0: empty volume).</summary>
    public long Commit { get; set; }

    /// <summary>The queue sequence number the commit covers.</summary>
    public long QueueSeq { get; set; }

    /// <summary>Every path but the root's. Changed only through <see cref="Apply"/>, which keeps the index below in step.</summary>
    public Dictionary<string, RemoteNode> Nodes { get; init; } = new(StringComparer.Ordinal);

    // Parent path -> the names of its children, and each node's path (RemoteNode.Path): built at the first question that
    // needs them, then kept up by every change. Listing a folder, an rmdir's emptiness check, a directory rename and a
    // commit's node-to-path lookups then cost what they touch, not a walk of every path the remote holds.
    private Dictionary<string, HashSet<string>>? _children;

    /// <summary>
    /// The root folder's mode and modification time once a change set them (a chmod or utimens of the drive's root);
    /// null until then, when the root is 0755 with the volume's creation time. Kept apart from <see cref="Nodes"/>,
    /// which never lists the root.
    /// </summary>
    public RemoteNode? Root { get; set; }

    /// <summary>
    /// Who wrote the commit this is the image of: the id of the queue that fed that cmfs (its <c>queue.id</c>). Null for
    /// an empty store and for commits older builds wrote.
    /// </summary>
    public string? Writer { get; set; }

    public RemoteManifest Clone() => new()
    {
        Commit = Commit,
        QueueSeq = QueueSeq,
        Writer = Writer,
        Nodes = Nodes.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal),
        Root = Root?.Clone(),
    };

    /// <summary>The children of the folder at <paramref name="path"/> ("" for the root), by name.</summary>
    public IEnumerable<(string Name, RemoteNode Node)> ChildrenOf(string path)
    {
        EnsureIndex();
        if (!_children!.TryGetValue(path, out HashSet<string>? names))
        {
            yield break;
        }
        string prefix = path.Length == 0 ? "" : path + "/";
        foreach (string name in names)
        {
            yield return (name, Nodes[prefix + name]);
        }
    }

    /// <summary>True when something lies under <paramref name="path"/>.</summary>
    public bool HasChildren(string path)
    {
        EnsureIndex();
        return _children!.TryGetValue(path, out HashSet<string>? names) && names.Count > 0;
    }

    /// <summary>The path of <paramref name="node"/> in this manifest; null when it is not in it (deleted or replaced).</summary>
    public string? PathOf(RemoteNode node)
    {
        EnsureIndex();
        return node.Path is { } path && Nodes.TryGetValue(path, out RemoteNode? there) && ReferenceEquals(there, node) ? path : null;
    }

    private void EnsureIndex()
    {
        if (_children is not null)
        {
            return;
        }
        _children = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (path, node) in Nodes)
        {
            node.Path = path;
            Link(path);
        }
    }

    private void Link(string path)
    {
        string parent = VolumePath.Parent(path);
        if (!_children!.TryGetValue(parent, out HashSet<string>? names))
        {
            _children[parent] = names = new HashSet<string>(StringComparer.Ordinal);
        }
        names.Add(VolumePath.Name(path));
    }

    private void Put(string path, RemoteNode node)
    {
        Nodes[path] = node;
        if (_children is not null)
        {
            node.Path = path;
            Link(path);
        }
    }

    private bool Take(string path, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out RemoteNode? node)
    {
        if (!Nodes.Remove(path, out node))
        {
            return false;
        }
        if (_children is not null)
        {
            string parent = VolumePath.Parent(path);
            if (_children.TryGetValue(parent, out HashSet<string>? names) && names.Remove(VolumePath.Name(path)) && names.Count == 0)
            {
                _children.Remove(parent);
            }
            _children.Remove(path); // a folder's own (empty) set of names
        }
        return true;
    }

    /// <summary>Applies one journal operation. Operations are idempotent, as facet operations are.</summary>
    public void Apply(JournalOp op, List<string>? freed)
    {
        switch (op.Op)
        {
            case "mkdir":
                if (!Nodes.ContainsKey(op.Path))
                {
                    Put(op.Path, new RemoteNode { Kind = NodeKind.Directory, Mode = op.Mode ?? 0b111_101_101, MTime = op.Time ?? DateTime.UtcNow });
                }
                break;
            case "create":
                if (!Nodes.TryGetValue(op.Path, out RemoteNode? existing) || existing.Kind != NodeKind.File)
                {
                    Put(op.Path, new RemoteNode { Kind = NodeKind.File, Id = op.Id, Mode = op.Mode ?? 0b110_100_100, MTime = op.Time ?? DateTime.UtcNow });
                }
                break;
            case "symlink":
                // Format 2. A link already there takes the new target (a replay ends in the state of the last change).
                if (!Nodes.TryGetValue(op.Path, out RemoteNode? link) || link.Kind != NodeKind.Symlink)
                {
                    if (link is not null)
                    {
                        Free(link, freed);
                    }
                    link = new RemoteNode { Kind = NodeKind.Symlink, Id = op.Id, Mode = 0b111_111_111 };
                    Put(op.Path, link);
                }
                link.Id = op.Id != 0 ? op.Id : link.Id;
                link.Target = op.Target ?? "";
                link.MTime = op.Time ?? DateTime.UtcNow;
                break;
            case "rename":
                Rename(op.Path, op.To!, freed);
                break;
            case "unlink":
            case "rmdir":
                if (Take(op.Path, out RemoteNode? gone))
                {
                    Free(gone, freed);
                }
                break;
            case "setlen":
                if (Nodes.TryGetValue(op.Path, out RemoteNode? f) && f.Kind == NodeKind.File)
                {
                    f.Length = op.Length;
                    f.MTime = op.Time ?? f.MTime;
                    // Blocks wholly past the end go; the block holding the new end keeps its objects (reads clip at
                    // Length, and the writer lays a zero extent over the cut part before the file can grow again).
                    foreach (long b in f.DataBlocks().Where(b => b * op.BlockSize >= op.Length).ToList())
                    {
                        f.DropBlock(b, freed);
                    }
                }
                break;
            case "attrs" when op.Path.Length == 0:
                Root ??= new RemoteNode { Kind = NodeKind.Directory, Mode = 0b111_101_101, MTime = op.Time ?? DateTime.UtcNow };
                Root.Mode = op.Mode ?? Root.Mode;
                Root.MTime = op.Time ?? Root.MTime;
                break;
            case "attrs":
                if (Nodes.TryGetValue(op.Path, out RemoteNode? a))
                {
                    a.Mode = op.Mode ?? a.Mode;
                    a.MTime = op.Time ?? a.MTime;
                }
                break;
            case "block":
            case "extents":
                if (Nodes.TryGetValue(op.Path, out RemoteNode? file) && file.Kind == NodeKind.File)
                {
                    file.ApplyData(op, freed);
                }
                break;
        }
    }

    private void Rename(string from, string to, List<string>? freed)
    {
        if (!Nodes.TryGetValue(from, out RemoteNode? node))
        {
            return; // a replay: already moved
        }
        EnsureIndex();
        if (Take(to, out RemoteNode? replaced))
        {
            Free(replaced, freed); // a file, or an empty folder: rename(2) refuses a folder with anything in it
        }
        _children!.Remove(from, out HashSet<string>? names); // the folder's own names move with it
        Take(from, out _);
        Put(to, node);
        // Its subtree, through the index: each folder's set of names moves to the new path as it is.
        var moving = new Stack<(string From, string To, HashSet<string> Names)>();
        if (names is not null)
        {
            moving.Push((from, to, names));
        }
        while (moving.TryPop(out var folder))
        {
            _children[folder.To] = folder.Names;
            foreach (string name in folder.Names)
            {
                string oldPath = folder.From + "/" + name, newPath = folder.To + "/" + name;
                Nodes.Remove(oldPath, out RemoteNode? child);
                Nodes[newPath] = child!;
                child!.Path = newPath;
                if (_children.Remove(oldPath, out HashSet<string>? below))
                {
                    moving.Push((oldPath, newPath, below));
                }
            }
        }
    }

    private static void Free(RemoteNode node, List<string>? freed) => freed?.AddRange(node.DataKeys());
}

/// <summary>One file, directory or symbolic link in a <see cref="RemoteManifest"/>.</summary>
internal sealed class RemoteNode
{
    public NodeKind Kind { get; set; }

    public long Id { get; set; }

    public int Mode { get; set; }

    public DateTime MTime { get; set; }

    public long Length { get; set; }

    /// <summary>Block index → the object holding the whole block (its base).</summary>
    public Dictionary<long, string> Blocks { get; set; } = [];

    /// <summary>
    /// Block index → extents laid over the block's base, oldest first (format 3; absent when no block has any). A
    /// byte no extent covers is the base's, or zero when there is no base or the base is shorter.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public Dictionary<long, List<Extent>>? Extents { get; set; }

    /// <summary>A symbolic link's target, verbatim (format 2; absent for files and directories).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Target { get; set; }

    /// <summary>Its path in the manifest that indexed it (<see cref="RemoteManifest.PathOf"/>); not stored.</summary>
    [JsonIgnore]
    public string? Path { get; set; }

    public RemoteNode Clone() => new()
    {
        Kind = Kind,
        Id = Id,
        Mode = Mode,
        MTime = MTime,
        Length = Length,
        Blocks = new Dictionary<long, string>(Blocks),
        Extents = Extents?.ToDictionary(kv => kv.Key, kv => new List<Extent>(kv.Value)),
        Target = Target,
    };

    /// <summary>Every block that holds data: a base, extents, or both.</summary>
    public IEnumerable<long> DataBlocks() => Extents is null ? Blocks.Keys : Blocks.Keys.Union(Extents.Keys);

    /// <summary>Every object the node's data lives in.</summary>
    public IEnumerable<string> DataKeys() => Extents is null
        ? Blocks.Values
        : Blocks.Values.Concat(Extent.KeysOf(Extents.Values.SelectMany(l => l)));

    /// <summary>Where a block's committed bytes are (null: the block reads as zeros).</summary>
    public BlockSource? SourceOf(long block)
    {
        Blocks.TryGetValue(block, out string? key);
        List<Extent>? extents = null;
        Extents?.TryGetValue(block, out extents);
        return key is null && extents is null ? null : new BlockSource(key, extents is null ? [] : [.. extents]);
    }

    /// <summary>Applies a <c>block</c> (a whole block) or <c>extents</c> op; what it supersedes goes to <paramref name="freed"/>.</summary>
    public void ApplyData(JournalOp op, List<string>? freed)
    {
        if (op.Op == "block")
        {
            if (Blocks.TryGetValue(op.Block, out string? old) && old != op.Key)
            {
                freed?.Add(old);
            }
            Blocks[op.Block] = op.Key!;
            if (Extents is not null && Extents.Remove(op.Block, out List<Extent>? over))
            {
                freed?.AddRange(Extent.KeysOf(over).Where(k => k != op.Key));
                Extents = Extents.Count == 0 ? null : Extents;
            }
        }
        else
        {
            AddExtents(op.Block, op.Extents ?? [], op.BlockSize, freed);
        }
        Length = Math.Max(Length, op.Length);
        MTime = op.Time ?? MTime;
    }

    /// <summary>Forgets a block's base and extents (a truncate past it).</summary>
    public void DropBlock(long block, List<string>? freed)
    {
        if (Blocks.Remove(block, out string? key))
        {
            freed?.Add(key);
        }
        if (Extents is not null && Extents.Remove(block, out List<Extent>? over))
        {
            freed?.AddRange(Extent.KeysOf(over));
            Extents = Extents.Count == 0 ? null : Extents;
        }
    }

    /// <summary>
    /// Lays extents over a block, newest last, then drops every older extent the newer ones cover whole, and the base
    /// once the extents cover the whole block. An object is freed when no extent of the block still names it.
    /// </summary>
    private void AddExtents(long block, IReadOnlyList<Extent> added, int blockSize, List<string>? freed)
    {
        Extents ??= [];
        List<Extent> list = Extents.TryGetValue(block, out List<Extent>? l) ? l : (Extents[block] = []);
        list.AddRange(added);
        var covered = new List<(int Start, int End)>();
        var keep = new List<Extent>(list.Count);
        for (int i = list.Count - 1; i >= 0; i--)
        {
            Extent e = list[i];
            if (!Intervals.Covers(covered, e.At, e.At + e.Length))
            {
                keep.Add(e);
                Intervals.Add(covered, e.At, e.At + e.Length);
            }
        }
        keep.Reverse();
        if (freed is not null)
        {
            var live = Extent.KeysOf(keep).ToHashSet(StringComparer.Ordinal);
            freed.AddRange(Extent.KeysOf(list).Where(k => !live.Contains(k)));
        }
        Extents[block] = keep;
        if (Intervals.Covers(covered, 0, blockSize) && Blocks.Remove(block, out string? baseKey))
        {
            freed?.Add(baseKey);
        }
    }
}

/// <summary>
/// One range of a block laid over its base: <see cref="Length"/> bytes at <see cref="At"/> in the block, read from
/// object <see cref="Key"/> at <see cref="Pos"/>; no key means zeros (the part of a block a truncate cut off).
/// </summary>
internal sealed record Extent(
    [property: JsonPropertyName("k"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Key,
    [property: JsonPropertyName("at")] int At,
    [property: JsonPropertyName("len")] int Length,
    [property: JsonPropertyName("pos")] int Pos)
{
    /// <summary>The distinct objects <paramref name="extents"/> read from (zero extents name none).</summary>
    public static IEnumerable<string> KeysOf(IEnumerable<Extent> extents) => extents.Select(e => e.Key).OfType<string>().Distinct(StringComparer.Ordinal);

    /// <summary>How many distinct objects <paramref name="extents"/> read from.</summary>
    public static int ObjectCount(IEnumerable<Extent> extents) => KeysOf(extents).Count();
}

/// <summary>A block's committed bytes: its base object (if any) and the extents over it, oldest first.</summary>
internal sealed record BlockSource(string? Base, Extent[] Extents)
{
    /// <summary>Distinct objects the block's extents are in.</summary>
    public int ExtentObjects => Extent.ObjectCount(Extents);

    /// <summary>True when both name the same objects in the same order (keys are never reused, so the same bytes).</summary>
    public bool SameAs(BlockSource other) => Base == other.Base && Extents.SequenceEqual(other.Extents);

    /// <summary>Every object this source reads.</summary>
    public IEnumerable<string> Keys => (Base is null ? [] : new[] { Base }).Concat(Extent.KeysOf(Extents));

    /// <summary>
    /// Assembles the block's first <c>into.Length</c> bytes: the base, then each extent in order. <paramref name="fetch"/>
    /// returns at least the first <c>length</c> bytes of an object (null: missing, read as zeros).
    /// </summary>
    public async ValueTask AssembleAsync(Memory<byte> into, Func<string, int, CancellationToken, ValueTask<byte[]?>> fetch, CancellationToken cancellationToken)
    {
        var needs = new Dictionary<string, int>(StringComparer.Ordinal);
        if (Base is not null)
        {
            needs[Base] = into.Length;
        }
        foreach (Extent e in Extents)
        {
            if (e.Key is not null && e.At < into.Length)
            {
                needs[e.Key] = Math.Max(needs.GetValueOrDefault(e.Key), e.Pos + Math.Min(e.Length, into.Length - e.At));
            }
        }
        var got = new Dictionary<string, byte[]?>(StringComparer.Ordinal);
        foreach (var (key, task) in needs.Select(kv => (kv.Key, fetch(kv.Key, kv.Value, cancellationToken).AsTask())).ToList())
        {
            got[key] = await task.ConfigureAwait(false);
        }
        // Every byte of into is written (the caller may hand it uncleared): the base, zeros past a short or missing one.
        int based = 0;
        if (Base is not null && got[Base] is { } b)
        {
            based = Math.Min(b.Length, into.Length);
            b.AsSpan(0, based).CopyTo(into.Span);
        }
        into.Span[based..].Clear();
        foreach (Extent e in Extents)
        {
            if (e.At >= into.Length)
            {
                continue;
            }
            int n = Math.Min(e.Length, into.Length - e.At);
            Span<byte> target = into.Span.Slice(e.At, n);
            byte[]? data = e.Key is null ? null : got[e.Key];
            int available = data is null ? 0 : Math.Clamp(data.Length - e.Pos, 0, n);
            if (available > 0)
            {
                data.AsSpan(e.Pos, available).CopyTo(target);
            }
            target[available..].Clear();
        }
    }
}

/// <summary>Sorted, merged half-open intervals in a list (few per block).</summary>
internal static class Intervals
{
    /// <summary>True when [<paramref name="start"/>, <paramref name="end"/>) lies within the intervals.</summary>
    public static bool Covers(List<(int Start, int End)> set, int start, int end)
    {
        if (start >= end)
        {
            return true;
        }
        foreach (var (s, e) in set)
        {
            if (s <= start && end <= e)
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>Adds [<paramref name="start"/>, <paramref name="end"/>), merging what touches it.</summary>
    public static void Add(List<(int Start, int End)> set, int start, int end)
    {
        if (start >= end)
        {
            return;
        }
        int i = 0;
        while (i < set.Count && set[i].End < start)
        {
            i++;
        }
        while (i < set.Count && set[i].Start <= end)
        {
            start = Math.Min(start, set[i].Start);
            end = Math.Max(end, set[i].End);
            set.RemoveAt(i);
        }
        set.Insert(i, (start, end));
    }
}

/// <summary>One change in a commit's journal.</summary>
internal sealed record JournalOp
{
    [JsonPropertyName("op")] public required string Op { get; init; }
    [JsonPropertyName("path")] public string Path { get; init; } = "";
    [JsonPropertyName("to")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? To { get; init; }
    [JsonPropertyName("id")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Id { get; init; }
    [JsonPropertyName("mode")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public int? Mode { get; init; }
    [JsonPropertyName("time")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public DateTime? Time { get; init; }
    [JsonPropertyName("length")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Length { get; init; }
    [JsonPropertyName("block")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public long Block { get; init; }
    [JsonPropertyName("blockSize")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public int BlockSize { get; init; }
    [JsonPropertyName("key")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Key { get; init; }
    [JsonPropertyName("target")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Target { get; init; }
    [JsonPropertyName("extents")][JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<Extent>? Extents { get; init; }
}

/// <summary>A commit object: the journal since the previous commit.</summary>
internal sealed record CommitRecord(long Commit, long Previous, long QueueSeq, DateTime CreatedUtc, List<JournalOp> Ops, List<string> Freed)
{
    /// <summary>The id of the queue that fed the writer (<see cref="RemoteManifest.Writer"/>); absent in commits older builds wrote.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Writer { get; init; }
}

/// <summary>A checkpoint object: the whole manifest as of a commit.</summary>
internal sealed record CheckpointRecord(long Commit, long QueueSeq, DateTime CreatedUtc, Dictionary<string, RemoteNode> Nodes)
{
    /// <summary>The root's attributes (<see cref="RemoteManifest.Root"/>); absent in checkpoints written before it existed.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public RemoteNode? Root { get; init; }

    /// <summary>The writer of the commit it covers (<see cref="RemoteManifest.Writer"/>); absent in older checkpoints.</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Writer { get; init; }

    /// <summary>
    /// Objects superseded by this image or an earlier one and not yet known to be deleted (held by <c>retention</c>,
    /// or collected by the checkpoint that writes this list): the journals that freed them are collected behind the
    /// checkpoint, so a writer that opens the remote later learns them here. Absent in older checkpoints.
    /// </summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public List<GarbageEntry>? Garbage { get; init; }
}

/// <summary>An object no image needs once <paramref name="FreedUtc"/> is older than <c>retention</c>.</summary>
internal sealed record GarbageEntry(string Key, DateTime FreedUtc);

/// <summary>
/// The volume descriptor: what a new machine needs to read the remote with the config alone. Written once at the
/// newest format; a remote an older cmfs created is rewritten only to raise <see cref="Format"/> when it first holds
/// something an older reader would drop.
/// </summary>
internal sealed record VolumeDescriptor(int Format, int BlockSize, string VolumeName, DateTime CreatedUtc, string? Encryption)
{
    /// <summary>Files and directories only: what the first cmfs created remotes at.</summary>
    public const int BaseFormat = 1;

    /// <summary>Adds symbolic links (the journal op <c>symlink</c>, a node's <c>Target</c>); set before the first commit holding one.</summary>
    public const int SymlinkFormat = 2;

    /// <summary>
    /// Adds partial-block extents (the journal op <c>extents</c>, a node's <c>Extents</c>); set before the first commit
    /// holding one.
    /// </summary>
    public const int ExtentFormat = 3;

    /// <summary>
    /// Every object carries a checksum (<see cref="CodecObjectStore"/> header version 2), which an older reader would
    /// refuse as a damaged header. Remotes are created at it; one an older cmfs created keeps writing unchecked
    /// (version 1) objects, so older readers keep reading it.
    /// </summary>
    public const int ChecksumFormat = 4;

    /// <summary>The newest format this build reads.</summary>
    public const int NewestFormat = ChecksumFormat;
}
