using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Storage;

namespace CloudMirrorFs.Objects;

/// <summary>
/// A bucket kept in a folder (kind <c>folder</c>): the embedded default remote, and a real choice for a NAS or a USB
/// disk. Each object is a file at its key's path; a put writes a temp file, flushes it, renames it into place and
/// flushes the folder, so an object is either whole or absent after a crash. An unsynced put leaves the folder's flush
/// to <see cref="SyncAsync"/>, which flushes each folder once for all of them (a commit's block objects mostly share
/// one). Not meant to be read as plain files.
/// </summary>
public sealed class FolderObjectStore : IObjectStore, IFolderHome
{
    private const string TempSuffix = ".cmfs-tmp";
    private const int MadeFoldersKept = 65536;
    private readonly string _root;
    private (ulong Device, ulong Inode)? _ready; // the folder's identity when last made ready (FolderHome)
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _unsyncedFolders = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, byte> _madeFolders = new(StringComparer.Ordinal);

    /// <summary>A store rooted at <paramref name="root"/>.</summary>
    public FolderObjectStore(string root) => _root = Path.GetFullPath(root);

    /// <inheritdoc />
    public string Description => $"folder {_root}";

    /// <inheritdoc />
    public string? FileSystem { get; set; }

    /// <summary>Tests: the folders the next <see cref="SyncAsync"/> flushes.</summary>
    internal IReadOnlyCollection<string> UnsyncedFolders => [.. _unsyncedFolders.Keys];

    /// <inheritdoc />
    public ValueTask EnsureReadyAsync(bool createIfMissing, CancellationToken cancellationToken)
    {
        // A disk that is not mounted is unreachable, never an emptied store to set up again on the disk below it.
        string? home = Guard("looking at the folder", () => FolderHome.Verify(_root, FileSystem, Description));
        // A disk that does not answer is unreachable, never "missing": creating the folder again would hide it.
        FileAttributes? there = Guard("looking at the folder", () => PathProbe.Attributes(_root));
        if (there is { } a && (a & FileAttributes.Directory) == 0)
        {
            throw new MirrorException(MirrorError.NotDirectory, $"{Description}: is a file; point 'path' at a folder");
        }
        if (there is null)
        {
            if (!createIfMissing)
            {
                throw new MirrorException(MirrorError.NotFound, $"{Description} does not exist; create it, or set createIfMissing to true");
            }
            Guard("create", () => Directory.CreateDirectory(_root));
        }
        FileSystem = home;
        _ready = FolderHome.IdentityOf(_root);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public ValueTask PutAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        Put(key, [data], syncFolder: true);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>The two parts go down in one gathered write: the body is not copied.</remarks>
    public ValueTask PutAsync(string key, ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
    {
        Put(key, [head, body], syncFolder: true);
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    /// <remarks>On a background thread when the replicator asked for it (<see cref="BackgroundWork"/>).</remarks>
    public ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => new(BackgroundWork.RunAsync(() => Put(key, [data], syncFolder: false)));

    /// <inheritdoc />
    /// <remarks>On a background thread when the replicator asked for it (<see cref="BackgroundWork"/>).</remarks>
    public ValueTask PutUnsyncedAsync(string key, ReadOnlyMemory<byte> head, ReadOnlyMemory<byte> body, CancellationToken cancellationToken)
        => new(BackgroundWork.RunAsync(() => Put(key, [head, body], syncFolder: false)));

    /// <inheritdoc />
    public ValueTask SyncAsync(CancellationToken cancellationToken)
    {
        foreach (string dir in _unsyncedFolders.Keys)
        {
            // Removed before the flush: a put renamed into the folder after this point marks it again.
            if (_unsyncedFolders.TryRemove(dir, out _))
            {
                try
                {
                    Guard(dir, () => AtomicFile.SyncDirectory(dir));
                }
                catch (MirrorException e) when (e.InnerException is DirectoryNotFoundException && PathProbe.Attributes(dir) is null)
                {
                    // Removed since (by hand): nothing of it is left to flush, and its objects are the store's verify's
                    // to find missing. Kept, it would fail every flush from now on.
                    _madeFolders.TryRemove(dir, out _);
                }
                catch
                {
                    _unsyncedFolders.TryAdd(dir, 0);
                    throw;
                }
            }
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>
    /// Writes the parts to a temporary file, flushes it, renames it over the key and flushes the folder, or (not
    /// <paramref name="syncFolder"/>) leaves the folder to the next <see cref="SyncAsync"/>.
    /// </summary>
    private void Put(string key, IReadOnlyList<ReadOnlyMemory<byte>> parts, bool syncFolder)
    {
        string path = PathOf(key);
        EnsureRootHere();
        Guard(key, () =>
        {
            string dir = Path.GetDirectoryName(path)!;
            string tmp = path + "." + Guid.NewGuid().ToString("N")[..8] + TempSuffix;
            bool made = false;
            if (!_madeFolders.ContainsKey(dir))
            {
                MakeFolder(dir);
                made = true;
            }
            using (SafeFileHandle file = CreateTemp(dir, tmp, ref made))
            {
                using (BackgroundWork.EnterCpuWork()) // the copy into the page cache; the flush may wait for a disk beside others
                {
                    RandomAccess.Write(file, parts, 0);
                }
                RandomAccess.FlushToDisk(file);
            }
            RenameOver(tmp, path);
            // A folder made for this put is named in its parent's entries, which must be flushed too (each level up to
            // the root: a put may have made two), or a power cut can take the folder and the object with it.
            IEnumerable<string> folders = made ? [dir, .. AncestorsWithin(dir)] : [dir];
            foreach (string folder in folders)
            {
                if (syncFolder)
                {
                    AtomicFile.SyncDirectory(folder);
                }
                else
                {
                    _unsyncedFolders.TryAdd(folder, 0); // after the rename, so a flush that takes the mark covers it
                }
            }
        });
    }

    /// <summary>
    /// Creates the temporary file of a put in <paramref name="dir"/>, which this store made already (the puts of a
    /// file's blocks share one folder: asking each time cost a failed mkdir and a stat). A folder removed since is made
    /// again, and <paramref name="made"/> set. On Linux the file is opened with one call: its name is new and random
    /// and only this put knows it, so the lock and the checks .NET's open adds (flock, fstat, and unlock at close) are moot.
    /// </summary>
    private SafeFileHandle CreateTemp(string dir, string tmp, ref bool made)
    {
        try
        {
            return OpenNew(tmp);
        }
        catch (DirectoryNotFoundException)
        {
            _madeFolders.TryRemove(dir, out _);
            MakeFolder(dir);
            made = true;
            return OpenNew(tmp);
        }
    }

    /// <summary>Makes <paramref name="dir"/> (and what is missing above it) and remembers it.</summary>
    private void MakeFolder(string dir)
    {
        Directory.CreateDirectory(dir);
        RememberFolder(dir);
    }

    /// <summary>The folders above <paramref name="dir"/> up to the store's root, the root included.</summary>
    private IEnumerable<string> AncestorsWithin(string dir)
    {
        for (string? d = Path.GetDirectoryName(dir); d is not null && d.Length >= _root.Length; d = Path.GetDirectoryName(d))
        {
            yield return d;
        }
    }

    private static SafeFileHandle OpenNew(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None);
        }
        int fd = Libc.Open(path, Libc.OWrOnly | Libc.OCreat | Libc.OExcl | Libc.OCloExec, 0x1B6); // 0666, less the umask, as .NET creates
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            string message = Marshal.GetPInvokeErrorMessage(errno);
            throw errno switch
            {
                2 => new DirectoryNotFoundException(message),
                36 => new PathTooLongException(message), // ENAMETOOLONG: refused, as .NET's open reports it, not retried
                _ => Errno.ToException(errno),
            };
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    private void RememberFolder(string dir)
    {
        if (_madeFolders.Count >= MadeFoldersKept)
        {
            _madeFolders.Clear(); // bounded: a store of many files asks the file system again, as it always did
        }
        _madeFolders.TryAdd(dir, 0);
    }

    /// <summary>Renames <paramref name="from"/> over <paramref name="to"/> in one call on Linux (.NET's move adds a stat of the source).</summary>
    private static void RenameOver(string from, string to)
    {
        if (!OperatingSystem.IsLinux())
        {
            File.Move(from, to, overwrite: true);
        }
        else if (Libc.Rename(from, to) != 0)
        {
            throw Errno.ToException(Marshal.GetLastPInvokeError());
        }
    }

    /// <inheritdoc />
    public ValueTask<byte[]?> GetAsync(string key, long offset, long? length, CancellationToken cancellationToken)
    {
        string path = PathOf(key);
        return ValueTask.FromResult(Guard(key, () =>
        {
            FileStream fs;
            try
            {
                fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete, bufferSize: 0);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                EnsureRootHere(); // not an object missing from the store, but the store missing its disk
                return null; // only "not found" means no object: any other error is the disk's, and surfaces
            }
            using var _ = fs;
            long size = fs.Length;
            long start = Math.Min(offset, size);
            long count = Math.Min(length ?? size - start, size - start);
            byte[] buffer = GC.AllocateUninitializedArray<byte>((int)count); // every byte is read into it
            fs.Position = start;
            fs.ReadExactly(buffer);
            return (byte[]?)buffer;
        }));
    }

    /// <inheritdoc />
    public async IAsyncEnumerable<ObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        // Start from the deepest folder the prefix names, then filter by the full prefix.
        int slash = prefix.LastIndexOf('/');
        string dir = slash < 0 ? _root : PathOf(prefix[..slash]);
        if (!Guard(prefix, () => PathProbe.IsDirectory(dir)))
        {
            EnsureRootHere();
            yield break; // nothing under that prefix (a failing disk throws instead of looking empty)
        }
        List<ObjectInfo> found = Guard(prefix, () => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
            .Where(f => !f.EndsWith(TempSuffix, StringComparison.Ordinal))
            .Select(f => (File: f, Key: Path.GetRelativePath(_root, f).Replace('\\', '/')))
            .Where(x => x.Key.StartsWith(prefix, StringComparison.Ordinal))
            .Select(x =>
            {
                var info = new FileInfo(x.File);
                return new ObjectInfo(x.Key, info.Length, info.LastWriteTimeUtc);
            })
            .OrderBy(o => o.Key, StringComparer.Ordinal)
            .ToList());
        foreach (ObjectInfo o in found)
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return o;
        }
    }

    /// <inheritdoc />
    public ValueTask DeleteAsync(string key, CancellationToken cancellationToken)
    {
        string path = PathOf(key);
        Guard(key, () => File.Delete(path));
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public async ValueTask DeleteManyAsync(IReadOnlyList<string> keys, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(keys);
        foreach (string k in keys)
        {
            await DeleteAsync(k, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <inheritdoc />
    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    /// <summary>
    /// The folder made ready is still at its path. One whose disk was unmounted under the running volume is the empty
    /// mount point, where a put would start a store on the disk below it and a get would find nothing.
    /// </summary>
    private void EnsureRootHere()
    {
        if (FolderHome.Replaced(_root, _ready))
        {
            throw new MirrorException(MirrorError.Unavailable, $"{Description}: the folder is gone (deleted, or its disk unmounted)");
        }
    }

    private string PathOf(string key)
    {
        if (key.Length == 0 || key.Contains('\\') || key.Split('/').Any(p => p is "" or "." or ".."))
        {
            throw new MirrorException(MirrorError.InvalidPath, $"{Description}: invalid object key '{key}'");
        }
        return Path.Join(_root, key);
    }

    private T Guard<T>(string what, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException && e is not MirrorException)
        {
            throw MirrorException.From(e, $"{Description}: {what}");
        }
    }

    private void Guard(string what, Action action) => Guard(what, () =>
    {
        action();
        return 0;
    });
}
