using System.Runtime.InteropServices;

namespace CloudMirrorFs.Tests.Support;

/// <summary>
/// What the kernel's page cache holds of a file, from <c>cachestat(2)</c> (Linux 6.5 and later): how a test sees
/// whether a barrier flushed a file, without timing it.
/// </summary>
internal static partial class PageCache
{
    /// <summary>Where a test puts files whose dirty pages it counts: on a disk (a tmpfs's pages never become clean).</summary>
    public const string DiskFolder = "/var/tmp/cmfs-test";

    /// <summary>The pages of <paramref name="path"/> written and not yet on the disk.</summary>
    public static long DirtyPages(string path)
    {
        string format = new DriveInfo(path).DriveFormat;
        if (format is "tmpfs" or "ramfs")
        {
            throw new InvalidOperationException($"{path} is on a {format}, whose pages are never written to a disk: these tests need {DiskFolder} on a disk (Debian's default)");
        }
        using Microsoft.Win32.SafeHandles.SafeFileHandle h = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var range = new Range(0, 0); // to the end
        Stat stat;
        if (Syscall(CacheStatNumber, h.DangerousGetHandle(), ref range, out stat, 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new InvalidOperationException($"cachestat({path}) failed with errno {errno}: this test needs Linux 6.5 or later (uname -r)");
        }
        return (long)(stat.Dirty + stat.Writeback);
    }

    // The generic syscall table's number: the same on x86-64 and arm64.
    private const long CacheStatNumber = 451;

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Range(ulong Offset, ulong Length);

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Stat(ulong Cache, ulong Dirty, ulong Writeback, ulong Evicted, ulong RecentlyEvicted);

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, nint fd, ref Range range, out Stat stat, uint flags);
}
