using CloudMirrorFs.Facets;

namespace CloudMirrorFs.Mount.FileSystem;

public sealed partial class MirrorFileSystem
{
    /// <summary>renameat2's RENAME_NOREPLACE.</summary>
    public const uint RenameNoReplace = 1;

    /// <summary>renameat2's RENAME_EXCHANGE (not supported).</summary>
    public const uint RenameExchange = 2;

    /// <summary>Removes a file name; an open file lives on, hidden, until its last release.</summary>
    public FsError Unlink(long parent, string name)
    {
        FsError err = ChildPath(parent, name, out string path);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            long? id = _volume.LookupId(path);
            if (id is null)
            {
                return FsError.NotFound;
            }
            if (IsOpen(id.Value) && Wait(_volume.StatAsync(path)).Kind == NodeKind.File)
            {
                return HideOpenFile(path, id.Value);
            }
            Wait(_volume.DeleteFileAsync(path));
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "unlink", path);
        }
    }

    /// <summary>Removes an empty directory.</summary>
    public FsError RemoveDirectory(long parent, string name)
    {
        FsError err = ChildPath(parent, name, out string path);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            Wait(_volume.DeleteDirectoryAsync(path));
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "rmdir", path);
        }
    }

    /// <summary>
    /// rename(2) and renameat2 with RENAME_NOREPLACE. An open file replaced by the rename lives on, hidden, until its
    /// last release, as POSIX requires.
    /// </summary>
    public FsError Rename(long parent, string name, long newParent, string newName, uint flags)
    {
        if ((flags & RenameExchange) != 0 || (flags & ~(RenameNoReplace | RenameExchange)) != 0)
        {
            return FsError.InvalidArgument;
        }
        FsError err = ChildPath(parent, name, out string from);
        if (err != FsError.None)
        {
            return err;
        }
        err = NewChildPath(newParent, newName, out string to);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            if (_volume.LookupId(from) is null)
            {
                return FsError.NotFound;
            }
            if (_volume.LookupId(to) is { } target && from != to)
            {
                if ((flags & RenameNoReplace) != 0)
                {
                    return FsError.Exists;
                }
                NodeInfo source = Wait(_volume.StatAsync(from));
                if (IsOpen(target) && source.Kind != NodeKind.Directory && Wait(_volume.StatAsync(to)).Kind == NodeKind.File)
                {
                    err = HideOpenFile(to, target);
                    if (err != FsError.None)
                    {
                        return err;
                    }
                }
            }
            Wait(_volume.RenameAsync(from, to));
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "rename", from);
        }
    }

    /// <summary>Hard links are not supported: a file has one name (docs/mount.md).</summary>
    public static FsError Link() => FsError.NotPermitted;

    /// <summary>Opens a directory: takes a snapshot of its entries ("." and ".." first) and returns its handle.</summary>
    public FsError OpenDirectory(long inode, out long handle)
    {
        handle = 0;
        string? path = PathOf(inode);
        if (path is null)
        {
            return FsError.NotFound;
        }
        try
        {
            IReadOnlyList<NodeInfo> children = Wait(_volume.ListAsync(path));
            var entries = new List<FsDirectoryEntry>(children.Count + 2)
            {
                FsDirectoryEntry.Create(".", inode, NodeKind.Directory),
                FsDirectoryEntry.Create("..", inode == RootInode ? RootInode : _volume.LookupId(VolumePath.Parent(path)) ?? RootInode, NodeKind.Directory),
            };
            foreach (NodeInfo c in children)
            {
                if (inode == RootInode && c.Name == HiddenDirectory)
                {
                    continue;
                }
                entries.Add(FsDirectoryEntry.Create(c.Name, c.FileId, c.Kind));
            }
            handle = Interlocked.Increment(ref _nextDirectoryHandle);
            _directories[handle] = [.. entries];
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "opendir", path);
        }
    }

    /// <summary>The snapshot taken by <see cref="OpenDirectory"/>; readdir's offset is an index into it.</summary>
    public FsError ReadDirectory(long handle, out IReadOnlyList<FsDirectoryEntry> entries)
    {
        if (_directories.TryGetValue(handle, out FsDirectoryEntry[]? snapshot))
        {
            entries = snapshot;
            return FsError.None;
        }
        entries = [];
        return FsError.BadHandle;
    }

    /// <summary>Closes a directory handle.</summary>
    public FsError ReleaseDirectory(long handle) => _directories.TryRemove(handle, out _) ? FsError.None : FsError.BadHandle;

    /// <summary>Moves an open file out of sight; deleted when its last handle is released.</summary>
    private FsError HideOpenFile(string path, long inode)
    {
        lock (_hiddenLock)
        {
            if (_volume.LookupId(HiddenDirectory) is null)
            {
                Wait(_volume.CreateDirectoryAsync(HiddenDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute));
            }
            lock (_openLock)
            {
                _orphans.Add(inode);
            }
            Wait(_volume.RenameAsync(path, OrphanPath(inode)));
            lock (_openLock)
            {
                if (_openCounts.ContainsKey(inode))
                {
                    return FsError.None;
                }
                _orphans.Remove(inode); // released while we moved it
            }
            Wait(_volume.DeleteFileAsync(OrphanPath(inode)));
            RemoveHiddenDirectoryIfEmpty();
            return FsError.None;
        }
    }

    /// <summary>The hidden folder exists only while it holds files (so the remote's image carries none of it at rest).</summary>
    private void RemoveHiddenDirectoryIfEmpty()
    {
        lock (_openLock)
        {
            if (_orphans.Count > 0)
            {
                return;
            }
        }
        try
        {
            Wait(_volume.DeleteDirectoryAsync(HiddenDirectory));
        }
        catch (MirrorException e) when (e.Error is MirrorError.NotEmpty or MirrorError.NotFound)
        {
            // still in use, or already gone
        }
    }
}
