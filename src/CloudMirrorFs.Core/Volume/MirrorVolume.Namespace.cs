using CloudMirrorFs.Facets;
using CloudMirrorFs.Queue;

namespace CloudMirrorFs.Volume;

public sealed partial class MirrorVolume
{
    /// <summary>The id of the node at <paramref name="path"/>, or null when there is none.</summary>
    public long? LookupId(string path)
    {
        VolumePath.Validate(path);
        return _files.Lookup(path)?.Id;
    }

    /// <summary>The current path of a file id, or null when it is gone.</summary>
    public string? PathOf(long fileId) => _files.Get(fileId) is { Deleted: false } n ? _files.PathOf(n) : null;

    /// <summary>Attributes of the node at <paramref name="path"/>.</summary>
    public async ValueTask<NodeInfo> StatAsync(string path, CancellationToken cancellationToken = default)
    {
        path = _files.Canonical(path);
        FileNode node = Resolve(path);
        NodeInfo info = await FromLocalAsync(f => f.StatAsync(path, cancellationToken), path,
                async () => await TryStatManyFromBufferAsync([(node, path)], cancellationToken).ConfigureAwait(false) is { } one ? (true, one[0]) : (false, null))
            .ConfigureAwait(false)
            ?? throw new MirrorException(MirrorError.NotFound, $"{path}: not found on the local facet");
        return info with { FileId = node.Id, Name = node.Name };
    }

    /// <summary>Attributes of a file by id (an open handle's view: follows renames).</summary>
    public ValueTask<NodeInfo> StatAsync(long fileId, CancellationToken cancellationToken = default)
        => StatAsync(PathOf(fileId) ?? throw new MirrorException(MirrorError.NotFound, $"file id {fileId}: no longer exists"), cancellationToken);

    /// <summary>The children of a directory, with their ids.</summary>
    public async ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken = default)
    {
        path = _files.Canonical(path);
        FileNode dir = Resolve(path);
        if (dir.Kind != NodeKind.Directory)
        {
            throw new MirrorException(MirrorError.NotDirectory, $"{path}: not a directory");
        }
        IReadOnlyList<NodeInfo> entries = await FromLocalAsync(f => f.ListAsync(path, cancellationToken), path,
            async () => await TryStatManyFromBufferAsync(_files.ChildrenOf(dir), cancellationToken).ConfigureAwait(false) is { } all
                ? (true, (IReadOnlyList<NodeInfo>)all) : (false, [])).ConfigureAwait(false);
        var result = new List<NodeInfo>(entries.Count);
        foreach (NodeInfo e in entries)
        {
            FileNode? child = _files.Lookup(VolumePath.Combine(path, e.Name));
            if (child is not null)
            {
                result.Add(e with { FileId = child.Id });
            }
        }
        return result;
    }

    /// <summary>Capacity for statfs: the smallest free space among the Synchronised local facets.</summary>
    public async ValueTask<SpaceInfo> StatFsAsync(CancellationToken cancellationToken = default)
    {
        SpaceInfo? best = null;
        if (_readyLocals.Length == 0 && DegradedRemote() is { } remote)
        {
            // Its space does not depend on its having caught up: df answers at once, however far behind it is.
            return await remote.Facet.GetSpaceAsync(cancellationToken).ConfigureAwait(false);
        }
        foreach (FacetSlot s in _readyLocals)
        {
            SpaceInfo sp = await s.Facet.GetSpaceAsync(cancellationToken).ConfigureAwait(false);
            if (best is null || sp.FreeBytes < best.Value.FreeBytes)
            {
                best = sp;
            }
        }
        return best ?? throw NoLocal("statfs");
    }

    /// <summary>Creates an empty file; returns its id.</summary>
    public ValueTask<long> CreateFileAsync(string path, UnixFileMode mode = (UnixFileMode)0b110_100_100, CancellationToken cancellationToken = default)
        => CreateAsync(path, NodeKind.File, mode, null, cancellationToken);

    /// <summary>Creates a directory; returns its id.</summary>
    public ValueTask<long> CreateDirectoryAsync(string path, UnixFileMode mode = (UnixFileMode)0b111_101_101, CancellationToken cancellationToken = default)
        => CreateAsync(path, NodeKind.Directory, mode, null, cancellationToken);

    /// <summary>
    /// Creates a symbolic link at <paramref name="path"/> (which must not exist) holding <paramref name="target"/>;
    /// returns its id. The target is any non-empty string of at most 4095 UTF-8 bytes without NUL, relative or
    /// absolute, stored verbatim and never resolved by the engine (a dangling link is fine). Stat and list report the
    /// link itself (Length: the target's UTF-8 byte length); <see cref="DeleteFileAsync"/> and <see cref="RenameAsync"/>
    /// act on the link; reads, writes and truncates of it are refused (InvalidArgument).
    /// </summary>
    public ValueTask<long> CreateSymlinkAsync(string path, string target, CancellationToken cancellationToken = default)
    {
        VolumePath.ValidateLinkTarget(target);
        return CreateAsync(path, NodeKind.Symlink, (UnixFileMode)0b111_111_111, target, cancellationToken);
    }

    /// <summary>The target of the symbolic link at <paramref name="path"/>, verbatim (InvalidArgument when it is not a link).</summary>
    public async ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken = default)
    {
        path = _files.Canonical(path);
        FileNode node = Resolve(path);
        if (node.Kind != NodeKind.Symlink)
        {
            throw new MirrorException(MirrorError.InvalidArgument, $"{(path.Length == 0 ? "/" : path)}: not a symbolic link");
        }
        return await FromLocalAsync(f => f.ReadLinkAsync(path, cancellationToken), path,
            async () => await TryReadLinkFromBufferAsync(node, path, cancellationToken).ConfigureAwait(false) is { } target ? (true, target) : (false, "")).ConfigureAwait(false);
    }

    private async ValueTask<long> CreateAsync(string path, NodeKind kind, UnixFileMode mode, string? target, CancellationToken cancellationToken)
    {
        VolumePath.Validate(path);
        if (path.Length == 0)
        {
            throw new MirrorException(MirrorError.Exists, "the root directory already exists");
        }
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            path = _files.Canonical(path, keepLastName: true); // the folders as the table spells them, the new name as given
            FileNode parent = ResolveDirectory(VolumePath.Parent(path));
            string name = VolumePath.Name(path);
            if (parent.Children!.TryGetValue(name, out FileNode? there))
            {
                throw new MirrorException(MirrorError.Exists, there.Name == name
                    ? $"{path}: already exists"
                    : $"{path}: '{there.Name}' already exists, and names that differ only in case are one name on this volume");
            }
            long id = 0;
            FileNode? node = null;
            await OnLocalsAsync(path, (f, ct) => kind switch
                {
                    NodeKind.File => f.CreateFileAsync(new FileRef(id, path), mode, ct),
                    NodeKind.Symlink => f.CreateSymlinkAsync(new FileRef(id, path), target!, ct),
                    _ => f.CreateDirectoryAsync(path, mode, ct),
                }, cancellationToken, before: () =>
                {
                    node = _files.Add(parent, name, kind);
                    id = node.Id;
                }, undo: () => _files.Remove(node!)).ConfigureAwait(false);
            long seq = Enqueue(new Transaction
            {
                Kind = kind switch
                {
                    NodeKind.File => TransactionKind.CreateFile,
                    NodeKind.Symlink => TransactionKind.CreateSymlink,
                    _ => TransactionKind.CreateDirectory,
                },
                FileId = id,
                Path = path,
                Path2 = target, // a link's target rides in the record's second path
                Mode = kind == NodeKind.Symlink ? null : mode,
            }, node!);
            await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
            return id;
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    /// <summary>Renames a file, directory or symbolic link with POSIX semantics (replaces a file, a link or an empty directory).</summary>
    public async ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken = default)
    {
        VolumePath.Validate(from);
        VolumePath.Validate(to);
        if (from.Length == 0 || to.Length == 0)
        {
            throw new MirrorException(MirrorError.InvalidArgument, "the root directory cannot be renamed");
        }
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            from = _files.Canonical(from);
            to = _files.Canonical(to, keepLastName: true); // the new name keeps the case it is given
            FileNode node = Resolve(from);
            FileNode newParent = ResolveDirectory(VolumePath.Parent(to));
            string newName = VolumePath.Name(to);
            if (from == to)
            {
                return;
            }
            for (FileNode? p = newParent; p is not null; p = p.Parent)
            {
                if (p == node)
                {
                    throw new MirrorException(MirrorError.InvalidArgument, $"{from} -> {to}: cannot move a directory inside itself");
                }
            }
            if (newParent.Children!.TryGetValue(newName, out FileNode? existing) && existing == node)
            {
                existing = null; // a change of case only (names that differ only in case are one name here)
            }
            else if (existing is not null && existing.Name != newName)
            {
                // Over another node whose name differs only in case: a case-insensitive folder would replace it under
                // its old name, a case-sensitive one would keep both. Neither matches the table: refused.
                throw new MirrorException(MirrorError.Exists, $"{to}: '{existing.Name}' already exists, and names that differ only in case are one name on this volume");
            }
            if (existing is not null)
            {
                if (node.Kind == NodeKind.Directory && existing.Kind != NodeKind.Directory)
                {
                    throw new MirrorException(MirrorError.NotDirectory, $"{to}: not a directory");
                }
                if (node.Kind != NodeKind.Directory && existing.Kind == NodeKind.Directory)
                {
                    throw new MirrorException(MirrorError.IsDirectory, $"{to}: is a directory");
                }
                if (existing.Kind == NodeKind.Directory && existing.Children!.Count > 0)
                {
                    throw new MirrorException(MirrorError.NotEmpty, $"{to}: directory not empty");
                }
            }
            // A file put over another (an editor's save): after a power loss both names and lengths may match on
            // every facet while the bytes do not, so its whole content is logged as under way.
            long? replacing = existing is not null && node.Kind == NodeKind.File ? node.Id : null;
            try
            {
                if (replacing is { } id)
                {
                    EnterActivityWholeFile(id);
                }
                await OnLocalsAsync(from, (f, ct) => f.RenameAsync(from, to, ct), cancellationToken).ConfigureAwait(false);
                long seq;
                lock (_sequencer)
                {
                    _files.Move(node, newParent, newName);
                    seq = AppendLocked(new Transaction { Kind = TransactionKind.Rename, FileId = node.Id, Path = from, Path2 = to });
                    _lastNamespaceSeq = Math.Max(_lastNamespaceSeq, seq);
                }
                await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
            }
            finally
            {
                if (replacing is { } id)
                {
                    LeaveActivityWholeFile(id);
                }
            }
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    /// <summary>Deletes a file, or a symbolic link (the link, never what it points to).</summary>
    public ValueTask DeleteFileAsync(string path, CancellationToken cancellationToken = default)
        => DeleteAsync(path, directory: false, cancellationToken);

    /// <summary>Deletes an empty directory.</summary>
    public ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken = default)
        => DeleteAsync(path, directory: true, cancellationToken);

    private async ValueTask DeleteAsync(string path, bool directory, CancellationToken cancellationToken)
    {
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            path = _files.Canonical(path);
            FileNode node = Resolve(path);
            if (directory && node.Kind != NodeKind.Directory)
            {
                throw new MirrorException(MirrorError.NotDirectory, $"{path}: not a directory");
            }
            if (!directory && node.Kind == NodeKind.Directory)
            {
                throw new MirrorException(MirrorError.IsDirectory, $"{path}: is a directory");
            }
            if (node.Id == FileTable.RootId)
            {
                throw new MirrorException(MirrorError.AccessDenied, "the root directory cannot be removed");
            }
            if (directory && node.Children!.Count > 0)
            {
                throw new MirrorException(MirrorError.NotEmpty, $"{path}: directory not empty");
            }
            await OnLocalsAsync(path, (f, ct) => directory ? f.DeleteDirectoryAsync(path, ct) : f.DeleteFileAsync(new FileRef(node.Id, path), ct),
                cancellationToken).ConfigureAwait(false);
            long seq;
            lock (_sequencer)
            {
                _files.Remove(node);
                seq = AppendLocked(new Transaction { Kind = directory ? TransactionKind.DeleteDirectory : TransactionKind.DeleteFile, FileId = node.Id, Path = path });
                _lastNamespaceSeq = Math.Max(_lastNamespaceSeq, seq);
            }
            await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    /// <summary>Sets mode and times.</summary>
    public async ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(change);
        if (change.IsEmpty)
        {
            return;
        }
        await _namespaceGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            path = _files.Canonical(path);
            FileNode node = Resolve(path);
            AttributeChange local = node.Kind == NodeKind.File ? change with { FileId = node.Id } : change;
            await OnLocalsAsync(path, (f, ct) => f.SetAttributesAsync(path, local, ct), cancellationToken).ConfigureAwait(false);
            long seq = Enqueue(new Transaction
            {
                Kind = TransactionKind.SetAttributes,
                FileId = node.Id,
                Path = path,
                Mode = change.Mode,
                LastWriteUtc = change.LastWriteUtc,
                LastAccessUtc = change.LastAccessUtc,
            }, node);
            await CompleteDegradedAsync(seq, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _namespaceGate.Release();
        }
    }

    private FileNode Resolve(string path)
    {
        VolumePath.Validate(path);
        return _files.Lookup(path) ?? throw new MirrorException(MirrorError.NotFound, $"{(path.Length == 0 ? "/" : path)}: no such file or directory");
    }

    private FileNode ResolveDirectory(string path)
    {
        FileNode node = Resolve(path);
        return node.Kind == NodeKind.Directory ? node : throw new MirrorException(MirrorError.NotDirectory, $"{path}: not a directory");
    }

    private MirrorException NoLocal(string what)
        => new(MirrorError.Unavailable, $"volume '{_options.Name}': {what}: no Synchronised local facet is available (see 'cmfs status')");

    /// <summary>
    /// Asks the Synchronised local facets in turn until one answers. With none, <paramref name="buffered"/> may answer
    /// from a remote with the queue laid over (seed 000, "read from the buffer"); else a remote answers once it has
    /// caught up with the queue.
    /// </summary>
    private async ValueTask<T> FromLocalAsync<T>(Func<IFacet, ValueTask<T>> query, string path, Func<ValueTask<(bool Found, T Value)>>? buffered = null)
    {
        MirrorException? last = null;
        foreach (FacetSlot s in _readyLocals)
        {
            try
            {
                return await query(s.Facet).ConfigureAwait(false);
            }
            catch (MirrorException e) when (e.Error is MirrorError.IoError or MirrorError.Unavailable)
            {
                last = e;
                FailLocal(s, e);
            }
        }
        if (CanDegrade())
        {
            if (buffered is not null && await buffered().ConfigureAwait(false) is (true, var value))
            {
                return value;
            }
            FacetSlot remote = await CaughtUpRemoteAsync(CancellationToken.None).ConfigureAwait(false);
            return await query(remote.Facet).ConfigureAwait(false);
        }
        throw last ?? NoLocal(path);
    }

    /// <summary>
    /// Applies a namespace change to every Synchronised local facet. A logical refusal (not found, exists...) from
    /// the first facet is the caller's answer; a failure of a facet after another has succeeded takes it offline.
    /// <paramref name="before"/> runs once before the first facet; <paramref name="undo"/> if no facet took the change.
    /// </summary>
    private async ValueTask OnLocalsAsync(string path, Func<IFacet, CancellationToken, ValueTask> change, CancellationToken cancellationToken,
        Action? before = null, Action? undo = null)
    {
        MarkNamespaceOnIdleLocals();
        FacetSlot[] locals = _readyLocals;
        if (locals.Length == 0)
        {
            if (!CanDegrade())
            {
                throw NoLocal(path);
            }
            // Degraded (seed Figure 4): the change goes to the remote through the queue, synchronously.
            before?.Invoke();
            MarkNamespaceOnLocals();
            return;
        }
        before?.Invoke();
        int succeeded = 0;
        MirrorException? first = null;
        foreach (FacetSlot s in locals)
        {
            try
            {
                await change(s.Facet, cancellationToken).ConfigureAwait(false);
                succeeded++;
            }
            catch (MirrorException e)
            {
                first ??= e;
                bool refusal = e.Error is not (MirrorError.IoError or MirrorError.Unavailable);
                if (succeeded == 0 && s == locals[0] && refusal)
                {
                    // The caller's answer (not found, exists, no space...): nothing changed anywhere.
                    undo?.Invoke();
                    throw;
                }
                FailLocal(s, e);
            }
        }
        if (succeeded == 0)
        {
            if (CanDegrade())
            {
                MarkNamespaceOnLocals();
                return;
            }
            undo?.Invoke();
            throw first!;
        }
        foreach (FacetSlot s in _syncingLocals)
        {
            try
            {
                await change(s.Facet, cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException e)
            {
                FailLocal(s, e);
            }
        }
    }
}
