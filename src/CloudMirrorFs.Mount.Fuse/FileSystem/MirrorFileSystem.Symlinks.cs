using System.Text;

namespace CloudMirrorFs.Mount.FileSystem;

public sealed partial class MirrorFileSystem
{
    /// <summary>The longest symlink target accepted (PATH_MAX less the terminator).</summary>
    public const int MaxLinkTarget = 4095;

    /// <summary>Creates a symbolic link named <paramref name="name"/> holding <paramref name="target"/>, stored verbatim.</summary>
    public FsError Symlink(long parent, string name, string target, out FsAttributes attributes)
    {
        attributes = default;
        if (target.Length == 0)
        {
            return FsError.NotFound; // symlink(2) answers ENOENT for an empty target
        }
        if (Encoding.UTF8.GetByteCount(target) > MaxLinkTarget)
        {
            return FsError.NameTooLong;
        }
        FsError err = NewChildPath(parent, name, out string path);
        if (err != FsError.None)
        {
            return err;
        }
        try
        {
            long id = Wait(_volume.CreateSymlinkAsync(path, target));
            attributes = ToAttributes(Wait(_volume.StatAsync(path)), id);
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "symlink", path);
        }
    }

    /// <summary>The target of a symbolic link.</summary>
    public FsError ReadLink(long inode, out string target)
    {
        target = "";
        string? path = PathOf(inode);
        if (path is null)
        {
            return FsError.NotFound;
        }
        try
        {
            target = Wait(_volume.ReadLinkAsync(path));
            return FsError.None;
        }
        catch (Exception e)
        {
            return Fail(e, "readlink", path);
        }
    }
}
