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

    /// <summary>Flushes a folder's entries (new, renamed, deleted names) to stable storage. A no-op where the OS cannot.</summary>
    public static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows())
        {
            return;
        }
        int fd = Libc.Open(dir, 0 /* O_RDONLY */, 0);
        if (fd < 0)
        {
            return;
        }
        try
        {
            _ = Libc.Fsync(fd);
        }
        finally
        {
            _ = Libc.Close(fd);
        }
    }
}
