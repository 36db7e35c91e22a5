using CloudMirrorFs.Mount.FileSystem;

namespace CloudMirrorFs.Mount.Windows;

/// <summary>PLACEHOLDER being replaced by the WinFsp FUSE 3 binding.</summary>
internal sealed class WinFspMount
{
    public static IFuseMount Mount(MirrorFileSystem fs, string mountPoint, FuseMountOptions options)
        => throw new MountException("WinFsp binding under construction");
}
