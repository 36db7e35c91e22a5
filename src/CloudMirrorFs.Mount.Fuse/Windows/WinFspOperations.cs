using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using CloudMirrorFs.Facets;
using CloudMirrorFs.Mount.FileSystem;
using CloudMirrorFs.Mount.Linux;

namespace CloudMirrorFs.Mount.Windows;

/// <summary>
/// The WinFsp FUSE 3 (high-level, path) callbacks. Each translates: a path becomes an inode through
/// <see cref="MirrorFileSystem.ResolvePath"/> (the parent's path and the last name for the operations that create,
/// remove or rename a name), the inode operation runs, and its <see cref="FsError"/> comes back as a negative WinFsp
/// errno (<see cref="WinFspErrno"/>). Open files carry their inode in fh, so read, write, release, fsync, ftruncate
/// and fgetattr use it without touching the path (and keep working on a file renamed or unlinked while open);
/// directories carry the <see cref="MirrorFileSystem.OpenDirectory"/> handle. No exception may cross back into
/// WinFsp (it would kill the process): each callback catches everything and answers -EIO. Reads and writes allocate
/// nothing: WinFsp hands us its buffer, wrapped in a reusable per-thread <see cref="Memory{T}"/> view.
/// </summary>
internal static unsafe class WinFspOperations
{
    // MSVCRT's fcntl.h values: WinFsp passes O_CREAT|O_EXCL|O_RDWR (0x0100|0x0400|2) to create for a native program.
    private const int OTrunc = 0x0200, OExcl = 0x0400;

    [ThreadStatic]
    private static NativeMemoryManager? t_view;

    private static MirrorFileSystem? s_fs;

    private static MirrorFileSystem Fs => s_fs ?? throw new InvalidOperationException("no file system is mounted");

    /// <summary>Binds the callbacks to one file system (one mount per process).</summary>
    public static void Bind(MirrorFileSystem fs) => s_fs = fs;

    /// <summary>Fills the operations table; link, xattrs, access, lock, bmap, ioctl, poll, the buffer calls, flock and fallocate stay null.</summary>
    public static void Fill(Fuse3Operations* ops)
    {
        ops->GetAttr = (nint)(delegate* unmanaged[Cdecl]<byte*, WinFspStat*, Fuse3FileInfo*, int>)&GetAttr;
        ops->ReadLink = (nint)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, int>)&ReadLink;
        ops->MkNod = (nint)(delegate* unmanaged[Cdecl]<byte*, uint, uint, int>)&MkNod;
        ops->MkDir = (nint)(delegate* unmanaged[Cdecl]<byte*, uint, int>)&MkDir;
        ops->Unlink = (nint)(delegate* unmanaged[Cdecl]<byte*, int>)&Unlink;
        ops->RmDir = (nint)(delegate* unmanaged[Cdecl]<byte*, int>)&RmDir;
        ops->Symlink = (nint)(delegate* unmanaged[Cdecl]<byte*, byte*, int>)&Symlink;
        ops->Rename = (nint)(delegate* unmanaged[Cdecl]<byte*, byte*, uint, int>)&Rename;
        ops->Chmod = (nint)(delegate* unmanaged[Cdecl]<byte*, uint, Fuse3FileInfo*, int>)&Chmod;
        ops->Chown = (nint)(delegate* unmanaged[Cdecl]<byte*, uint, uint, Fuse3FileInfo*, int>)&Chown;
        ops->Truncate = (nint)(delegate* unmanaged[Cdecl]<byte*, long, Fuse3FileInfo*, int>)&Truncate;
        ops->Open = (nint)(delegate* unmanaged[Cdecl]<byte*, Fuse3FileInfo*, int>)&Open;
        ops->Read = (nint)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, Fuse3FileInfo*, int>)&Read;
        ops->Write = (nint)(delegate* unmanaged[Cdecl]<byte*, byte*, nuint, long, Fuse3FileInfo*, int>)&Write;
        ops->StatFs = (nint)(delegate* unmanaged[Cdecl]<byte*, WinFspStatVfs*, int>)&StatFs;
        ops->Flush = (nint)(delegate* unmanaged[Cdecl]<byte*, Fuse3FileInfo*, int>)&Flush;
        ops->Release = (nint)(delegate* unmanaged[Cdecl]<byte*, Fuse3FileInfo*, int>)&Release;
        ops->Fsync = (nint)(delegate* unmanaged[Cdecl]<byte*, int, Fuse3FileInfo*, int>)&Fsync;
        ops->OpenDir = (nint)(delegate* unmanaged[Cdecl]<byte*, Fuse3FileInfo*, int>)&OpenDir;
        ops->ReadDir = (nint)(delegate* unmanaged[Cdecl]<byte*, nint, nint, long, Fuse3FileInfo*, int, int>)&ReadDir;
        ops->ReleaseDir = (nint)(delegate* unmanaged[Cdecl]<byte*, Fuse3FileInfo*, int>)&ReleaseDir;
        ops->FsyncDir = (nint)(delegate* unmanaged[Cdecl]<byte*, int, Fuse3FileInfo*, int>)&FsyncDir;
        ops->Init = (nint)(delegate* unmanaged[Cdecl]<Fuse3ConnInfo*, nint, nint>)&Init;
        ops->Destroy = (nint)(delegate* unmanaged[Cdecl]<nint, void>)&Destroy;
        ops->Create = (nint)(delegate* unmanaged[Cdecl]<byte*, uint, Fuse3FileInfo*, int>)&Create;
        ops->Utimens = (nint)(delegate* unmanaged[Cdecl]<byte*, FuseTimespec*, Fuse3FileInfo*, int>)&Utimens;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static nint Init(Fuse3ConnInfo* conn, nint config)
    {
        // Case-sensitive, as the volume is (WinFsp's default; a case-insensitive view would need name folding the
        // engine does not do). No READDIRPLUS: listings carry names and kinds only, so WinFsp asks getattr per entry.
        conn->Want &= ~(Fuse3ConnInfo.CapCaseInsensitive | Fuse3ConnInfo.CapReaddirPlus);
        return 0;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Destroy(nint data)
    {
        // the file system belongs to the caller of FuseMounter.Mount: nothing to release here
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int GetAttr(byte* path, WinFspStat* stbuf, Fuse3FileInfo* fi)
    {
        try
        {
            FsError err = FileInode(path, fi, out long inode);
            if (err == FsError.None)
            {
                err = Fs.GetAttributes(inode, out FsAttributes a);
                if (err == FsError.None)
                {
                    *stbuf = Stat(a);
                }
            }
            return Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int ReadLink(byte* path, byte* buf, nuint size)
    {
        try
        {
            if (size == 0)
            {
                return -WinFspErrno.EINVAL;
            }
            FsError err = Fs.ResolvePath(PathOf(path), out long inode);
            if (err == FsError.None)
            {
                err = Fs.ReadLink(inode, out string target);
                if (err == FsError.None)
                {
                    // FUSE's readlink: NUL-terminated, truncated to the buffer.
                    int room = (int)Math.Min(size - 1, int.MaxValue);
                    byte[] utf8 = Encoding.UTF8.GetBytes(target);
                    int length = Math.Min(utf8.Length, room);
                    utf8.AsSpan(0, length).CopyTo(new Span<byte>(buf, length));
                    buf[length] = 0;
                }
            }
            return Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int MkNod(byte* path, uint mode, uint dev)
    {
        try
        {
            FsError err = Parent(path, out long parent, out string name);
            return Result(err == FsError.None ? Fs.MakeNode(parent, name, mode, out _) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int MkDir(byte* path, uint mode)
    {
        try
        {
            FsError err = Parent(path, out long parent, out string name);
            return Result(err == FsError.None ? Fs.MakeDirectory(parent, name, (UnixFileMode)(mode & 0xFFF), out _) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Unlink(byte* path)
    {
        try
        {
            FsError err = Parent(path, out long parent, out string name);
            return Result(err == FsError.None ? Fs.Unlink(parent, name) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int RmDir(byte* path)
    {
        try
        {
            FsError err = Parent(path, out long parent, out string name);
            return Result(err == FsError.None ? Fs.RemoveDirectory(parent, name) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    /// <summary>symlink(target, linkpath): WinFsp's names are dstpath (the target) then srcpath (the new link).</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Symlink(byte* target, byte* linkPath)
    {
        try
        {
            FsError err = Parent(linkPath, out long parent, out string name);
            return Result(err == FsError.None ? Fs.Symlink(parent, name, PathOf(target), out _) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Rename(byte* oldPath, byte* newPath, uint flags)
    {
        try
        {
            FsError err = Parent(oldPath, out long parent, out string name);
            if (err == FsError.None)
            {
                err = Parent(newPath, out long newParent, out string newName);
                if (err == FsError.None)
                {
                    err = Fs.Rename(parent, name, newParent, newName, flags);
                }
            }
            return Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Chmod(byte* path, uint mode, Fuse3FileInfo* fi)
        => SetAttributes(path, fi, new SetAttributesRequest(null, (UnixFileMode)(mode & 0xFFF), null, null, null, null));

    /// <summary>chown: (fuse_uid_t)-1 and (fuse_gid_t)-1 leave that id unchanged, as chown(2) does.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Chown(byte* path, uint uid, uint gid, Fuse3FileInfo* fi)
        => SetAttributes(path, fi, new SetAttributesRequest(null, null, uid == uint.MaxValue ? null : uid, gid == uint.MaxValue ? null : gid, null, null));

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Truncate(byte* path, long size, Fuse3FileInfo* fi)
        => SetAttributes(path, fi, new SetAttributesRequest(size, null, null, null, null, null));

    /// <summary>utimens: tv[0] is the access time, tv[1] the modification time; a null tv means now.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Utimens(byte* path, FuseTimespec* tv, Fuse3FileInfo* fi)
    {
        DateTime atime, mtime;
        if (tv == null)
        {
            atime = mtime = DateTime.UtcNow;
        }
        else if (!TryFromTimespec(tv[0], out atime) || !TryFromTimespec(tv[1], out mtime))
        {
            return -WinFspErrno.EINVAL;
        }
        return SetAttributes(path, fi, new SetAttributesRequest(null, null, null, null, atime, mtime));
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Open(byte* path, Fuse3FileInfo* fi)
    {
        try
        {
            if (fi == null)
            {
                return -WinFspErrno.EINVAL;
            }
            FsError err = Fs.ResolvePath(PathOf(path), out long inode);
            if (err == FsError.None)
            {
                err = Fs.Open(inode, (fi->Flags & OTrunc) != 0);
                if (err == FsError.None)
                {
                    fi->Fh = (ulong)inode;
                }
            }
            return Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Create(byte* path, uint mode, Fuse3FileInfo* fi)
    {
        try
        {
            if (fi == null)
            {
                return -WinFspErrno.EINVAL;
            }
            FsError err = Parent(path, out long parent, out string name);
            if (err == FsError.None)
            {
                err = Fs.Create(parent, name, (UnixFileMode)(mode & 0xFFF), (fi->Flags & OExcl) != 0, (fi->Flags & OTrunc) != 0, out FsAttributes a);
                if (err == FsError.None)
                {
                    fi->Fh = (ulong)a.Inode;
                }
            }
            return Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Read(byte* path, byte* buf, nuint size, long offset, Fuse3FileInfo* fi)
    {
        NativeMemoryManager view = t_view ??= new NativeMemoryManager();
        try
        {
            FsError err = FileInode(path, fi, out long inode);
            if (err != FsError.None)
            {
                return Result(err);
            }
            err = Fs.Read(inode, offset, view.Wrap(buf, (int)Math.Min(size, int.MaxValue)), out int count);
            return err == FsError.None ? count : Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
        finally
        {
            view.Clear();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Write(byte* path, byte* buf, nuint size, long offset, Fuse3FileInfo* fi)
    {
        NativeMemoryManager view = t_view ??= new NativeMemoryManager();
        try
        {
            if (size > int.MaxValue)
            {
                return -WinFspErrno.EINVAL; // the count is returned as an int
            }
            FsError err = FileInode(path, fi, out long inode);
            if (err == FsError.None)
            {
                err = Fs.Write(inode, offset, view.Wrap(buf, (int)size));
            }
            return err == FsError.None ? (int)size : Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
        finally
        {
            view.Clear();
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int StatFs(byte* path, WinFspStatVfs* stbuf)
    {
        try
        {
            FsError err = Fs.StatFs(out SpaceInfo space);
            if (err != FsError.None)
            {
                return Result(err);
            }
            // WinFsp reads f_frsize as the sector size (512..4096), f_blocks and f_bfree in f_frsize units as the
            // total and free size, and f_namemax as the longest name; the numbers are the Linux adapter's.
            const ulong unit = 4096;
            WinFspStatVfs v = default;
            v.BlockSize = (ulong)Fs.BlockSize;
            v.FragmentSize = unit;
            v.Blocks = (ulong)space.TotalBytes / unit;
            v.BlocksFree = (ulong)space.FreeBytes / unit;
            v.BlocksAvailable = v.BlocksFree;
            v.Files = 1UL << 32;
            v.FilesFree = v.Files / 2;
            v.FilesAvailable = v.FilesFree;
            v.NameMax = 255;
            *stbuf = v;
            return 0;
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    /// <summary>flush comes with every close (CloseHandle's last IRP_MJ_CLOSE): not a barrier, as on Linux.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Flush(byte* path, Fuse3FileInfo* fi) => 0;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Release(byte* path, Fuse3FileInfo* fi)
    {
        try
        {
            return fi == null || fi->Fh == Fuse3FileInfo.NoHandle ? 0 : Result(Fs.Release((long)fi->Fh));
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    /// <summary>fsync (FlushFileBuffers on a file): the barrier.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Fsync(byte* path, int datasync, Fuse3FileInfo* fi)
    {
        try
        {
            FsError err = FileInode(path, fi, out long inode);
            return Result(err == FsError.None ? Fs.Sync(inode) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    /// <summary>fsyncdir (FlushFileBuffers on a directory): the same barrier; fh is a directory handle, so the path names it.</summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int FsyncDir(byte* path, int datasync, Fuse3FileInfo* fi)
    {
        try
        {
            FsError err = Fs.ResolvePath(PathOf(path), out long inode);
            return Result(err == FsError.None ? Fs.Sync(inode) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OpenDir(byte* path, Fuse3FileInfo* fi)
    {
        try
        {
            if (fi == null)
            {
                return -WinFspErrno.EINVAL;
            }
            FsError err = Fs.ResolvePath(PathOf(path), out long inode);
            if (err == FsError.None)
            {
                err = Fs.OpenDirectory(inode, out long handle);
                if (err == FsError.None)
                {
                    fi->Fh = (ulong)handle;
                }
            }
            return Result(err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    /// <summary>
    /// readdir: every entry of the handle's snapshot from <paramref name="offset"/> on, through WinFsp's filler
    /// (int filler(void *buf, const char *name, const struct fuse_stat *stbuf, fuse_off_t off, int flags)), which
    /// answers non-zero when its buffer is full. WinFsp reads a directory in one call (offset 0) and skips "." and
    /// ".." at the root itself; the names are already NUL-terminated UTF-8 in the snapshot.
    /// </summary>
    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int ReadDir(byte* path, nint buf, nint filler, long offset, Fuse3FileInfo* fi, int flags)
    {
        long handle = 0;
        bool own = false;
        try
        {
            FsError err;
            if (fi != null && fi->Fh != Fuse3FileInfo.NoHandle)
            {
                handle = (long)fi->Fh;
            }
            else
            {
                err = Fs.ResolvePath(PathOf(path), out long inode);
                if (err == FsError.None)
                {
                    err = Fs.OpenDirectory(inode, out handle);
                }
                if (err != FsError.None)
                {
                    return Result(err);
                }
                own = true;
            }
            err = Fs.ReadDirectory(handle, out IReadOnlyList<FsDirectoryEntry> entries);
            if (err != FsError.None)
            {
                return Result(err);
            }
            var fill = (delegate* unmanaged[Cdecl]<nint, byte*, WinFspStat*, long, int, int>)filler;
            for (long i = Math.Max(0, offset); i < entries.Count; i++)
            {
                fixed (byte* name = entries[(int)i].NameUtf8Z)
                {
                    if (fill(buf, name, null, 0, 0) != 0)
                    {
                        break;
                    }
                }
            }
            return 0;
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
        finally
        {
            if (own)
            {
                ReleaseOwnDirectory(handle);
            }
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int ReleaseDir(byte* path, Fuse3FileInfo* fi)
    {
        try
        {
            return fi == null || fi->Fh == Fuse3FileInfo.NoHandle ? 0 : Result(Fs.ReleaseDirectory((long)fi->Fh));
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    /// <summary>chmod, chown, truncate and utimens: one setattr on the open file's inode, or the path's.</summary>
    private static int SetAttributes(byte* path, Fuse3FileInfo* fi, in SetAttributesRequest request)
    {
        try
        {
            FsError err = FileInode(path, fi, out long inode);
            return Result(err == FsError.None ? Fs.SetAttributes(inode, request, out _) : err);
        }
        catch (Exception)
        {
            return -WinFspErrno.EIO;
        }
    }

    private static void ReleaseOwnDirectory(long handle)
    {
        try
        {
            Fs.ReleaseDirectory(handle);
        }
        catch (Exception)
        {
            // nothing to report back: readdir already answered
        }
    }

    /// <summary>
    /// The inode of an open file (fh) or of the path. WinFsp passes a file info only for files (fuse_intf.c's
    /// FUSE_FILE_INFO gives directories none), and fh is -1 when nothing was opened.
    /// </summary>
    private static FsError FileInode(byte* path, Fuse3FileInfo* fi, out long inode)
    {
        if (fi != null && fi->Fh != Fuse3FileInfo.NoHandle)
        {
            inode = (long)fi->Fh;
            return FsError.None;
        }
        return Fs.ResolvePath(PathOf(path), out inode);
    }

    /// <summary>Splits "/a/b/c" into the inode of "/a/b" and "c" ("/c": the root and "c").</summary>
    private static FsError Parent(byte* path, out long parent, out string name)
    {
        string full = PathOf(path);
        int slash = full.LastIndexOf('/');
        name = full[(slash + 1)..];
        return Fs.ResolvePath(slash <= 0 ? "/" : full[..slash], out parent);
    }

    private static string PathOf(byte* path) => Marshal.PtrToStringUTF8((nint)path) ?? "";

    private static int Result(FsError error) => -WinFspErrno.From(error);

    /// <summary>
    /// FsAttributes as WinFsp's fuse_stat. WinFsp shows st_birthtim as the creation time; the volume keeps none, so
    /// the last write time stands in (a zero would read as 1 January 1970). WinFsp's HardLinks is always 0 and its
    /// uid/gid are overridden by the uid=-1,gid=-1 mount options (the mounting Windows user).
    /// </summary>
    internal static WinFspStat Stat(in FsAttributes a) => new()
    {
        Ino = (ulong)a.Inode,
        Mode = a.Mode,
        Nlink = (ushort)Math.Clamp(a.Links, 0, ushort.MaxValue),
        Uid = a.Uid,
        Gid = a.Gid,
        Size = a.Size,
        Atim = ToTimespec(a.LastAccessUtc),
        Mtim = ToTimespec(a.LastWriteUtc),
        Ctim = ToTimespec(a.ChangeUtc),
        BlkSize = s_fs?.BlockSize ?? 4096,
        Blocks = a.Blocks512,
        Birthtim = ToTimespec(a.LastWriteUtc),
    };

    internal static FuseTimespec ToTimespec(DateTime utc)
    {
        (long seconds, long nanoseconds) = UnixTime.Split(utc);
        return new FuseTimespec { Seconds = seconds, Nanoseconds = nanoseconds };
    }

    internal static bool TryFromTimespec(FuseTimespec t, out DateTime utc) => UnixTime.TryJoin(t.Seconds, t.Nanoseconds, out utc);
}
