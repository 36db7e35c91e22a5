using System.Collections.Concurrent;
using CloudMirrorFs.Storage;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Facets;

/// <summary>
/// A facet that keeps the tree as plain files in a folder (ext4, NTFS), readable without CloudMirrorFs. Nothing but
/// the tree is ever written inside the folder. Open files are kept in a bounded handle cache keyed by file id, so a
/// 4 KiB write costs one positioned write system call; a rename does not invalidate a cached handle.
/// <para>
/// Symbolic links are real links in the folder, and the facet never follows one: every method looks at a path with
/// lstat semantics (a link is reported, renamed and deleted as itself, whatever it points to, dangling or not), and a
/// link in a parent component is refused rather than resolved, so a link to "/etc" or "../../outside" cannot lead an
/// operation out of the folder (<see cref="TreePath"/>).
/// </para>
/// </summary>
public sealed partial class DirectoryFacet : IFacet, IFolderHome
{
    private readonly string _root;
    // The folder's device and inode at the last good open: another answer while running means its disk was unmounted
    // (the path now leads to the mount point below it) or the folder was replaced.
    private (ulong Device, ulong Inode)? _opened;
    private readonly bool _createIfMissing;
    private readonly HandleCache _handles;
    private readonly Lock _dirtyLock = new();
    private HashSet<string> _dirtyDirectories = new(StringComparer.Ordinal);

    // Parent components lately seen to be real directories (volume path -> Environment.TickCount64 when seen), so that
    // a busy folder's files do not each pay an lstat per parent. Cleared around every change that can turn a directory
    // into something else through this facet; an entry lives RealDirectoryMs, so a link planted in the folder by
    // another program is refused within that time.
    private readonly ConcurrentDictionary<string, long> _realDirectories = new(StringComparer.Ordinal);
    private long _realDirectoriesGeneration;
    private const long RealDirectoryMs = 1000;
    private const int RealDirectoriesKept = 4096;

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
    public string? FileSystem { get; set; }

    /// <inheritdoc />
    public ValueTask OpenAsync(CancellationToken cancellationToken)
    {
        // A disk that is not mounted is a failed facet, never an emptied folder to rebuild on the disk below it.
        string? home = Guard(_root, () => FolderHome.Verify(_root, FileSystem, $"facet '{Name}'"));
        // A disk that does not answer is a failed facet, never a missing folder to create again.
        FileAttributes? there = Guard(_root, () => PathProbe.Attributes(_root));
        if (there is { } a && (a & FileAttributes.Directory) == 0)
        {
            throw new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {_root} is a file, not a folder; point 'path' at a folder");
        }
        if (there is null)
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
        FileSystem = home;
        _opened = FolderHome.IdentityOf(_root);
        ReadMark();
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<NodeInfo?> StatAsync(string path, CancellationToken cancellationToken)
    {
        return ValueTask.FromResult(Guard(path, () =>
        {
            if (path.Length == 0)
            {
                var root = new DirectoryInfo(_root);
                if (RootLost())
                {
                    throw RootGone(new MirrorException(MirrorError.NotFound, $"facet '{Name}': /: not found"));
                }
                return (NodeInfo?)ToNode(root, "", NodeKind.Directory);
            }
            // A path under a link names nothing in the tree: it is never resolved through the link.
            string? os = TreePathOrNull(path);
            NodeInfo? node = os is null ? null : StatNode(os, VolumePath.Name(path));
            if (node is null && RootLost())
            {
                throw RootGone(new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: not found"));
            }
            return node;
        }));
    }

    /// <inheritdoc />
    public ValueTask<IReadOnlyList<NodeInfo>> ListAsync(string path, CancellationToken cancellationToken)
    {
        return ValueTask.FromResult(Guard(path, () =>
        {
            string os = path.Length == 0 ? _root : TreePath(path);
            if (path.Length > 0)
            {
                NodeKind? kind = KindAt(os);
                if (kind is null)
                {
                    throw RootGone(new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: no such directory"));
                }
                if (kind != NodeKind.Directory)
                {
                    // A link to a directory is not one: listing it would list wherever it points.
                    throw new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {path}: not a directory");
                }
            }
            if (OperatingSystem.IsLinux())
            {
                // Each entry as lstat sees it; one removed between the listing and its look is left out.
                var nodes = new List<NodeInfo>();
                foreach (string child in Directory.EnumerateFileSystemEntries(os))
                {
                    if (StatNode(child, Path.GetFileName(child)) is { } node)
                    {
                        nodes.Add(node);
                    }
                }
                return (IReadOnlyList<NodeInfo>)nodes;
            }
            return (IReadOnlyList<NodeInfo>)[.. new DirectoryInfo(os).EnumerateFileSystemInfos().Select(i => ToNode(i, i.Name, KindOf(i)))];
        }));
    }

    /// <inheritdoc />
    public ValueTask CreateFileAsync(FileRef file, UnixFileMode mode, CancellationToken cancellationToken)
    {
        _handles.Close(file.Id); // a handle cached for this id before belongs to a file that is gone
        EnsureRootHere();
        Guard(file.Path, () =>
        {
            string os = TreePath(file.Path);
            if (OperatingSystem.IsLinux())
            {
                // One open(2), no look first: O_NOFOLLOW refuses a link there (ELOOP) and O_RDWR a directory (EISDIR).
                // Kept for the writes that usually follow a create: they need no second open.
                _handles.Add(file.Id, file.Path, OpenNative(os, create: true, mode, out int errno) ?? throw (errno == 40
                    ? new MirrorException(MirrorError.Exists, $"facet '{Name}': {file.Path}: a symbolic link exists there")
                    : ErrnoException(errno, file.Path)));
                return;
            }
            switch (KindAt(os))
            {
                case NodeKind.Directory:
                    throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {file.Path}: is a directory");
                case NodeKind.Symlink:
                    // Opening it would create or open whatever the link points to, maybe outside the folder.
                    throw new MirrorException(MirrorError.Exists, $"facet '{Name}': {file.Path}: a symbolic link exists there");
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
        EnsureRootHere();
        Guard(path, () =>
        {
            string os = TreePath(path);
            NodeKind? existing = path.Length == 0 ? NodeKind.Directory : KindAt(os);
            if (existing == NodeKind.Directory)
            {
                return; // a replay: it is there
            }
            if (existing is not null)
            {
                throw new MirrorException(MirrorError.Exists, $"facet '{Name}': {path}: {(existing == NodeKind.Symlink ? "a symbolic link" : "a file")} exists there");
            }
            if (!PathProbe.IsDirectory(Path.GetDirectoryName(os)!))
            {
                throw RootGone(new MirrorException(MirrorError.NotFound, $"facet '{Name}': {VolumePath.Parent(path)}: no such directory"));
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
    public ValueTask CreateSymlinkAsync(FileRef link, string target, CancellationToken cancellationToken)
    {
        VolumePath.ValidateLinkTarget(target);
        if (link.Path.Length == 0)
        {
            throw new MirrorException(MirrorError.Exists, $"facet '{Name}': the root directory exists");
        }
        _handles.Close(link.Id);
        EnsureRootHere();
        ChangingDirectories(() => Guard(link.Path, () =>
        {
            string os = TreePath(link.Path);
            if (Lstat(os) is { } existing)
            {
                NodeKind kind = KindOf(existing);
                if (kind != NodeKind.Symlink)
                {
                    throw new MirrorException(MirrorError.Exists, $"facet '{Name}': {link.Path}: a {(kind == NodeKind.Directory ? "directory" : "file")} exists there");
                }
                if (existing.LinkTarget == target)
                {
                    return; // a replay: it is there
                }
                // A replay that ends in a newer target, or a resync: the link is replaced (unlink(2), then symlink(2)).
                if (OperatingSystem.IsWindows() && (existing.Attributes & FileAttributes.Directory) != 0)
                {
                    Directory.Delete(os);
                }
                else
                {
                    File.Delete(os);
                }
            }
            // symlink(2) stores the target verbatim; nothing resolves it (a missing parent is NotFound, as for a file).
            File.CreateSymbolicLink(os, target);
        }));
        MarkDirectoryDirty(link.Path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask<string> ReadLinkAsync(string path, CancellationToken cancellationToken)
        => ValueTask.FromResult(Guard(path, () =>
        {
            if (path.Length == 0)
            {
                throw new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': the root directory is not a symbolic link");
            }
            FileSystemInfo info = Lstat(TreePath(path))
                ?? throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: no such file or directory");
            return KindOf(info) == NodeKind.Symlink && info.LinkTarget is { } target
                ? target
                : throw new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': {path}: not a symbolic link");
        }));

    /// <inheritdoc />
    public ValueTask RenameAsync(string from, string to, CancellationToken cancellationToken)
    {
        ChangingDirectories(() => Guard(from, () =>
        {
            string src = TreePath(from), dst = TreePath(to);
            FileSystemInfo? source = Lstat(src);
            if (source is null)
            {
                if (Lstat(dst) is not null)
                {
                    return; // a replay: the rename already happened
                }
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {from}: no such file or directory");
            }
            // rename(2) acts on links themselves, in both names; so does MoveFileEx on Windows.
            if (OperatingSystem.IsWindows())
            {
                _handles.CloseAll();
                if ((source.Attributes & FileAttributes.Directory) != 0) // a directory, or a link to one: moved as itself
                {
                    if (KindAt(dst) == NodeKind.Directory)
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
            else if (Libc.Rename(src, dst) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                throw ErrnoException(errno, $"rename {from} -> {to}");
            }
        }));
        MarkDirectoryDirty(from);
        MarkDirectoryDirty(to);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DeleteFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        _handles.Close(file.Id);
        Guard(file.Path, () =>
        {
            string os = TreePath(file.Path);
            if (OperatingSystem.IsLinux())
            {
                // unlink(2) alone: it removes a link itself, refuses a directory (EISDIR), and a name already gone is done.
                if (Native.Unlink(os) != 0 && Marshal.GetLastPInvokeError() is int errno && errno != 2)
                {
                    throw ErrnoException(errno, file.Path);
                }
                return;
            }
            switch (KindAt(os))
            {
                case null:
                    return; // already gone
                case NodeKind.Directory:
                    throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {file.Path}: is a directory");
                case NodeKind.Symlink when OperatingSystem.IsWindows() && (new FileInfo(os).Attributes & FileAttributes.Directory) != 0:
                    Directory.Delete(os); // a directory link: removes the link, never what it points to
                    break;
                default:
                    File.Delete(os); // unlink(2): a link goes, never what it points to
                    break;
            }
        });
        MarkDirectoryDirty(file.Path);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask DeleteDirectoryAsync(string path, CancellationToken cancellationToken)
    {
        ChangingDirectories(() => Guard(path, () =>
        {
            string os = TreePath(path);
            NodeKind? kind = KindAt(os);
            if (kind is null)
            {
                return;
            }
            if (kind != NodeKind.Directory)
            {
                // A link to a directory included: its target's entries are not ours to look at.
                throw new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {path}: not a directory");
            }
            if (Directory.EnumerateFileSystemEntries(os).Any())
            {
                throw new MirrorException(MirrorError.NotEmpty, $"facet '{Name}': {path}: directory not empty");
            }
            Directory.Delete(os);
        }));
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
            lease.MarkDirty(); // the new length reaches the disk at the file's next barrier
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// On Linux, one <c>fallocate</c>: <c>FALLOC_FL_PUNCH_HOLE</c> or <c>FALLOC_FL_ZERO_RANGE</c>, with
    /// <c>FALLOC_FL_KEEP_SIZE</c>. Where the file system refuses that mode (and on Windows), zeros are written over
    /// the part of the range within the file's length.
    /// </remarks>
    public ValueTask ZeroRangeAsync(FileRef file, long offset, long length, bool deallocate, CancellationToken cancellationToken)
    {
        Guard(file.Path, () =>
        {
            using HandleCache.Lease lease = Acquire(file);
            try
            {
                ZeroRange(lease.Handle, file, offset, length, deallocate);
            }
            finally
            {
                lease.MarkDirty(); // after the change: the file's next barrier flushes it
            }
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// On Linux, one <c>fallocate</c> with <c>FALLOC_FL_KEEP_SIZE</c>. A file system that cannot reserve space
    /// (<c>EOPNOTSUPP</c>), and Windows, reserve nothing, as before: the writes still go where they can.
    /// </remarks>
    public ValueTask AllocateAsync(FileRef file, long offset, long length, CancellationToken cancellationToken)
    {
        if (!OperatingSystem.IsLinux())
        {
            return ValueTask.CompletedTask;
        }
        Guard(file.Path, () =>
        {
            using HandleCache.Lease lease = Acquire(file);
            const int keepSize = 0x01, notSupported = 95;
            if (Native.Fallocate(lease.Handle, keepSize, offset, length) != 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno != notSupported)
                {
                    throw ErrnoException(errno, $"reserving [{offset}, +{length}) of {file.Path}");
                }
            }
            lease.MarkDirty(); // the file's next barrier makes the reservation durable
        });
        return ValueTask.CompletedTask;
    }

    private void ZeroRange(SafeFileHandle handle, FileRef file, long offset, long length, bool deallocate)
    {
        if (OperatingSystem.IsLinux())
        {
            const int keepSize = 0x01, punchHole = 0x02, zeroRange = 0x10, notSupported = 95;
            if (Native.Fallocate(handle, keepSize | (deallocate ? punchHole : zeroRange), offset, length) == 0)
            {
                return;
            }
            int errno = Marshal.GetLastPInvokeError();
            if (errno != notSupported)
            {
                throw ErrnoException(errno, $"zeroing [{offset}, +{length}) of {file.Path}");
            }
        }
        long end = Math.Min(offset + length, RandomAccess.GetLength(handle));
        if (offset >= end)
        {
            return;
        }
        byte[] zeros = new byte[(int)Math.Min(end - offset, 1 << 20)];
        for (long pos = offset; pos < end; pos += zeros.Length)
        {
            RandomAccess.Write(handle, zeros.AsSpan(0, (int)Math.Min(zeros.Length, end - pos)), pos);
        }
    }

    /// <inheritdoc />
    public ValueTask SetAttributesAsync(string path, AttributeChange change, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change);
        Guard(path, () =>
        {
            string os = TreePath(path);
            NodeKind? kind = path.Length == 0 ? NodeKind.Directory : KindAt(os);
            if (kind is null)
            {
                throw new MirrorException(MirrorError.NotFound, $"facet '{Name}': {path}: no such file or directory");
            }
            if (kind == NodeKind.Symlink)
            {
                // chmod would change the target (Linux has no lchmod, and a link's own bits mean nothing): the mode
                // is left alone. Times are set on the link itself (utimensat with AT_SYMLINK_NOFOLLOW).
                if (change.LastWriteUtc is { } linkMtime)
                {
                    File.SetLastWriteTimeUtc(os, linkMtime);
                }
                if (change.LastAccessUtc is { } linkAtime)
                {
                    File.SetLastAccessTimeUtc(os, linkAtime);
                }
                return;
            }
            bool isDir = kind == NodeKind.Directory;
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
            // The inode changed: the next barrier flushes it. A folder is flushed itself; a file through its cached
            // handle (an fsync reaches an inode through any handle), and through its folder when no handle is cached
            // (opening one here could fail on a file just made read-only): a journaling file system's folder flush
            // commits every change logged before it, this one included.
            lock (_dirtyLock)
            {
                _dirtyDirectories.Add(isDir ? os : Path.GetDirectoryName(os) ?? _root);
            }
            if (!isDir && change.FileId is { } id)
            {
                _handles.MarkDirtyIfCached(id);
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
                throw Failure(e, $"facet '{Name}': write {file.Path}");
            }
            lease.MarkDirty();
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async ValueTask<UInt128?> HashBlockAsync(FileRef file, long offset, int length, CancellationToken cancellationToken)
    {
        byte[] buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(length);
        try
        {
            int n;
            try
            {
                n = await ReadAsync(file, offset, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false);
            }
            catch (MirrorException e) when (e.Error == MirrorError.NotFound)
            {
                return null;
            }
            buffer.AsSpan(n, length - n).Clear(); // past the end reads as zeros, as on the source
            return System.IO.Hashing.XxHash128.HashToUInt128(buffer.AsSpan(0, length));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
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
            throw Failure(e, $"facet '{Name}': read {file.Path}");
        }
    }

    /// <inheritdoc />
    public ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        Guard(_root, () =>
        {
            _handles.FlushDirty();
            SyncDirtyDirectories();
        });
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>
    /// That file's handle, if written since its last flush, and every folder whose entries changed: a name is durable
    /// only with its folder, and folders are few and small next to file data.
    /// </remarks>
    public ValueTask FlushFileAsync(FileRef file, CancellationToken cancellationToken)
    {
        Guard(_root, () =>
        {
            _handles.FlushDirty(file.Id);
            SyncDirtyDirectories();
        });
        return ValueTask.CompletedTask;
    }

    /// <summary>How many times a file's handle has been flushed (fsync): how tests see which files a barrier covered.</summary>
    internal long HandleFlushes => _handles.Flushes;

    private void SyncDirtyDirectories()
    {
        HashSet<string> dirs;
        lock (_dirtyLock)
        {
            dirs = _dirtyDirectories;
            _dirtyDirectories = new HashSet<string>(StringComparer.Ordinal);
        }
        foreach (string d in dirs)
        {
            try
            {
                Storage.AtomicFile.SyncDirectory(d);
            }
            catch (DirectoryNotFoundException)
            {
                // Removed since it changed: its parent, which lost the name, is flushed in its own turn.
            }
            catch (IOException)
            {
                lock (_dirtyLock)
                {
                    _dirtyDirectories.UnionWith(dirs); // flushed again at the next barrier (a few twice: harmless)
                }
                throw;
            }
        }
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
        return Join(path);
    }

    /// <summary>The OS path of a volume path already validated.</summary>
    private string Join(string path) => path.Length == 0 ? _root : Path.Join(_root, OperatingSystem.IsWindows() ? path.Replace('/', '\\') : path);

    private HandleCache.Lease AcquireGuarded(FileRef file)
    {
        try
        {
            return Acquire(file);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Failure(e, $"facet '{Name}': {file.Path}");
        }
    }

    private HandleCache.Lease Acquire(FileRef file)
        => _handles.Acquire(file.Id, file.Path, () =>
        {
            string os = TreePath(file.Path);
            switch (KindAt(os))
            {
                case NodeKind.Directory:
                    throw new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {file.Path}: is a directory");
                case NodeKind.Symlink:
                    // Opening it would open what it points to, maybe outside the folder.
                    throw new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': {file.Path}: is a symbolic link, which holds no data and is never followed");
            }
            return (OperatingSystem.IsLinux() ? OpenNative(os, create: false, default, out _) : null)
                ?? File.OpenHandle(os, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
        });

    /// <summary>
    /// On Linux, open(2) for reading and writing (creating the file with <paramref name="mode"/>, less the umask, when
    /// <paramref name="create"/>), never through a link at the last component (O_NOFOLLOW): one system call, where
    /// File.OpenHandle adds fstatfs, flock and lseek for a share mode nothing here relies on (the facet's folder is
    /// ours). Null with the <paramref name="errno"/> when the call fails.
    /// </summary>
    private static SafeFileHandle? OpenNative(string os, bool create, UnixFileMode mode, out int errno)
    {
        int oNoFollow = RuntimeInformation.ProcessArchitecture is Architecture.Arm64 or Architecture.Arm ? 0x8000 : 0x20000;
        int fd = Libc.Open(os, Libc.ORdWr | Libc.OCloExec | oNoFollow | (create ? Libc.OCreat : 0), (int)mode);
        errno = fd < 0 ? Marshal.GetLastPInvokeError() : 0;
        return fd < 0 ? null : new SafeFileHandle(fd, ownsHandle: true);
    }

    private void MarkDirectoryDirty(string path)
    {
        string parent = Path.GetDirectoryName(OsPath(path)) ?? _root;
        lock (_dirtyLock)
        {
            _dirtyDirectories.Add(parent);
        }
    }

    /// <summary>
    /// The OS path of a volume path, once every parent component has been checked to be a real directory: a symbolic
    /// link there is refused (NotDirectory), never followed, wherever it points. Missing parents are left to the
    /// operation to report. One lstat per parent component; the last component is the caller's to look at.
    /// </summary>
    private string TreePath(string path)
        => TreePathOrNull(path) ?? throw new MirrorException(MirrorError.NotDirectory,
            $"facet '{Name}': {path}: a parent is a symbolic link, and paths are never resolved through links");

    /// <summary>As <see cref="TreePath"/>, but null when a parent is a symbolic link.</summary>
    private string? TreePathOrNull(string path)
    {
        string os = OsPath(path);
        long now = Environment.TickCount64;
        var seen = _realDirectories.GetAlternateLookup<ReadOnlySpan<char>>();
        for (int i = path.IndexOf('/'); i >= 0; i = path.IndexOf('/', i + 1))
        {
            if (seen.TryGetValue(path.AsSpan(0, i), out long at) && now - at < RealDirectoryMs)
            {
                continue;
            }
            long generation = Volatile.Read(ref _realDirectoriesGeneration);
            string parentPath = path[..i];
            var parent = new FileInfo(Join(parentPath));
            if (IsLink(parent))
            {
                return null;
            }
            FileAttributes attributes = parent.Attributes;
            if ((int)attributes != -1 && (attributes & FileAttributes.Directory) != 0 && Volatile.Read(ref _realDirectoriesGeneration) == generation)
            {
                if (_realDirectories.Count >= RealDirectoriesKept)
                {
                    _realDirectories.Clear();
                }
                _realDirectories[parentPath] = now;
            }
        }
        return os;
    }

    /// <summary>
    /// Runs a change that can turn a directory into something else (rename, rmdir, a link replacing a node),
    /// forgetting every directory seen before it and any seen while it runs.
    /// </summary>
    private void ChangingDirectories(Action change)
    {
        ForgetRealDirectories();
        try
        {
            change();
        }
        finally
        {
            ForgetRealDirectories();
        }
    }

    private void ForgetRealDirectories()
    {
        Interlocked.Increment(ref _realDirectoriesGeneration);
        _realDirectories.Clear();
    }

    /// <summary>
    /// The node at <paramref name="os"/> itself, as lstat sees it: a link is a <see cref="FileInfo"/> whatever it
    /// points to (dangling included), a directory a <see cref="DirectoryInfo"/>; null when nothing is there.
    /// </summary>
    private static FileSystemInfo? Lstat(string os)
    {
        var file = new FileInfo(os);
        FileAttributes attributes = file.Attributes; // lstat; -1 when nothing is there
        if ((int)attributes == -1)
        {
            return null;
        }
        if (IsLink(file))
        {
            return file;
        }
        return (attributes & FileAttributes.Directory) != 0 ? new DirectoryInfo(os) : file;
    }

    /// <summary>What is at <paramref name="os"/> itself (a link is not followed); null when nothing is there.</summary>
    private static NodeKind? KindAt(string os)
        => OperatingSystem.IsLinux() ? LinuxStatx.Stat(os)?.Kind : Lstat(os) is { } info ? KindOf(info) : null;

    /// <summary>
    /// The node at <paramref name="os"/> itself, as lstat sees it, named <paramref name="name"/>; null when nothing is
    /// there. On Linux one statx: the real ctime and the space the file takes (a sparse file's holes take none).
    /// </summary>
    private static NodeInfo? StatNode(string os, string name)
    {
        if (OperatingSystem.IsLinux())
        {
            if (LinuxStatx.Stat(os) is not { } n)
            {
                return null;
            }
            // A link: lstat's own times, 0777, and the length of its target in bytes (its st_size).
            return new NodeInfo(name, n.Kind, n.Kind == NodeKind.Directory ? 0 : n.Size,
                n.Kind == NodeKind.Symlink ? (UnixFileMode)0b111_111_111 : n.Mode, n.ModifyUtc, n.AccessUtc, n.ChangeUtc)
            {
                AllocatedBytes = n.Kind == NodeKind.File ? n.AllocatedBytes : null,
            };
        }
        FileSystemInfo? info = Lstat(os);
        return info is null ? null : ToNode(info, name, KindOf(info));
    }

    /// <summary>What a node is, from its own attributes (never its target's).</summary>
    private static NodeKind KindOf(FileSystemInfo info)
        => IsLink(info) ? NodeKind.Symlink : info is DirectoryInfo ? NodeKind.Directory : NodeKind.File;

    /// <summary>True for a symbolic link (on Windows also a junction); other reparse points (placeholders) are not links.</summary>
    private static bool IsLink(FileSystemInfo info)
    {
        FileAttributes attributes = info.Attributes;
        return (int)attributes != -1 && (attributes & FileAttributes.ReparsePoint) != 0 && info.LinkTarget is not null;
    }

    private static NodeInfo ToNode(FileSystemInfo info, string name, NodeKind kind)
    {
        if (kind == NodeKind.Symlink)
        {
            // lstat's view: the link's own times, 0777, and the length of its target in bytes.
            string target = info.LinkTarget ?? "";
            return new NodeInfo(name, kind, System.Text.Encoding.UTF8.GetByteCount(target), (UnixFileMode)0b111_111_111,
                info.LastWriteTimeUtc, info.LastAccessTimeUtc, info.CreationTimeUtc);
        }
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
            throw Failure(e, $"facet '{Name}': {(what.Length == 0 ? "/" : what)}");
        }
    }

    private void Guard(string what, Action action) => Guard(what, () =>
    {
        action();
        return 0;
    });

    /// <summary>An OS failure as the engine's error, with <see cref="RootGone"/> applied.</summary>
    private MirrorException Failure(Exception e, string what) => RootGone(MirrorException.From(e, what));

    /// <summary>
    /// "Not found" while the facet's own folder is gone (deleted, or its disk unmounted under a running volume) is
    /// the facet failing, not a file missing: Unavailable, so the volume takes the facet out and fails over (a local
    /// one is rebuilt by a resync once its folder is back) instead of telling callers that their files do not exist.
    /// </summary>
    private MirrorException RootGone(MirrorException e)
        => e.Error == MirrorError.NotFound && RootLost() ? Gone(e) : e;

    private MirrorException Gone(Exception? inner = null)
        => new(MirrorError.Unavailable, $"facet '{Name}': its folder {_root} is gone (deleted, or its disk unmounted); the volume goes on without it", inner);

    /// <summary>The folder opened is not at its path any more: deleted, or replaced (its disk unmounted under it, say).</summary>
    private bool RootLost() => !PathProbe.IsDirectory(_root) || FolderHome.Replaced(_root, _opened);

    /// <summary>
    /// Before a name is made: a folder whose disk was unmounted under the running volume still exists (the empty mount
    /// point), so a new file would land on the disk below it, where nothing else of the tree is, without a "not found"
    /// to tell. One statx per create.
    /// </summary>
    private void EnsureRootHere()
    {
        if (FolderHome.Replaced(_root, _opened))
        {
            throw Gone();
        }
    }

    private MirrorException ErrnoException(int errno, string what) => errno == 2 ? RootGone(new MirrorException(MirrorError.NotFound, $"facet '{Name}': {what}: not found")) : errno switch
    {
        17 => new MirrorException(MirrorError.Exists, $"facet '{Name}': {what}: already exists"),
        20 => new MirrorException(MirrorError.NotDirectory, $"facet '{Name}': {what}: not a directory"),
        21 => new MirrorException(MirrorError.IsDirectory, $"facet '{Name}': {what}: is a directory"),
        22 => new MirrorException(MirrorError.InvalidArgument, $"facet '{Name}': {what}: invalid argument"),
        39 => new MirrorException(MirrorError.NotEmpty, $"facet '{Name}': {what}: directory not empty"),
        13 or 1 => new MirrorException(MirrorError.AccessDenied, $"facet '{Name}': {what}: permission denied"),
        _ => MirrorException.From(Errno.ToException(errno), $"facet '{Name}': {what}"), // ENOSPC and EDQUOT with what to do, EROFS, the OS's words
    };

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "unlink", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Unlink(string path);

        [LibraryImport("libc", EntryPoint = "access", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Access(string path, int mode);

        [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
        internal static partial int Fallocate(SafeFileHandle fd, int mode, long offset, long length);
    }
}
