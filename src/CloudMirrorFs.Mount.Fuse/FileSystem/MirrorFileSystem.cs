using System.Collections.Concurrent;
using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Volume;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace CloudMirrorFs.Mount.FileSystem;

/// <summary>
/// The file system between the engine and the OS adapters: inodes (the volume's stable file ids; the root is 1, as
/// FUSE's root inode is) and paths to file ids, open handles, attributes, directory listings, statfs, and every
/// error as a platform-neutral <see cref="FsError"/>. The FUSE adapters only translate; every rule lives here.
/// <para>
/// POSIX keeps an unlinked file alive while it is open. The engine deletes by name, so a file unlinked (or renamed
/// over) while open is first moved to <see cref="HiddenDirectory"/> at the root, invisible through the mount, and
/// deleted at its last release; leftovers of a killed mount are deleted at the next mount.
/// </para>
/// </summary>
public sealed partial class MirrorFileSystem
{
    /// <summary>The root folder that holds files unlinked while open (never listed, never looked up).</summary>
    public const string HiddenDirectory = ".cmfs-unlinked";

    /// <summary>The root inode.</summary>
    public const long RootInode = 1;

    private readonly MirrorVolume _volume;
    private readonly ILogger _log;
    private readonly Lock _openLock = new();
    private readonly Lock _hiddenLock = new();
    private readonly Dictionary<long, int> _openCounts = [];
    private readonly HashSet<long> _orphans = [];
    private readonly ConcurrentDictionary<long, FsDirectoryEntry[]> _directories = new();
    private long _nextDirectoryHandle;

    /// <summary>Creates the file system over an open volume; <paramref name="uid"/>/<paramref name="gid"/> own every node.</summary>
    public MirrorFileSystem(MirrorVolume volume, uint uid, uint gid, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(volume);
        if (volume.BlockSize <= 0 || MirrorVolume.RootId != RootInode)
        {
            throw new InvalidOperationException("the volume's root id must be FUSE's root inode (1)");
        }
        _volume = volume;
        Uid = uid;
        Gid = gid;
        _log = logger ?? NullLogger.Instance;
    }

    /// <summary>The owner reported for every node (the user who mounted the volume).</summary>
    public uint Uid { get; }

    /// <summary>The group reported for every node.</summary>
    public uint Gid { get; }

    /// <summary>The volume's block size: the preferred I/O size reported as st_blksize.</summary>
    public int BlockSize => _volume.BlockSize;

    /// <summary>Deletes what a killed mount left in <see cref="HiddenDirectory"/> (files unlinked while open).</summary>
    public async Task CleanOrphansAsync(CancellationToken cancellationToken = default)
    {
        if (_volume.LookupId(HiddenDirectory) is null)
        {
            return;
        }
        foreach (NodeInfo e in await _volume.ListAsync(HiddenDirectory, cancellationToken).ConfigureAwait(false))
        {
            string path = VolumePath.Combine(HiddenDirectory, e.Name);
            if (e.Kind == NodeKind.Directory)
            {
                await _volume.DeleteDirectoryAsync(path, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await _volume.DeleteFileAsync(path, cancellationToken).ConfigureAwait(false);
            }
        }
        await _volume.DeleteDirectoryAsync(HiddenDirectory, cancellationToken).ConfigureAwait(false);
        _log.LogInformation("deleted files a previous mount left unlinked while open");
    }

    /// <summary>Resolves a mount-relative path ("/a/b", as WinFsp's FUSE layer passes it) to an inode.</summary>
    public FsError ResolvePath(string path, out long inode)
    {
        inode = 0;
        string relative = path.Trim('/');
        if (relative.Length == 0)
        {
            inode = RootInode;
            return FsError.None;
        }
        if (IsHidden(relative))
        {
            return FsError.NotFound;
        }
        try
        {
            long? id = _volume.LookupId(relative);
            if (id is null)
            {
                return FsError.NotFound;
            }
            inode = id.Value;
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "resolve", path);
        }
    }

    /// <summary>Looks a name up in a directory.</summary>
    public FsError Lookup(long parent, string name, out FsAttributes attributes)
    {
        attributes = default;
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
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), id.Value);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "lookup", path);
        }
    }

    /// <summary>The attributes of an inode.</summary>
    public FsError GetAttributes(long inode, out FsAttributes attributes)
    {
        attributes = default;
        string? path = PathOf(inode);
        if (path is null)
        {
            return FsError.NotFound;
        }
        try
        {
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), inode);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "getattr", path);
        }
    }

    /// <summary>
    /// access(2): may the caller (<paramref name="callerUid"/>, <paramref name="callerGid"/>) read (4), write (2) or
    /// search/execute (1) the node? 0 asks only whether it exists. The rules are POSIX's, for a volume whose every node
    /// belongs to <see cref="Uid"/>/<see cref="Gid"/>: the owner's, the group's or the others' bits, in that order of
    /// precedence; root may do anything except execute a file that nobody may execute. Supplementary groups are not
    /// consulted. Used where the kernel leaves the check to us (a mount without default_permissions).
    /// </summary>
    public FsError CheckAccess(long inode, int mask, uint callerUid, uint callerGid)
    {
        FsError err = GetAttributes(inode, out FsAttributes a);
        if (err != FsError.None || (mask & 7) == 0)
        {
            return err;
        }
        int mode = (int)a.Mode;
        if (callerUid == 0)
        {
            bool execute = (mask & 1) != 0 && a.Kind != NodeKind.Directory;
            return execute && (mode & 0b001_001_001) == 0 ? FsError.AccessDenied : FsError.None;
        }
        int granted = callerUid == a.Uid ? (mode >> 6) & 7 : callerGid == a.Gid ? (mode >> 3) & 7 : mode & 7;
        return (mask & 7 & ~granted) == 0 ? FsError.None : FsError.AccessDenied;
    }

    /// <summary>Changes size, mode or times; an owner change to anyone but the mounting user is refused.</summary>
    public FsError SetAttributes(long inode, in SetAttributesRequest request, out FsAttributes attributes)
    {
        attributes = default;
        string? path = PathOf(inode);
        if (path is null)
        {
            return FsError.NotFound;
        }
        if ((request.Uid is { } uid && uid != Uid) || (request.Gid is { } gid && gid != Gid))
        {
            return FsError.NotPermitted; // one owner per volume: see docs/mount.md
        }
        try
        {
            if (request.Size is { } size)
            {
                NodeInfo current = Wait(_volume.StatAsync(path));
                if (current.Kind == NodeKind.Directory)
                {
                    return FsError.IsDirectory;
                }
                Wait(_volume.SetLengthAsync(inode, size));
            }
            var change = new AttributeChange
            {
                Mode = request.Permissions is { } p ? (UnixFileMode)((int)p & 0xFFF) : null,
                LastAccessUtc = request.LastAccessUtc,
                LastWriteUtc = request.LastWriteUtc,
            };
            if (!change.IsEmpty)
            {
                Wait(_volume.SetAttributesAsync(path, change));
            }
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), inode);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "setattr", path);
        }
    }

    /// <summary>Creates a directory.</summary>
    public FsError MakeDirectory(long parent, string name, UnixFileMode mode, out FsAttributes attributes)
    {
        attributes = default;
        FsError err = NewChildPath(parent, name, out string path);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            long id = Wait(_volume.CreateDirectoryAsync(path, Permissions(mode)));
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), id);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "mkdir", path);
        }
    }

    /// <summary>mknod: regular files only; FIFOs, sockets and device nodes are refused.</summary>
    public FsError MakeNode(long parent, string name, uint mode, out FsAttributes attributes)
    {
        attributes = default;
        if ((mode & 0xF000) is not (0 or 0x8000))
        {
            return FsError.NotPermitted;
        }
        FsError err = NewChildPath(parent, name, out string path);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            long id = Wait(_volume.CreateFileAsync(path, Permissions((UnixFileMode)mode)));
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), id);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "mknod", path);
        }
    }

    /// <summary>
    /// create(2) with O_CREAT: creates the file and opens it. When the name exists already (another thread won the
    /// race), an exclusive create fails with Exists and a plain one opens the existing file.
    /// </summary>
    public FsError Create(long parent, string name, UnixFileMode mode, bool exclusive, bool truncate, out FsAttributes attributes)
    {
        attributes = default;
        FsError err = NewChildPath(parent, name, out string path);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            long id;
            try
            {
                id = Wait(_volume.CreateFileAsync(path, Permissions(mode)));
            }
            catch (MirrorException e) when (e.Error == MirrorError.Exists && !exclusive)
            {
                id = _volume.LookupId(path) ?? throw new MirrorException(MirrorError.NotFound, $"{path}: vanished during create", e);
                err = Open(id, truncate);
                if (err != FsError.None)
                {
                    return err;
                }
                attributes = ToAttributes(Wait(_volume.StatAsync(path)), id);
                return FsError.None;
            }
            AddOpen(id);
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), id);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "create", path);
        }
    }

    /// <summary>Opens a file (counted until <see cref="Release"/>); O_TRUNC empties it.</summary>
    public FsError Open(long inode, bool truncate)
    {
        string? path = PathOf(inode);
        if (path is null)
        {
            return FsError.NotFound;
        }
        try
        {
            NodeInfo info = Wait(_volume.StatAsync(path));
            if (info.Kind == NodeKind.Directory)
            {
                return FsError.IsDirectory;
            }
            if (truncate && info.Length != 0)
            {
                Wait(_volume.SetLengthAsync(inode, 0));
            }
            AddOpen(inode);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "open", path);
        }
    }

    /// <summary>The last close of a handle: a file unlinked while open is deleted now.</summary>
    public FsError Release(long inode)
    {
        bool delete;
        lock (_openLock)
        {
            if (!_openCounts.TryGetValue(inode, out int count))
            {
                return FsError.BadHandle;
            }
            if (count > 1)
            {
                _openCounts[inode] = count - 1;
                return FsError.None;
            }
            _openCounts.Remove(inode);
            delete = _orphans.Remove(inode);
        }
        if (delete)
        {
            string hidden = OrphanPath(inode);
            try
            {
                lock (_hiddenLock)
                {
                    Wait(_volume.DeleteFileAsync(hidden));
                    RemoveHiddenDirectoryIfEmpty();
                }
            }
            catch (Exception e)
            {
                return Fail(e, "release", hidden);
            }
        }
        return FsError.None;
    }

    /// <summary>Reads into <paramref name="buffer"/>; returns the byte count (0 at or past the end).</summary>
    public FsError Read(long inode, long offset, Memory<byte> buffer, out int count)
    {
        count = 0;
        try
        {
            ValueTask<int> read = _volume.ReadAsync(inode, offset, buffer);
            count = read.IsCompletedSuccessfully ? read.Result : read.AsTask().GetAwaiter().GetResult();
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "read", inode);
        }
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>; acknowledged as DESIGN.md defines.</summary>
    public FsError Write(long inode, long offset, ReadOnlyMemory<byte> data)
    {
        try
        {
            ValueTask write = _volume.WriteAsync(inode, offset, data);
            if (!write.IsCompletedSuccessfully)
            {
                write.AsTask().GetAwaiter().GetResult();
            }
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "write", inode);
        }
    }

    /// <summary>
    /// fsync and fdatasync of a file, fsync of a directory: that inode's barrier (<see cref="MirrorVolume.SyncFileAsync"/>),
    /// which waits for that file's bytes and every record and name change, not for other files' bytes.
    /// </summary>
    public FsError Sync(long inode)
    {
        try
        {
            Wait(_volume.SyncFileAsync(inode));
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "fsync", inode);
        }
    }

    /// <summary>
    /// fallocate: mode 0 (reserve the range's space on the local facets, as <c>posix_fallocate</c> promises, and extend
    /// the length to its end), <c>FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE</c> (the range reads as
    /// zeros and its space is freed) and <c>FALLOC_FL_ZERO_RANGE</c> (the range reads as zeros and stays allocated;
    /// without <c>FALLOC_FL_KEEP_SIZE</c> the file grows to the range's end). <c>FALLOC_FL_KEEP_SIZE</c> alone
    /// (reserving space past the end), collapsing, inserting and unsharing ranges answer <c>EOPNOTSUPP</c>.
    /// </summary>
    public FsError Allocate(long inode, int mode, long offset, long length)
    {
        const int keepSize = 0x01, punchHole = 0x02, zeroRange = 0x10;
        if (mode is not (0 or (punchHole | keepSize) or zeroRange or (zeroRange | keepSize)))
        {
            return FsError.NotSupported;
        }
        if (offset < 0 || length <= 0 || offset > long.MaxValue - length)
        {
            return FsError.InvalidArgument;
        }
        FsError err = GetAttributes(inode, out FsAttributes attributes);
        if (err != FsError.None)
        {
            return err;
        }
        if (attributes.Kind != NodeKind.File)
        {
            return FsError.IsDirectory;
        }
        try
        {
            if (mode == 0)
            {
                Wait(_volume.AllocateAsync(inode, offset, length));
            }
            else if (offset < attributes.Size)
            {
                Wait(_volume.ZeroRangeAsync(inode, offset, Math.Min(length, attributes.Size - offset), deallocate: (mode & punchHole) != 0));
            }
            if ((mode & keepSize) == 0 && offset + length > attributes.Size)
            {
                Wait(_volume.SetLengthAsync(inode, offset + length));
            }
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "fallocate", inode);
        }
    }

    /// <summary>Capacity: the fullest Synchronised local facet's numbers.</summary>
    public FsError StatFs(out SpaceInfo space)
    {
        space = default;
        try
        {
            space = Wait(_volume.StatFsAsync());
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "statfs", RootInode);
        }
    }

    /// <summary>How many handles of an inode are open (tests and status).</summary>
    internal int OpenCount(long inode)
    {
        lock (_openLock)
        {
            return _openCounts.GetValueOrDefault(inode);
        }
    }

    private void AddOpen(long inode)
    {
        lock (_openLock)
        {
            _openCounts[inode] = _openCounts.GetValueOrDefault(inode) + 1;
        }
    }

    private bool IsOpen(long inode)
    {
        lock (_openLock)
        {
            return _openCounts.ContainsKey(inode);
        }
    }

    private string? PathOf(long inode) => inode == RootInode ? "" : _volume.PathOf(inode);

    private static string OrphanPath(long inode) => VolumePath.Combine(HiddenDirectory, inode.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static bool IsHidden(string relativePath)
        => relativePath == HiddenDirectory || relativePath.StartsWith(HiddenDirectory + "/", StringComparison.Ordinal);

    /// <summary>The volume path of <paramref name="name"/> in directory <paramref name="parent"/>, for a lookup.</summary>
    private FsError ChildPath(long parent, string name, out string path)
    {
        path = "";
        if (name.Length == 0 || name == "." || name == ".." || name.Contains('/', StringComparison.Ordinal) || name.Contains('\0', StringComparison.Ordinal))
        {
            return FsError.InvalidArgument;
        }
        if (Encoding.UTF8.GetByteCount(name) > 255)
        {
            return FsError.NameTooLong;
        }
        if (parent == RootInode && name == HiddenDirectory)
        {
            return FsError.NotFound;
        }
        string? dir = PathOf(parent);
        if (dir is null)
        {
            return FsError.NotFound;
        }
        path = VolumePath.Combine(dir, name);
        return FsError.None;
    }

    /// <summary>As <see cref="ChildPath"/>, for a name about to be created (the hidden name is refused).</summary>
    private FsError NewChildPath(long parent, string name, out string path)
    {
        if (parent == RootInode && name == HiddenDirectory)
        {
            path = "";
            return FsError.NotPermitted;
        }
        return ChildPath(parent, name, out path);
    }

    private static UnixFileMode Permissions(UnixFileMode mode) => (UnixFileMode)((int)mode & 0xFFF);

    private FsAttributes ToAttributes(NodeInfo info, long inode)
    {
        // 1 for directories, as btrfs reports: it tells find(1) not to count subdirectories from the link count.
        int links = 1;
        if (info.Kind == NodeKind.File)
        {
            lock (_openLock)
            {
                links = _orphans.Contains(inode) ? 0 : 1;
            }
        }
        return new FsAttributes(inode, info.Kind, info.Kind == NodeKind.Directory ? 4096 : info.Length, info.Mode, links, Uid, Gid,
            info.LastAccessUtc, info.LastWriteUtc, info.ChangeUtc)
        {
            AllocatedBytes = info.AllocatedBytes,
        };
    }

    private static T Wait<T>(ValueTask<T> task) => task.IsCompletedSuccessfully ? task.Result : task.AsTask().GetAwaiter().GetResult();

    private static void Wait(ValueTask task)
    {
        if (!task.IsCompletedSuccessfully)
        {
            task.AsTask().GetAwaiter().GetResult();
        }
    }

    private FsError Fail(Exception e, string operation, long inode) => Fail(e, operation, $"inode {inode}");

    /// <summary>The one place an exception becomes a platform-neutral error (logged when it is not the caller's own).</summary>
    private FsError Fail(Exception e, string operation, string what)
    {
        FsError error = Map(e);
        if (error is FsError.IoError or FsError.NoSpace or FsError.ReadOnly)
        {
            _log.LogWarning("{Operation} {What}: {Message}", operation, what.Length == 0 ? "/" : what, e.Message);
        }
        return error;
    }

    /// <summary>Maps an engine or OS exception to a platform-neutral error.</summary>
    internal static FsError Map(Exception e) => e switch
    {
        MirrorException m => m.Error switch
        {
            MirrorError.NotFound => FsError.NotFound,
            MirrorError.Exists => FsError.Exists,
            MirrorError.NotEmpty => FsError.NotEmpty,
            MirrorError.NotDirectory => FsError.NotDirectory,
            MirrorError.IsDirectory => FsError.IsDirectory,
            MirrorError.InvalidPath => FsError.InvalidArgument,
            MirrorError.InvalidArgument => FsError.InvalidArgument,
            MirrorError.NoSpace => FsError.NoSpace,
            MirrorError.AccessDenied => FsError.NotPermitted,
            MirrorError.NotSupported => FsError.NotSupported,
            MirrorError.Unavailable => FsError.IoError,
            _ => FsError.IoError,
        },
        FileNotFoundException or DirectoryNotFoundException => FsError.NotFound,
        UnauthorizedAccessException => FsError.NotPermitted,
        ArgumentException => FsError.InvalidArgument,
        _ => FsError.IoError,
    };
}
