using System.Runtime.InteropServices;
using System.Text;

namespace CloudMirrorFs.Facets;

/// <summary>
/// The unqueued mark (<see cref="IUnqueuedMark"/>) of a directory facet: an extended attribute of its folder
/// (<c>user.cmfs.unqueued</c>), so nothing appears in the tree. Linux only; where the file system keeps no user
/// attributes (FAT, some network file systems) the mark cannot be set, which the caller logs.
/// </summary>
public sealed partial class DirectoryFacet : IUnqueuedMark
{
    private const string MarkAttribute = "user.cmfs.unqueued";

    /// <inheritdoc />
    public bool MarkRead { get; private set; }

    /// <inheritdoc />
    public string? UnqueuedBy { get; private set; }

    /// <summary>At open: what the folder's mark says.</summary>
    private void ReadMark()
    {
        if (!OperatingSystem.IsLinux())
        {
            MarkRead = true;
            return;
        }
        byte[] buffer = new byte[256];
        nint n = Xattr.Get(_root, MarkAttribute, buffer, buffer.Length);
        UnqueuedBy = n > 0 ? Encoding.UTF8.GetString(buffer, 0, (int)n) : null; // ENODATA: no mark; ENOTSUP: none can be
        MarkRead = true;
    }

    /// <inheritdoc />
    public void MarkUnqueued(string queueId)
    {
        if (!OperatingSystem.IsLinux())
        {
            return;
        }
        byte[] value = Encoding.UTF8.GetBytes(queueId);
        if (Xattr.Set(_root, MarkAttribute, value, value.Length, 0) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            throw new MirrorException(MirrorError.IoError, $"facet '{Name}': could not mark {_root} as written after the queue failed (extended attribute {MarkAttribute}: errno {errno})");
        }
        UnqueuedBy = queueId;
    }

    /// <inheritdoc />
    public void ClearUnqueued()
    {
        if (!OperatingSystem.IsLinux() || UnqueuedBy is null)
        {
            return;
        }
        if (Xattr.Remove(_root, MarkAttribute) != 0 && Marshal.GetLastPInvokeError() != 61 /* ENODATA */)
        {
            return; // kept: the next open drops the queue's older records again, which costs nothing
        }
        UnqueuedBy = null;
    }

    private static partial class Xattr
    {
        [LibraryImport("libc", EntryPoint = "getxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial nint Get(string path, string name, byte[] value, nint size);

        [LibraryImport("libc", EntryPoint = "setxattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Set(string path, string name, byte[] value, nint size, int flags);

        [LibraryImport("libc", EntryPoint = "removexattr", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
        internal static partial int Remove(string path, string name);
    }
}
