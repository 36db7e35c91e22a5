using CloudMirrorFs.Mount.FileSystem;

namespace CloudMirrorFs.Mount.Linux;

/// <summary>The one place a platform-neutral <see cref="FsError"/> becomes a Linux errno.</summary>
internal static class LinuxErrno
{
    public const int EPERM = 1, ENOENT = 2, EIO = 5, EBADF = 9, EACCES = 13, EEXIST = 17, ENOTDIR = 20, EISDIR = 21, EINVAL = 22,
        ENOSPC = 28, EROFS = 30, ENAMETOOLONG = 36, ENOTEMPTY = 39, EOPNOTSUPP = 95, ENOTCONN = 107;

    public static int From(FsError error) => error switch
    {
        FsError.None => 0,
        FsError.NotFound => ENOENT,
        FsError.Exists => EEXIST,
        FsError.NotEmpty => ENOTEMPTY,
        FsError.NotDirectory => ENOTDIR,
        FsError.IsDirectory => EISDIR,
        FsError.InvalidArgument => EINVAL,
        FsError.NameTooLong => ENAMETOOLONG,
        FsError.NoSpace => ENOSPC,
        FsError.NotPermitted => EPERM,
        FsError.AccessDenied => EACCES,
        FsError.NotSupported => EOPNOTSUPP,
        FsError.BadHandle => EBADF,
        FsError.ReadOnly => EROFS,
        _ => EIO,
    };
}
