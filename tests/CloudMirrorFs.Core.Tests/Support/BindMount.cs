namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// A "disk" for one test: a folder bind-mounted at a mount point, so that it can be unmounted (the mount point then
/// stays, empty, on the file system below, as when a real disk is not mounted) and mounted again with what it held.
/// Needs root, as the FUSE tests do; without it the test fails saying so.
/// </summary>
public sealed class BindMount : IDisposable
{
    private readonly string _source;

    /// <summary>Mounts <paramref name="source"/> (created) at <paramref name="at"/> (created).</summary>
    public BindMount(string source, string at)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException("BindMount uses mount --bind: Linux only");
        }
        _source = source;
        Path = at;
        Directory.CreateDirectory(source);
        Directory.CreateDirectory(at);
        Mount();
    }

    /// <summary>The mount point.</summary>
    public string Path { get; }

    /// <summary>True while mounted.</summary>
    public bool Mounted { get; private set; }

    /// <summary>Mounts the disk again, with what it held.</summary>
    public void Mount()
    {
        MountCommand.Run("mount", "--bind", _source, Path);
        Mounted = true;
    }

    /// <summary>Unmounts the disk at once, as a pulled cable or a failed mount at boot leaves it (umount -l: open files do not hold it).</summary>
    public void Unmount()
    {
        MountCommand.Run("umount", "-l", Path);
        Mounted = false;
    }

    public void Dispose()
    {
        if (Mounted)
        {
            Unmount();
        }
    }
}
