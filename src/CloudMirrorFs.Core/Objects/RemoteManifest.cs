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

    public Dictionary<string, RemoteNode> Nodes { get; set; } = new(StringComparer.Ordinal);

    public RemoteManifest Clone() => new()
    {
        Commit = Commit,
        QueueSeq = QueueSeq,
        Nodes = Nodes.ToDictionary(kv => kv.Key, kv => kv.Value.Clone(), StringComparer.Ordinal),
    };

    /// <summary>Applies one journal operation. Operations are idempotent, as facet operations are.</summary>
    public void Apply(JournalOp op, List<string>? freed)
    {
        switch (op.Op)
        {
            case "mkdir":
                if (!Nodes.ContainsKey(op.Path))
                {
                    Nodes[op.Path] = new RemoteNode { Kind = NodeKind.Directory, Mode = op.Mode ?? 0b111_101_101, MTime = op.Time ?? DateTime.UtcNow };
                }
                break;
            case "create":
                if (!Nodes.TryGetValue(op.Path, out RemoteNode? existing) || existing.Kind != NodeKind.File)
                {
                    Nodes[op.Path] = new RemoteNode { Kind = NodeKind.File, Id = op.Id, Mode = op.Mode ?? 0b110_100_100, MTime = op.Time ?? DateTime.UtcNow };
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
                    Nodes[op.Path] = link;
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
                if (Nodes.Remove(op.Path, out RemoteNode? gone))
                {
                    Free(gone, freed);
                }
                break;
            case "setlen":
                if (Nodes.TryGetValue(op.Path, out RemoteNode? f) && f.Kind == NodeKind.File)
                {
                    f.Length = op.Length;
                    f.MTime = op.Time ?? f.MTime;
                    // Blocks wholly past the end go; the block holding the new end keeps its object (reads clip at Length).
                    foreach (long b in f.Blocks.Keys.Where(b => b * op.BlockSize >= op.Length).ToList())
                    {
                        freed?.Add(f.Blocks[b]);
                        f.Blocks.Remove(b);
                    }
                }
                break;
            case "attrs":
                if (Nodes.TryGetValue(op.Path, out RemoteNode? a))
                {
                    a.Mode = op.Mode ?? a.Mode;
                    a.MTime = op.Time ?? a.MTime;
                }
                break;
            case "block":
                if (Nodes.TryGetValue(op.Path, out RemoteNode? file) && file.Kind == NodeKind.File)
                {
                    if (file.Blocks.TryGetValue(op.Block, out string? old) && old != op.Key)
                    {
                        freed?.Add(old);
                    }
                    file.Blocks[op.Block] = op.Key!;
                    file.Length = Math.Max(file.Length, op.Length);
                    file.MTime = op.Time ?? file.MTime;
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
        if (Nodes.Remove(to, out RemoteNode? replaced))
        {
            Free(replaced, freed);
        }
        Nodes.Remove(from);
        Nodes[to] = node;
        if (node.Kind == NodeKind.Directory)
        {
            string prefix = from + "/";
            foreach (string child in Nodes.Keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList())
            {
                Nodes.Remove(child, out RemoteNode? c);
                Nodes[to + "/" + child[prefix.Length..]] = c!;
            }
        }
    }

    private static void Free(RemoteNode node, List<string>? freed) => freed?.AddRange(node.Blocks.Values);
}

/// <summary>One file, directory or symbolic link in a <see cref="RemoteManifest"/>.</summary>
internal sealed class RemoteNode
{
    public NodeKind Kind { get; set; }

    public long Id { get; set; }

    public int Mode { get; set; }

    public DateTime MTime { get; set; }

    public long Length { get; set; }

    /// <summary>Block index → object key.</summary>
    public Dictionary<long, string> Blocks { get; set; } = [];

    /// <summary>A symbolic link's target, verbatim (format 2; absent for files and directories).</summary>
    [JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? Target { get; set; }

    public RemoteNode Clone() => new() { Kind = Kind, Id = Id, Mode = Mode, MTime = MTime, Length = Length, Blocks = new Dictionary<long, string>(Blocks), Target = Target };
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
}

/// <summary>A commit object: the journal since the previous commit.</summary>
internal sealed record CommitRecord(long Commit, long Previous, long QueueSeq, DateTime CreatedUtc, List<JournalOp> Ops, List<string> Freed);

/// <summary>A checkpoint object: the whole manifest as of a commit.</summary>
internal sealed record CheckpointRecord(long Commit, long QueueSeq, DateTime CreatedUtc, Dictionary<string, RemoteNode> Nodes);

/// <summary>
/// The volume descriptor: what a new machine needs to read the remote with the config alone. Written once, and
/// rewritten only to raise <see cref="Format"/> when the remote first holds something an older reader would drop.
/// </summary>
internal sealed record VolumeDescriptor(int Format, int BlockSize, string VolumeName, DateTime CreatedUtc, string? Encryption)
{
    /// <summary>Files and directories only: what every remote starts as.</summary>
    public const int BaseFormat = 1;

    /// <summary>Adds symbolic links (the journal op <c>symlink</c>, a node's <c>Target</c>); set before the first commit holding one.</summary>
    public const int SymlinkFormat = 2;

    /// <summary>The newest format this build reads.</summary>
    public const int NewestFormat = SymlinkFormat;
}
