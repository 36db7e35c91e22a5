using System.Runtime.InteropServices;

namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet that keeps the tree as plain files in a folder (ext4, NTFS), readable without CloudMirrorFs. Nothing but
/// the tree is ever written inside the folder. Open files are kept in a bounded handle cache keyed by file id, so a
/// 4 KiB write costs one positioned write system call; a rename does not invalidate a cached handle.
/// </summary>
public sealed partial class DirectoryFacet : IFacet
{
    private readonly string _root;
    private readonly bool _createIfMissing;
    private readonly HandleCache _handles;
    private readonly Lock _dirtyLock = new();
    private HashSet<string> _dirtyDirectories = new(StringComparer.Ordinal);

    /// <summary>Creates a facet over <paramref name="rootPath"/>.</summary>
    public DirectoryFacet(string name, string rootPath, bool createIfMissing = true, int maxOpenHandles = 256)
    {
        Name = name;
        _root = Path.GetFullPath(rootPath);
        _createIfMissing = createIfMissing;
        _handles = new HandleCache(maxOpenHandles);
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <inheritdoc />
    public string Kind => "directory";

    /// <summary>The folder that holds the tree.</summary>
    public string Root => _root;

    /// <inheritdoc />
    public ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        if (File.Exists(_root))
        {
            throw new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {_root} is a file, not a folder; point 'path' at a folder");
        }
        if (!Directory.Exists(_root))
        {
            if (!_createIfMissing)
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': folder {_root} does not exist; create it, or set createIfMissing to true");
            }
            Guard(_root, () => Directory.CreateDirectory(_root));
        }
        Guard(_root, () =>
        {
            // A cheap writability probe that leaves nothing behind in the tree: open the folder's own metadata.
            var info = new DirectoryInfo(_root);
            _ = info.LastWriteTimeUtc;
            if (!OperatingSystem.IsWindows() && Native.Access(_root, 2 /* W_OK */) != 0)
            {
                throw new UnauthorizedAccessException($"{_root} is not writable");
            }
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
    {
        string os = OsPath(path);
        return ValueTask.FromResult(Guard(path, () =>
        {
            var info = new FileInfo(os);
            if (info.Exists || info.LinkTarget is not null)
            {
                return (NodeInfo?)ToNode(info, VolumePath.Name(path));
            }
            var dir = new DirectoryInfo(os);
            return dir.Exists ? ToNode(dir, VolumePath.Name(path)) : null;
        }));
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        string os = OsPath(path);
        return ValueTask.FromResult(Guard(path, () =>
        {
            var dir = new DirectoryInfo(os);
            if (!dir.Exists)
            {
                throw File.Exists(os)
                    ? new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {path}: not a directory")
                    : new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: no such directory");
            }
            return (IReadOnlyList<NodeInfo>)[.. dir.EnumerateFileSystemInfos().Select(i => ToNode(i, i.Name))];
        }));
    }

    /// <inheritdoc />
    public ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken)
    {
        string os = OsPath(file.Path);
        _handles.Close(file.Id); // a handle cached for this id before belongs to a file that is gone
        Guard(file.Path, () =>
        {
            if (Directory.Exists(os))
            {
                throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {file.Path}: is a directory");
            }
            var options = new FileStreamOptions { Mode = FileMode.OpenOrCreate, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite | FileShare.Delete };
            if (!OperatingSystem.IsWindows())
            {
                options.UnixCreateMode = mode;
            }
            using (new FileStream(os, options))
            {
            }
        });
        MarkDirectoryDirty(file.Path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask CreateDirectoryAsync(string path, UnixFileMode mode, CancellationToken cancellationToken)
    {
        string os = OsPath(path);
        Guard(path, () =>
        {
            if (File.Exists(os))
            {
                throw new MirrorException(MirrorError.Exists, $"facet '{Name}': {path}: a file exists there");
            }
            if (!Directory.Exists(Path.GetDirectoryName(os)))
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {VolumePath.Parent(path)}: no such directory");
            }
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(os);
            }
            else
            {
                Directory.CreateDirectory(os, mode);
            }
        });
        MarkDirectoryDirty(path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        string src = OsPath(from), dst = OsPath(to);
        Guard(from, () =>
        {
            bool srcExists = File.Exists(src) || Directory.Exists(src) || new FileInfo(src).LinkTarget is not null;
            if (!srcExists)
            {
                if (File.Exists(dst) || Directory.Exists(dst))
                {
                    return; // a replay: the rename already happened
                }
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {from}: no such file or directory");
            }
            if (OperatingSystem.IsWindows())
            {
                _handles.CloseAll();
                if (Directory.Exists(src))
                {
                    if (Directory.Exists(dst))
                    {
                        Directory.Delete(dst);
                    }
                    Directory.Move(src, dst);
                }
                else
                {
                    File.Move(src, dst, overwrite: true);
                }
            }
            else if (Native.Rename(src, dst) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw ErrnoException(errno, $"rename {from} -> {to}");
            }
        });
        MarkDirectoryDirty(from);
        MarkDirectoryDirty(to);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        string os = OsPath(file.Path);
        _handles.Close(file.Id);
        Guard(file.Path, () =>
        {
            if (Directory.Exists(os))
            {
                throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {file.Path}: is a directory");
            }
            File.Delete(os);
        });
        MarkDirectoryDirty(file.Path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        string os = OsPath(path);
        Guard(path, () =>
        {
            if (!Directory.Exists(os))
            {
                if (File.Exists(os))
                {
                    throw new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {path}: not a directory");
                }
                return;
            }
            if (Directory.EnumerateFileSystemEntries(os).Any())
            {
                throw new MirrorException(MirrorError.NotEmpty, $"facet '{Name}': {path}: directory not empty");
            }
            Directory.Delete(os);
        });
        MarkDirectoryDirty(path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask SetLengthAsync(FileRef file, long length, CancellationToken cancellationToken)
    {
        Guard(file.Path, () =>
        {
            using HandleCache.Lease lease = Acquire(file);
            RandomAccess.SetLength(lease.Handle, length);
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change);
        string os = OsPath(path);
        Guard(path, () =>
        {
            bool isDir = Directory.Exists(os);
            if (!isDir && !File.Exists(os))
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: no such file or directory");
            }
            if (change.Mode is { } mode && !OperatingSystem.IsWindows())
            {
                File.SetUnixFileMode(os, mode);
            }
            if (change.LastWriteUtc is { } mtime)
            {
                if (isDir)
                {
                    Directory.SetLastWriteTimeUtc(os, mtime);
                }
                else
                {
                    File.SetLastWriteTimeUtc(os, mtime);
                }
            }
            if (change.LastAccessUtc is { } atime)
            {
                if (isDir)
                {
                    Directory.SetLastAccessTimeUtc(os, atime);
                }
                else
                {
                    File.SetLastAccessTimeUtc(os, atime);
                }
            }
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask WriteAsync(FileRef file, long offset, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        using (HandleCache.Lease lease = AcquireGuarded(file))
        {
            try
            {
                RandomAccess.Write(lease.Handle, data.Span, offset);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                _handles.Close(file.Id); // a retry reopens by path (a replaced disk, a remounted folder)
                throw MirrorException.From(e, $"facet '{Name}': write {file.Path}");
            }
            lease.MarkDirty();
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<int> ReadAsync(FileRef file, long offset, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        using HandleCache.Lease lease = AcquireGuarded(file);
        try
        {
            int total = 0;
            while (total < buffer.Length)
            {
                int n = RandomAccess.Read(lease.Handle, buffer.Span[total..], offset + total);
                if (n == 0)
                {
                    break;
                }
                total += n;
            }
            return ValueTask.FromResult(total);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _handles.Close(file.Id);
            throw MirrorException.From(e, $"facet '{Name}': read {file.Path}");
        }
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Guard(_root, () =>
        {
            _handles.FlushDirty();
            HashSet<string> dirs;
            lock (_dirtyLock)
            {
                dirs = _dirtyDirectories;
                _dirtyDirectories = new HashSet<string>(StringComparer.Ordinal);
            }
            foreach (string d in dirs)
            {
                Storage.AtomicFile.SyncDirectory(d);
            }
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<SpaceInfo> GetSpaceAsync(CancellationToken cancellationToken)
        => ValueTask.FromResult(Guard(_root, () =>
        {
            var drive = new DriveInfo(_root);
            return new SpaceInfo(drive.TotalSize, drive.AvailableFreeSpace);
        }));

    /// <inheritdoc />
    public ValueTask DisposeAsync()
    {
        _handles.Dispose();
        return ValueTask.CompletedTask;
    }

    private string OsPath(string path)
    {
        VolumePath.Validate(path);
        return path.Length == 0 ? _root : Path.Join(_root, OperatingSystem.IsWindows() ? path.Replace('/', '\\') : path);
    }

    private HandleCache.Lease AcquireGuarded(FileRef file)
    {
        try
        {
            return Acquire(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw MirrorException.From(e, $"facet '{Name}': {file.Path}");
        }
    }

    private HandleCache.Lease Acquire(FileRef file)
        => _handles.Acquire(file.Id, () =>
        {
            string os = OsPath(file.Path);
            if (Directory.Exists(os))
            {
                throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {file.Path}: is a directory");
            }
            return File.OpenHandle(os, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        });

    private void MarkDirectoryDirty(string path)
    {
        string parent = Path.GetDirectoryName(OsPath(path)) ?? _root;
        lock (_dirtyLock)
        {
            _dirtyDirectories.Add(parent);
        }
    }

    private NodeInfo ToNode(FileSystemInfo info, string name)
    {
        NodeKind kind = info.LinkTarget is not null ? NodeKind.Symlink : info is DirectoryInfo ? NodeKind.Directory : NodeKind.File;
        UnixFileMode mode = OperatingSystem.IsWindows() ? (kind == NodeKind.Directory ? (UnixFileMode)0b111_101_101 : (UnixFileMode)0b110_100_100) : info.UnixFileMode;
        long length = kind == NodeKind.File ? ((FileInfo)info).Length : 0;
        return new NodeInfo(name, kind, length, mode, info.LastWriteTimeUtc, info.LastAccessTimeUtc, info.CreationTimeUtc);
    }

    private T Guard<T>(string what, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not MirrorException)
        {
            throw MirrorException.From(e, $"facet '{Name}': {(what.Length == 0 ? "/" : what)}");
        }
    }

    private void Guard(string what, Action action) => Guard(what, () =>
    {
        action();
        return 0;
    });

    private MirrorException ErrnoException(int errno, string what) => errno switch
    {
        2 => new MirrorException(MirrorError.NotFound, $"facet '{Name}': {what}: not found"),
        17 => new MirrorException(MirrorError.Exists, $"facet '{Name}': {what}: already exists"),
        20 => new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {what}: not a directory"),
        21 => new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {what}: is a directory"),
        22 => new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': {what}: invalid argument"),
        28 => new MirrorException(MirrorError.NoSpace, $"facet '{Name}': {what}: no space left on the device"),
        39 => new MirrorException(MirrorError.NotEmpty, $"facet '{Name}': {what}: directory not empty"),
        13 or 1 => new MirrorException(MirrorError.AccessDenied, $"facet '{Name}': {what}: permission denied"),
        _ => new MirrorException(MirrorError.IoError, $"facet '{Name}': {what}: errno {errno}"),
    };

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "rename", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Rename(string from, string to);

        [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Access(string path, int mode);
    }
}
