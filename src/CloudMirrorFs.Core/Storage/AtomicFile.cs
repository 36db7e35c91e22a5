using System.Runtime.InteropServices;

namespace CloudMirrorFs.Storage;

/// <summary>Replaces small state files atomically: write a temp file, flush it to disk, rename it over the old one, flush the folder.</summary>
public static class AtomicFile
{
    /// <summary>Atomically replaces <paramref name="path"/> with <paramref name="content"/>.</summary>
    public static void Write(string path, ReadOnlySpan<byte> content)
    {
        string dir = Path.GetDirectoryName(path)!;
        Directory.CreateDirectory(dir);
        string tmp = path + ".tmp";
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0))
        {
            fs.Write(content);
            fs.Flush(flushToDisk: true);
        }
        File.Move(tmp, path, overwrite: true);
        SyncDirectory(dir);
    }

    /// <summary>
    /// Flushes a folder's entries (new, renamed, deleted names) to stable storage, so that a rename into it survives a
    /// power cut. A no-op on Windows, and where the file system cannot flush a folder at all (it refuses with EINVAL or
    /// EOPNOTSUPP), or where it may not open the folder to flush it (a folder its owner made unreadable: EACCES, EPERM).
    /// Any other failure throws: a missing folder (or a file where one was) as <see cref="DirectoryNotFoundException"/>,
    /// a failed flush (EIO: the disk may not hold the names) as an <see cref="IOException"/> whose HResult is the errno;
    /// both name the folder.
    /// </summary>
    public static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        int fd = Libc.Open(dir, 0 /* O_RDONLY */, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is EAcces or EPerm)
            {
                return; // a folder its owner made unreadable (chmod 0, or -w-x) cannot be opened to flush: left as the OS keeps it
            }
            string message = $"cannot open the folder {dir} to flush its entries: {Marshal.GetPInvokeErrorMessage(errno)}";
            throw errno is ENoEnt or ENotDir ? new DirectoryNotFoundException(message) : new IOException(message, errno);
        }
        try
        {
            int injected = InjectedFor(dir);
            int errno = injected != 0 ? injected : Libc.Fsync(fd) == 0 ? 0 : Marshal.GetLastPInvokeError();
            if (errno != 0 && errno != EInval && !(OperatingSystem.IsLinux() && errno == EOpNotSupp))
            {
                throw new IOException(
                    $"flushing the folder {dir} to disk failed ({Marshal.GetPInvokeErrorMessage(errno)}): names renamed into it may not survive a power cut; check the disk",
                    errno);
            }
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }

    private const int EPerm = 1, ENoEnt = 2, EAcces = 13, ENotDir = 20, EInval = 22, EOpNotSupp = 95;

    private static readonly AsyncLocal<(int Errno, string? Folder)> s_injected = new();

    /// <summary>Tests: a nonzero errno that folder flushes made from this asynchronous flow fail with, in place of fsync's own result.</summary>
    internal static int InjectedFsyncErrno
    {
        get => s_injected.Value.Errno;
        set => s_injected.Value = (value, null);
    }

    /// <summary>Tests: as <see cref="InjectedFsyncErrno"/>, for the flushes of one folder only.</summary>
    internal static void InjectFsyncErrno(int errno, string folder) => s_injected.Value = (errno, Path.GetFullPath(folder));

    private static int InjectedFor(string dir)
        => s_injected.Value is (not 0, var folder) && (folder is null || folder == Path.GetFullPath(dir)) ? s_injected.Value.Errno : 0;
}
