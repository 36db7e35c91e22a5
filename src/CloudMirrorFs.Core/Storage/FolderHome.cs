using System.Runtime.InteropServices;

namespace CloudMirrorFs.Storage;

/// <summary>
/// Which file system a folder is on, so that a disk that is not mounted is not taken for an empty one. A folder on
/// its own disk (say <c>/mnt/disk/cmfs</c>) is, while that disk is unmounted, the empty mount point on the parent's
/// file system, or nothing under it: rebuilding the facet there would fill the system disk with the whole volume.
/// The mount point is named by its path (device numbers change from boot to boot); a folder's identity while it is
/// open is its device and inode, which catch a disk unmounted under a running volume.
/// </summary>
public static partial class FolderHome
{
    /// <summary>
    /// The mount point of the file system that holds <paramref name="path"/>, or would hold it if it were created
    /// (the one of its nearest existing parent), links resolved; on Windows the path's root (a drive letter or a share).
    /// Null when the mount table cannot be read (a sandbox without /proc): then nothing is checked.
    /// </summary>
    public static string? MountPointOf(string path)
    {
        string full = Path.GetFullPath(path);
        if (OperatingSystem.IsWindows())
        {
            return Path.GetPathRoot(full) ?? full;
        }
        string existing = full;
        while (PathProbe.Attributes(existing) is null && Path.GetDirectoryName(existing) is { } parent)
        {
            existing = parent;
        }
        string real = RealPath(existing);
        string best = "/";
        DriveInfo[] drives;
        try
        {
            drives = DriveInfo.GetDrives();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or PlatformNotSupportedException)
        {
            return null;
        }
        foreach (DriveInfo drive in drives)
        {
            string mount = drive.Name.Length > 1 ? drive.Name.TrimEnd('/') : drive.Name;
            if (mount.Length > best.Length && Within(real, mount))
            {
                best = mount;
            }
        }
        return best;
    }

    /// <summary>
    /// The mount point of the file system that holds <paramref name="folder"/> now; throws Unavailable, naming
    /// <paramref name="owner"/>, when the folder was on a file system mounted at <paramref name="expected"/> that is not
    /// mounted any more (the folder would be on the one below it).
    /// </summary>
    public static string? Verify(string folder, string? expected, string owner)
    {
        string? home = MountPointOf(folder);
        if (home is null)
        {
            return expected; // not known this time: the record stands
        }
        if (expected is not null && IsStrictlyUnder(expected, home))
        {
            throw new MirrorException(MirrorError.Unavailable,
                $"{owner}: {folder} was on the file system mounted at {expected}, which is not mounted now (the folder would be on {home}'s); mount that disk again and it catches up, or point 'path' at another folder to rebuild it there");
        }
        return home;
    }

    /// <summary>
    /// True when <paramref name="mountPoint"/> lies strictly under <paramref name="other"/>: a folder once on the file
    /// system mounted at <paramref name="mountPoint"/> that is now on <paramref name="other"/>'s is missing its disk.
    /// </summary>
    public static bool IsStrictlyUnder(string mountPoint, string other)
        => mountPoint.Length > other.Length && Within(mountPoint, other);

    /// <summary>The device and inode of the folder at <paramref name="path"/>; null where they cannot be read (not Linux, or nothing there).</summary>
    public static (ulong Device, ulong Inode)? IdentityOf(string path)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }
        try
        {
            return LinuxStatx.Stat(path, follow: true) is { } node ? (node.Device, node.Inode) : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>
    /// True when the folder at <paramref name="path"/> is not the one whose identity was <paramref name="opened"/> (deleted,
    /// or its disk unmounted so that the path now reaches the mount point below); false when nothing was recorded.
    /// </summary>
    public static bool Replaced(string path, (ulong Device, ulong Inode)? opened)
        => opened is { } o && IdentityOf(path) != o;

    private static bool Within(string path, string folder)
        => folder == "/" || path == folder || (path.StartsWith(folder, StringComparison.Ordinal) && path[folder.Length] == '/');

    private static string RealPath(string path)
    {
        IntPtr resolved = Native.RealPath(path, IntPtr.Zero);
        if (resolved == IntPtr.Zero)
        {
            return path; // vanished meanwhile: the lexical path is the best answer left
        }
        try
        {
            return Marshal.PtrToStringUTF8(resolved) ?? path;
        }
        finally
        {
            Marshal.FreeHGlobal(resolved); // realpath's buffer comes from malloc
        }
    }

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "realpath", StringMarshalling = StringMarshalling.Utf8)]
        internal static partial IntPtr RealPath(string path, IntPtr resolved);
    }
}
