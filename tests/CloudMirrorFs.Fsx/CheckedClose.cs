using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace CloudMirrorFs.Fsx;

/// <summary>
/// Closes a handle and reports the error of close(2). SafeFileHandle.Dispose drops it, but a FUSE file system
/// returns write-back errors from its flush callback exactly there, so on Unix the descriptor is closed here.
/// </summary>
internal static partial class CheckedClose
{
    private const int EINTR = 4;

    /// <summary>Closes <paramref name="handle"/>; throws <see cref="IOException"/> if close(2) failed (Unix).</summary>
    public static void Close(SafeFileHandle handle)
    {
        if (OperatingSystem.IsWindows() || handle.IsClosed || handle.IsInvalid)
        {
            handle.Dispose();
            return;
        }
        int fd = (int)handle.DangerousGetHandle();
        handle.SetHandleAsInvalid();
        if (CloseFd(fd) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            // On Linux the descriptor is released even when close is interrupted; EINTR says nothing about the data.
            if (errno != EINTR)
            {
                throw new IOException($"close(2) failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseFd(int fd);
}
