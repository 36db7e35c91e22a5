using System.Buffers.Binary;
using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Volume;

/// <summary>
/// The volume's table of names: path ⇄ stable file id, kept under <c>stateDir</c> (never inside a facet's tree).
/// Persisted as a snapshot (<c>files.snapshot</c>) plus a journal of changes (<c>files.journal</c>) appended before
/// each namespace change is acknowledged; at open the table is reconciled with the reference local facet, so a crash
/// between a facet change and its journal record costs at most a new id for that file.
/// Every record carries the node's kind as a byte (<see cref="NodeKind"/>: 0 file, 1 directory, 2 symbolic link), so a
/// link keeps its id and kind across restarts; the reconcile takes kinds from the reference facet's listing, which
/// reports a link as a link (never what it points to), so a link found there becomes a symbolic-link node.
/// </summary>
internal sealed class FileTable : IDisposable
{
    public const long RootId = 1;
    private const byte OpAdd = 1, OpRemove = 2, OpMove = 3, OpNextId = 4;

    private readonly Lock _lock = new();
    private readonly Dictionary<long, FileNode> _byId = [];
    private readonly string _snapshotPath;
    private readonly string _journalPath;
    private FileStream? _journal;
    private long _nextId = RootId + 1;
    private long _generation;
    private long _appended;
    private long _flushed;
    private byte[] _buffer = new byte[1024];

    private FileTable(string stateDir, bool caseInsensitive)
    {
        _snapshotPath = Path.Combine(stateDir, "files.snapshot");
        _journalPath = Path.Combine(stateDir, "files.journal");
        Root = new FileNode(RootId, "", NodeKind.Directory, null, caseInsensitive ? StringComparer.OrdinalIgnoreCase : StringComparer.Ordinal);
        _byId[RootId] = Root;
    }

    public FileNode Root { get; }

    public int Count
    {
        get
        {
            lock (_lock)
            {
                return _byId.Count;
            }
        }
    }

    /// <summary>
    /// Set by the open when the snapshot or the journal held a damaged record (not a torn last journal
    /// record, which a crash leaves): names which file and where. The reconcile rebuilt what was lost from the
    /// reference facet's tree, and new ids start past any the damaged part could have handed out.
    /// </summary>
    public string? Damage { get; private set; }

    /// <summary>What the reconcile at open found in the reference facet's tree that the table did not say.</summary>
    /// <param name="Added">Names the table did not know (a file's length with it).</param>
    /// <param name="Removed">Names the table knew that the tree no longer holds.</param>
    /// <param name="Changed">Files known to both whose time says they changed at or after the time given to the open.</param>
    public sealed record ReconcileReport(IReadOnlyList<(long Id, string Path, NodeKind Kind, long Length)> Added, int Removed,
        IReadOnlyList<(long Id, string Path, long Length)> Changed);

    /// <summary>Set by the open when it reconciled with a reference facet.</summary>
    public ReconcileReport? Reconciled { get; private set; }

    /// <summary>
    /// Loads the table and reconciles it with <paramref name="reference"/> (the tree as a local facet holds it);
    /// files modified or created at or after <paramref name="changedSince"/> are reported as changed. With
    /// <paramref name="caseInsensitive"/>, names that differ only in case are one name (<see cref="Options.VolumeOptions.CaseInsensitiveNames"/>).
    /// With <paramref name="adopt"/> (a facet that records file ids, an object store, holding a newer tree than the
    /// saved table: the state folder was older than that remote) the table is replaced by that tree with its ids instead.
    /// </summary>
    public static async Task<FileTable> OpenAsync(string stateDir, IFacet? reference, DateTime? changedSince, bool caseInsensitive, CancellationToken cancellationToken,
        bool machineRestarted = false, IFacet? adopt = null)
    {
        var table = new FileTable(stateDir, caseInsensitive);
        string? snapshotDamage = table.Load(table._snapshotPath);
        table.Damage = table.Load(table._journalPath) is { } journalDamage ? snapshotDamage ?? journalDamage : snapshotDamage;
        if (adopt is not null)
        {
            await table.AdoptAsync(adopt, cancellationToken).ConfigureAwait(false);
            table.WriteSnapshot();
            return table;
        }
        // After a machine restart the journal may end cleanly where the OS cache lost its tail: as after damage, the
        // ids those records gave out must not be given again to other files.
        if (table.Damage is not null || machineRestarted)
        {
            // The ids the lost records gave out live on in dirty maps, queue records and remote images: a new file
            // must never get one of them. Clock ticks are past any counter this table could have reached.
            table._nextId = Math.Max(table._nextId, DateTime.UtcNow.Ticks);
        }
        if (reference is not null)
        {
            table.Reconciled = await table.ReconcileAsync(reference, changedSince, cancellationToken).ConfigureAwait(false);
        }
        table.WriteSnapshot();
        return table;
    }

    /// <summary>How many files and folders (root excluded) the persisted table knows, without reconciling it.</summary>
    public static int CountKnown(string stateDir)
    {
        // Read only: no journal is opened, and nothing is written (a Dispose would rewrite the snapshot from what was
        // read, which after damage is only part of it, and erase the damage before the real open could see it).
        var table = new FileTable(stateDir, caseInsensitive: false);
        table.Load(table._snapshotPath);
        table.Load(table._journalPath);
        return table._byId.Count - 1;
    }

    public FileNode? Get(long id)
    {
        lock (_lock)
        {
            return _byId.GetValueOrDefault(id);
        }
    }

    public FileNode? Lookup(string path)
    {
        lock (_lock)
        {
            return LookupLocked(path);
        }
    }

    /// <summary>
    /// <paramref name="path"/> spelt as the table holds it: each component the table knows in its stored case, the rest
    /// as given, and the last name as given when <paramref name="keepLastName"/> (a name being made, or a rename's new
    /// name). The same string, with nothing allocated, when names are case-sensitive: nothing else can match then.
    /// </summary>
    public string Canonical(string path, bool keepLastName = false)
    {
        if (ReferenceEquals(Root.Children!.Comparer, StringComparer.Ordinal) || path.Length == 0)
        {
            return path;
        }
        lock (_lock)
        {
            FileNode node = Root;
            int start = 0;
            while (start <= path.Length)
            {
                int end = path.IndexOf('/', start);
                string name = path[start..(end < 0 ? path.Length : end)];
                if ((keepLastName && end < 0) || node.Children is null || !node.Children.TryGetValue(name, out FileNode? child))
                {
                    return start == 0 ? path : PathOfLocked(node) + "/" + path[start..];
                }
                node = child;
                if (end < 0)
                {
                    return PathOfLocked(node);
                }
                start = end + 1;
            }
            return path;
        }
    }

    public string PathOf(FileNode node)
    {
        lock (_lock)
        {
            return PathOfLocked(node);
        }
    }

    /// <summary>A directory's children with their paths, as the table holds them now.</summary>
    public List<(FileNode Node, string Path)> ChildrenOf(FileNode dir)
    {
        lock (_lock)
        {
            return [.. dir.Children!.Values.Select(c => (c, PathOfLocked(c)))];
        }
    }

    public FileNode Add(FileNode parent, string name, NodeKind kind)
    {
        lock (_lock)
        {
            var node = new FileNode(_nextId++, name, kind, parent);
            parent.Children!.Add(name, node);
            _byId[node.Id] = node;
            Journal(OpAdd, node.Id, parent.Id, kind, name);
            return node;
        }
    }

    public void Remove(FileNode node)
    {
        lock (_lock)
        {
            RemoveLocked(node);
            Journal(OpRemove, node.Id, 0, node.Kind, "");
        }
    }

    /// <summary>Moves <paramref name="node"/> under <paramref name="newParent"/> as <paramref name="newName"/>, removing what that name held.</summary>
    public void Move(FileNode node, FileNode newParent, string newName)
    {
        lock (_lock)
        {
            if (newParent.Children!.TryGetValue(newName, out FileNode? replaced) && replaced != node)
            {
                RemoveLocked(replaced);
            }
            node.Parent!.Children!.Remove(node.Name);
            node.Name = newName;
            node.Parent = newParent;
            newParent.Children[newName] = node;
            _generation++;
            Journal(OpMove, node.Id, newParent.Id, node.Kind, newName);
        }
    }

    /// <summary>Every node but the root, with its id, path and kind, as the table holds them now (parents before children).</summary>
    public List<(long Id, string Path, NodeKind Kind)> Names()
    {
        lock (_lock)
        {
            var names = new List<(long, string, NodeKind)>(_byId.Count);
            var pending = new Stack<(FileNode Dir, string Path)>();
            pending.Push((Root, ""));
            while (pending.Count > 0)
            {
                var (dir, path) = pending.Pop();
                foreach (FileNode child in dir.Children!.Values)
                {
                    string childPath = path.Length == 0 ? child.Name : path + "/" + child.Name;
                    names.Add((child.Id, childPath, child.Kind));
                    if (child.Children is not null)
                    {
                        pending.Push((child, childPath));
                    }
                }
            }
            return names;
        }
    }

    /// <summary>The ids of every file (not directory) in the table.</summary>
    public List<FileNode> Files()
    {
        lock (_lock)
        {
            return [.. _byId.Values.Where(n => n.Kind == NodeKind.File)];
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            if (_journal is not null && _flushed < _appended)
            {
                // A barrier racing the close treats a closed journal as flushed: make that true before the
                // snapshot below replaces it.
                _journal.Flush(flushToDisk: true);
                _flushed = _appended;
            }
            _journal?.Dispose();
            _journal = null;
        }
        WriteSnapshot();
    }

    /// <summary>True once a journal append failed: the table is written whole at the next flush.</summary>
    private bool _journalFailed;

    /// <summary>True when a journal record was appended since the last completed <see cref="Flush"/>, or one could not be.</summary>
    public bool HasUnflushed
    {
        get
        {
            lock (_lock)
            {
                return _journalFailed || (_flushed < _appended && _journal is not null);
            }
        }
    }

    /// <summary>
    /// Flushes the journal to stable storage (the barrier). A journal with nothing appended since the last completed
    /// flush costs no fsync: what it holds is on stable storage already. The fsync runs outside the table's lock, so
    /// lookups and path resolution do not wait for the disk.
    /// </summary>
    public void Flush()
    {
        FileStream? journal;
        long target;
        lock (_lock)
        {
            if (_journalFailed)
            {
                WriteSnapshot(); // throws while the disk still refuses; the whole table, so nothing lost is needed
                _journalFailed = false;
                return;
            }
            target = _appended;
            if (_flushed >= target || _journal is null)
            {
                return;
            }
            journal = _journal;
        }
        try
        {
            journal.Flush(flushToDisk: true);
        }
        catch (ObjectDisposedException)
        {
            // Closed meanwhile: the snapshot written (and flushed) at close holds every record the journal did.
        }
        lock (_lock)
        {
            _flushed = Math.Max(_flushed, target);
        }
    }

    private FileNode? LookupLocked(string path)
    {
        FileNode node = Root;
        if (path.Length == 0)
        {
            return node;
        }
        foreach (Range r in path.AsSpan().Split('/'))
        {
            string name = path[r];
            if (node.Children is null || !node.Children.TryGetValue(name, out FileNode? child))
            {
                return null;
            }
            node = child;
        }
        return node;
    }

    private string PathOfLocked(FileNode node)
    {
        if (node.CachedGeneration == _generation && node.CachedPath is not null)
        {
            return node.CachedPath;
        }
        string path = node.Parent is null ? "" : node.Parent.Parent is null ? node.Name : PathOfLocked(node.Parent) + "/" + node.Name;
        node.CachedPath = path;
        node.CachedGeneration = _generation;
        return path;
    }

    private void RemoveLocked(FileNode node)
    {
        node.Parent?.Children!.Remove(node.Name);
        var stack = new Stack<FileNode>();
        stack.Push(node);
        while (stack.Count > 0)
        {
            FileNode n = stack.Pop();
            n.Deleted = true;
            _byId.Remove(n.Id);
            if (n.Children is not null)
            {
                foreach (FileNode c in n.Children.Values)
                {
                    stack.Push(c);
                }
            }
        }
    }

    /// <summary>
    /// Appends one change, made in memory already. A journal that cannot be written (the state folder's disk failed or
    /// filled) does not fail the change: the table stays right in memory, and the next <see cref="Flush"/> writes it
    /// whole as a snapshot, failing while it cannot. A crash meanwhile leaves the names to the open's reconcile with
    /// the local facet, as for any journal cut short.
    /// </summary>
    private void Journal(byte op, long id, long parentId, NodeKind kind, string name)
    {
        _appended++;
        if (_journalFailed)
        {
            return;
        }
        try
        {
            _journal ??= new FileStream(_journalPath, FileMode.Append, FileAccess.Write, FileShare.Read, bufferSize: 0);
            int len = Encode(op, id, parentId, kind, name);
            _journal.Write(_buffer, 0, len);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _journalFailed = true;
            try
            {
                _journal?.Dispose();
            }
            catch (IOException)
            {
                // the disk is failing: nothing more to write there
            }
            _journal = null;
        }
    }

    private int Encode(byte op, long id, long parentId, NodeKind kind, string name)
    {
        int nameLen = Encoding.UTF8.GetByteCount(name);
        int len = 1 + 8 + 8 + 1 + 2 + nameLen + 4;
        if (_buffer.Length < len)
        {
            _buffer = new byte[len * 2];
        }
        Span<byte> b = _buffer.AsSpan(0, len);
        b[0] = op;
        BinaryPrimitives.WriteInt64LittleEndian(b[1..], id);
        BinaryPrimitives.WriteInt64LittleEndian(b[9..], parentId);
        b[17] = (byte)kind;
        BinaryPrimitives.WriteUInt16LittleEndian(b[18..], (ushort)nameLen);
        Encoding.UTF8.GetBytes(name, b[20..]);
        BinaryPrimitives.WriteUInt32LittleEndian(b[(len - 4)..], Crc32C.Compute(b[..(len - 4)]));
        return len;
    }

    /// <summary>
    /// Replays a snapshot or journal; stops at the first damaged record (the reconcile that follows repairs the table)
    /// and says where, unless it is the journal's last record cut short by a crash (never acknowledged).
    /// </summary>
    private string? Load(string path)
    {
        if (PathProbe.Attributes(path) is null)
        {
            return null;
        }
        byte[] data = File.ReadAllBytes(path);
        int p = 0;
        while (p + 24 <= data.Length)
        {
            int nameLen = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(p + 18));
            int len = 24 + nameLen;
            if (p + len > data.Length)
            {
                return path == _journalPath ? null : $"{path}: record at offset {p} is cut short";
            }
            if (BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(p + len - 4)) != Crc32C.Compute(data.AsSpan(p, len - 4)))
            {
                return $"{path}: damaged record at offset {p}";
            }
            byte op = data[p];
            long id = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(p + 1));
            long parentId = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(p + 9));
            var kind = (NodeKind)data[p + 17];
            string name = Encoding.UTF8.GetString(data, p + 20, nameLen);
            p += len;
            _nextId = Math.Max(_nextId, id + 1);
            if (op == OpAdd && _byId.TryGetValue(parentId, out FileNode? parent) && parent.Children is not null && !_byId.ContainsKey(id))
            {
                if (parent.Children.TryGetValue(name, out FileNode? old))
                {
                    RemoveLocked(old);
                }
                var node = new FileNode(id, name, kind, parent);
                parent.Children[name] = node;
                _byId[id] = node;
            }
            else if (op == OpRemove && _byId.TryGetValue(id, out FileNode? gone) && id != RootId)
            {
                RemoveLocked(gone);
            }
            else if (op == OpMove && _byId.TryGetValue(id, out FileNode? moved) && _byId.TryGetValue(parentId, out FileNode? np) && np.Children is not null)
            {
                if (np.Children.TryGetValue(name, out FileNode? replaced) && replaced != moved)
                {
                    RemoveLocked(replaced);
                }
                moved.Parent!.Children!.Remove(moved.Name);
                moved.Name = name;
                moved.Parent = np;
                np.Children[name] = moved;
            }
        }
        return p == data.Length || path == _journalPath ? null : $"{path}: record at offset {p} is cut short";
    }

    /// <summary>
    /// Makes the table match <paramref name="reference"/>'s tree: keeps ids of names it still holds, adds the rest,
    /// drops the missing. An added name gets a new id; with <paramref name="adoptIds"/>, the id the facet recorded for
    /// it when it recorded one not taken yet.
    /// </summary>
    private async Task<ReconcileReport> ReconcileAsync(IFacet reference, DateTime? changedSince, CancellationToken cancellationToken, bool adoptIds = false)
    {
        var added = new List<(long, string, NodeKind, long)>();
        var changed = new List<(long, string, long)>();
        int removed = 0;
        var seen = new HashSet<long> { RootId };
        // A time in the future (set by a program, or a copy from a machine whose clock runs ahead) says nothing
        // about when the file changed: it would be seen as changed at every open until then.
        DateTime now = DateTime.UtcNow;
        var pending = new Stack<FileNode>();
        pending.Push(Root);
        while (pending.Count > 0)
        {
            FileNode dir = pending.Pop();
            IReadOnlyList<NodeInfo> entries = await reference.ListAsync(PathOfLocked(dir), cancellationToken).ConfigureAwait(false);
            foreach (NodeInfo e in entries)
            {
                if (!dir.Children!.TryGetValue(e.Name, out FileNode? node) || node.Kind != e.Kind)
                {
                    if (node is not null)
                    {
                        RemoveLocked(node);
                    }
                    node = new FileNode(adoptIds && e.FileId > RootId && !_byId.ContainsKey(e.FileId) ? e.FileId : _nextId++, e.Name, e.Kind, dir);
                    dir.Children[e.Name] = node;
                    _byId[node.Id] = node;
                    added.Add((node.Id, PathOfLocked(node), e.Kind, e.Length));
                }
                else if (changedSince is { } since && e.Kind == NodeKind.File
                    && ((e.LastWriteUtc >= since && e.LastWriteUtc <= now) || e.ChangeUtc >= since))
                {
                    changed.Add((node.Id, PathOfLocked(node), e.Length));
                }
                seen.Add(node.Id);
                if (node.Kind == NodeKind.Directory)
                {
                    pending.Push(node);
                }
            }
        }
        foreach (FileNode stale in _byId.Values.Where(n => !seen.Contains(n.Id)).ToList())
        {
            if (!stale.Deleted)
            {
                RemoveLocked(stale);
                removed++;
            }
        }
        _generation++;
        return new ReconcileReport(added, removed, changed);
    }

    /// <summary>
    /// Replaces the table with <paramref name="source"/>'s tree, each node under the id the facet recorded for it (a
    /// fresh one where it recorded none, or one already taken). New ids then start past every id this table or that
    /// tree could have given out: the newer table that named the tree's files was lost with its disk.
    /// </summary>
    private async Task AdoptAsync(IFacet source, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            foreach (FileNode n in _byId.Values.Where(n => n != Root))
            {
                n.Deleted = true;
            }
            Root.Children!.Clear();
            _byId.Clear();
            _byId[RootId] = Root;
            _nextId = Math.Max(_nextId, DateTime.UtcNow.Ticks);
        }
        await ReconcileAsync(source, null, cancellationToken, adoptIds: true).ConfigureAwait(false);
        lock (_lock)
        {
            _nextId = Math.Max(_nextId, _byId.Keys.Max() + 1);
        }
    }

    private void WriteSnapshot()
    {
        using var ms = new MemoryStream();
        lock (_lock)
        {
            // Parents before children: breadth-first from the root. A marker record keeps the next id.
            int len = Encode(OpNextId, _nextId - 1, 0, NodeKind.File, "");
            ms.Write(_buffer, 0, len);
            var queue = new Queue<FileNode>();
            queue.Enqueue(Root);
            while (queue.Count > 0)
            {
                FileNode n = queue.Dequeue();
                if (n.Children is null)
                {
                    continue;
                }
                foreach (FileNode c in n.Children.Values)
                {
                    len = Encode(OpAdd, c.Id, n.Id, c.Kind, c.Name);
                    ms.Write(_buffer, 0, len);
                    queue.Enqueue(c);
                }
            }
            AtomicFile.Write(_snapshotPath, ms.GetBuffer().AsSpan(0, (int)ms.Length));
            _journal?.Dispose();
            _journal = null;
            _flushed = _appended; // the snapshot, written and flushed above, holds everything the journal did
            File.Delete(_journalPath);
        }
    }
}
