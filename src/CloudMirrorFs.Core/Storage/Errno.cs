using System.Runtime.InteropServices;

namespace CloudMirrorFs.Storage;

/// <summary>A failed Unix call's errno as the exception .NET's own file calls throw for it.</summary>
public static class Errno
{
    /// <summary>
    /// ENOENT as <see cref="FileNotFoundException"/>, EPERM and EACCES as <see cref="UnauthorizedAccessException"/>,
    /// anything else as an <see cref="IOException"/> whose HResult is the errno (as .NET sets it on Unix), with the OS's
    /// words: <see cref="MirrorException.From"/> then maps it as it maps .NET's.
    /// </summary>
    public static Exception ToException(int errno)
    {
        string message = Marshal.GetPInvokeErrorMessage(errno);
        return errno switch
        {
            2 => new FileNotFoundException(message),
            1 or 13 => new UnauthorizedAccessException(message),
            _ => new IOException(message, errno),
        };
    }
}
