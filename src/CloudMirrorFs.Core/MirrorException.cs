namespace CloudMirrorFs;

/// <summary>
/// The one exception type the engine throws for file-system level failures.
/// <see cref="Error"/> says what kind of failure it is; the message names the thing and what to do.
/// </summary>
public sealed class MirrorException : IOException
{
    /// <summary>Creates an error of the given kind.</summary>
    public MirrorException(MirrorError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>The kind of failure.</summary>
    public MirrorError Error { get; }

    /// <summary>Translates an exception raised by the OS or the runtime into the platform-neutral set.</summary>
    public static MirrorException From(Exception e, string what) => e switch
    {
        MirrorException m => m,
        FileNotFoundException or DirectoryNotFoundException => new(MirrorError.NotFound, $"{what}: not found.", e),
        UnauthorizedAccessException => new(MirrorError.AccessDenied, $"{what}: access denied.", e),
        PathTooLongException => new(MirrorError.InvalidPath, $"{what}: path too long.", e),
        IOException io when IsNoSpace(io) => new(MirrorError.NoSpace, $"{what}: no space left on the device; free space or move the volume.", e),
        IOException io when io.HResult == 17 || io.HResult == unchecked((int)0x80070050) || io.HResult == unchecked((int)0x800700B7)
            => new(MirrorError.Exists, $"{what}: already exists.", e),
        IOException io when io.HResult == 39 || io.HResult == unchecked((int)0x80070091) => new(MirrorError.NotEmpty, $"{what}: directory not empty.", e),
        IOException io when io.HResult == 20 => new(MirrorError.NotDirectory, $"{what}: not a directory.", e),
        IOException io when io.HResult == 21 => new(MirrorError.IsDirectory, $"{what}: is a directory.", e),
        IOException io when io.HResult == 30 => new(MirrorError.AccessDenied, $"{what}: the file system is read-only; mount it read-write.", e),
        _ => new(MirrorError.IoError, $"{what}: {WithoutPath(e.Message)}", e),
    };

    /// <summary>
    /// The OS's words without the path .NET appends on Unix (" : '/some/path'"): the caller's <c>what</c> names the
    /// object already, and a temporary file's random name would make every retry's message differ (and be logged).
    /// </summary>
    private static string WithoutPath(string message)
    {
        int cut = message.LastIndexOf(" : '", StringComparison.Ordinal);
        return cut > 0 && message.EndsWith('\'') ? message[..cut] : message;
    }

    /// <summary>True when an I/O exception means the device is full (ENOSPC, EDQUOT, ERROR_DISK_FULL).</summary>
    public static bool IsNoSpace(IOException e)
        => e.HResult is 28 or 122 or unchecked((int)0x80070070) or unchecked((int)0x80070027);
}
