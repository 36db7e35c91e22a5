namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// A real, small file system (a tmpfs of a few MiB) mounted for one test, so that a disk fills for real: ENOSPC from
/// the kernel, not an injected exception. Needs root, as the FUSE tests do; without it the test fails saying so.
/// </summary>
public sealed class SmallDisk : IDisposable
{
    private readonly bool _ownsFolder;

    /// <summary>Mounts a tmpfs of <paramref name="megabytes"/> MiB at <paramref name="at"/> (created), or at a fresh temp folder.</summary>
    public SmallDisk(int megabytes, string? at = null)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("SmallDisk mounts a tmpfs: Linux only");
        }
        _ownsFolder = at is null;
        Path = at ?? System.IO.Path.Combine(System.IO.Path.GetTempPath(), "cmfs-test", $"disk-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Path);
        Run("mount", "-t", "tmpfs", "-o", $"size={megabytes}m", "tmpfs", Path);
    }

    public string Path { get; }

    /// <summary>A file of <paramref name="megabytes"/> MiB (all the space left when null) that takes the space until it is deleted.</summary>
    public string Ballast(int? megabytes = null)
    {
        string file = System.IO.Path.Combine(Path, "ballast");
        using var fs = new FileStream(file, FileMode.Create, FileAccess.Write, FileShare.None, bufferSize: 0);
        byte[] chunk = new byte[64 << 10];
        Random.Shared.NextBytes(chunk);
        try
        {
            for (long i = 0; megabytes is null || i < megabytes * 16L; i++)
            {
                fs.Write(chunk);
            }
        }
        catch (IOException) when (megabytes is null)
        {
            // full: what fitted stays
        }
        return file;
    }

    /// <summary>Remounts the disk read-only (true) or read-write (false), as an operator or a failing disk would.</summary>
    public void ReadOnly(bool readOnly) => Run("mount", "-o", readOnly ? "remount,ro" : "remount,rw", Path);

    public void Dispose()
    {
        try
        {
            Run("umount", "-l", Path);
        }
        finally
        {
            if (_ownsFolder)
            {
                Directory.Delete(Path);
            }
        }
    }

    private static void Run(string command, params string[] args) => MountCommand.Run(command, args);
}
