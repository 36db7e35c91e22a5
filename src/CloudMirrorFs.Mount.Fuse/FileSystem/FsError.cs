namespace CloudMirrorFs.Mount.FileSystem;

/// <summary>
/// The platform-neutral outcome of a file system call. Each OS adapter maps it once to its own code (errno on
/// Linux, WinFsp's errno set on Windows): see <c>Linux/LinuxErrno</c> and <c>Windows/WinFspErrno</c>.
/// </summary>
public enum FsError
{
    /// <summary>Success.</summary>
    None = 0,
    /// <summary>No such file or directory.</summary>
    NotFound,
    /// <summary>The name already exists.</summary>
    Exists,
    /// <summary>A directory that must be empty is not.</summary>
    NotEmpty,
    /// <summary>A directory was expected.</summary>
    NotDirectory,
    /// <summary>A file was expected, a directory was found.</summary>
    IsDirectory,
    /// <summary>An invalid argument (bad name, bad offset, not a symlink...).</summary>
    InvalidArgument,
    /// <summary>A name longer than 255 bytes.</summary>
    NameTooLong,
    /// <summary>No space left on the local facet.</summary>
    NoSpace,
    /// <summary>The operation is not permitted (owner change, hard link, device node).</summary>
    NotPermitted,
    /// <summary>The caller lacks the permission bits the operation needs (EACCES).</summary>
    AccessDenied,
    /// <summary>The operation is not supported by this file system.</summary>
    NotSupported,
    /// <summary>An input/output error no facet could mask.</summary>
    IoError,
    /// <summary>The handle is not open.</summary>
    BadHandle,
    /// <summary>A read-only or unavailable volume refused a change.</summary>
    ReadOnly,
}
