using CloudMirrorFs.Mount.FileSystem;
using CloudMirrorFs.Mount.Linux;
using CloudMirrorFs.Mount.Windows;

namespace CloudMirrorFs.Mount;

/// <summary>Mounts a <see cref="MirrorFileSystem"/> with the platform's FUSE 3 layer.</summary>
public static class FuseMounter
{
    /// <summary>Mounts (Linux: libfuse3; Windows: WinFsp's FUSE 3 layer). One mount per process.</summary>
    public static IFuseMount Mount(MirrorFileSystem fs, string mountPoint, FuseMountOptions options)
    {
        ArgumentNullException.ThrowIfNull(fs);
        ArgumentNullException.ThrowIfNull(options);
        if (OperatingSystem.IsLinux())
        {
            return LinuxFuseMount.Mount(fs, mountPoint, options);
        }
        if (OperatingSystem.IsWindows())
        {
            return WinFspMount.Mount(fs, mountPoint, options);
        }
        throw new MountException($"mounting is supported on Linux (libfuse3) and Windows (WinFsp), not on {System.Runtime.InteropServices.RuntimeInformation.OSDescription}");
    }
}
