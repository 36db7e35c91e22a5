using System.Runtime.InteropServices;

namespace CloudMirrorFs.Storage;

/// <summary>The libc calls that more than one part of the engine makes directly on Linux, where .NET's own adds calls around them.</summary>
internal static partial class Libc
{
    /// <summary>open(2) flags that are the same on every Linux architecture .NET runs on.</summary>
    public const int OWrOnly = 0x1, ORdWr = 0x2, OCreat = 0x40, OExcl = 0x80, OCloExec = 0x80000;

    /// <summary>rename(2): replaces <paramref name="to"/> in one call (.NET's move stats the source first).</summary>
    [LibraryImport("libc", EntryPoint = "rename", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Rename(string from, string to);

    /// <summary>open(2): no flock and no fstat after it, unlike .NET's open.</summary>
    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags, int mode);

    /// <summary>fsync(2) of a descriptor.</summary>
    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int Fsync(int fd);

    /// <summary>close(2) of a descriptor that no SafeHandle owns.</summary>
    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
