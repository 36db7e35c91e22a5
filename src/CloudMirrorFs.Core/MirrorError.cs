namespace CloudMirrorFs;

/// <summary>The small, platform-neutral set of errors the engine reports; each mount maps them once (errno, NTSTATUS).</summary>
public enum MirrorError
{
    /// <summary>The path or file does not exist.</summary>
    NotFound,
    /// <summary>The path already exists.</summary>
    Exists,
    /// <summary>A directory that must be empty is not.</summary>
    NotEmpty,
    /// <summary>A directory was expected.</summary>
    NotDirectory,
    /// <summary>A file was expected, a directory was found.</summary>
    IsDirectory,
    /// <summary>The path is not acceptable (empty component, "..", NUL, too long, outside the volume).</summary>
    InvalidPath,
    /// <summary>An argument is out of range (negative offset or length).</summary>
    InvalidArgument,
    /// <summary>No space is left on the device that must take the write.</summary>
    NoSpace,
    /// <summary>The operation is not permitted.</summary>
    AccessDenied,
    /// <summary>The operation is not supported by this volume or facet.</summary>
    NotSupported,
    /// <summary>No facet could serve the operation.</summary>
    Unavailable,
    /// <summary>An input/output error that no other facet could mask.</summary>
    IoError,
}
