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
    /// EOPNOTSUPP). Any other failure throws: a missing folder as <see cref="DirectoryNotFoundException"/>, a failed
    /// flush (EIO: the disk may not hold the names) as an <see cref="IOException"/> whose HResult is the errno; both
    /// name the folder.
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
            string message = $"cannot open the folder {dir} to flush its entries: {Marshal.GetPInvokeErrorMessage(errno)}";
            throw errno == ENoEnt ? new DirectoryNotFoundException(message) : new IOException(message, errno);
        }
        try
        {
            int errno = InjectedFsyncErrno != 0 ? InjectedFsyncErrno : Libc.Fsync(fd) == 0 ? 0 : Marshal.GetLastPInvokeError();
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

    private const int ENoEnt = 2, EInval = 22, EOpNotSupp = 95;

    /// <summary>Tests: a nonzero errno that this thread's next folder flushes fail with, in place of fsync's own result.</summary>
    [ThreadStatic]
    internal static int InjectedFsyncErrno;
}
