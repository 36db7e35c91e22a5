using CloudMirrorFs.Mount.FileSystem;

namespace CloudMirrorFs.Mount.Windows;

/// <summary>
/// The one place a platform-neutral <see cref="FsError"/> becomes a WinFsp errno. A native Windows program's FUSE
/// layer (fsp_fuse_env 'W') speaks the MSVCRT errno set, not Linux's: ENAMETOOLONG is 38, ENOSYS 40, ENOTEMPTY 41.
/// WinFsp turns them into NTSTATUS (src/dll/fuse/errno.i); an errno it does not know becomes STATUS_ACCESS_DENIED,
/// so only the values listed here are used.
/// </summary>
internal static class WinFspErrno
{
    public const int EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22,
        ENOSPC = 28, EROFS = 30, ENAMETOOLONG = 38, ENOSYS = 40, ENOTEMPTY = 41;

    /// <summary>
    /// The errno of <paramref name="error"/> (positive; callbacks return it negated). NotSupported is ENOSYS: WinFsp
    /// maps it to STATUS_INVALID_DEVICE_REQUEST, Windows' "not supported" (EOPNOTSUPP, 130, is unknown to WinFsp and
    /// would read as access denied).
    /// </summary>
    public static int From(FsError error) => error switch
    {
        FsError.None => 0,
        FsError.NotFound => ENOENT, // STATUS_OBJECT_NAME_NOT_FOUND
        FsError.Exists => EEXIST, // STATUS_OBJECT_NAME_COLLISION
        FsError.NotEmpty => ENOTEMPTY, // STATUS_DIRECTORY_NOT_EMPTY
        FsError.NotDirectory => ENOTDIR, // STATUS_NOT_A_DIRECTORY
        FsError.IsDirectory => EISDIR, // STATUS_FILE_IS_A_DIRECTORY
        FsError.InvalidArgument => EINVAL, // STATUS_INVALID_PARAMETER
        FsError.NameTooLong => ENAMETOOLONG, // STATUS_NAME_TOO_LONG
        FsError.NoSpace => ENOSPC, // STATUS_DISK_FULL
        FsError.NotPermitted => EPERM, // STATUS_ACCESS_DENIED
        FsError.AccessDenied => EACCES, // STATUS_ACCESS_DENIED
        FsError.NotSupported => ENOSYS, // STATUS_INVALID_DEVICE_REQUEST
        FsError.BadHandle => EBADF, // STATUS_INVALID_HANDLE
        FsError.ReadOnly => EROFS, // STATUS_MEDIA_WRITE_PROTECTED
        _ => EIO, // STATUS_IO_DEVICE_ERROR
    };
}
